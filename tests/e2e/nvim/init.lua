-- Minimal Neovim config for the end-to-end tests: load the hone plugin from the repository
-- and configure it from environment variables set by tests/e2e/test_neovim.py.
--   HONE_NVIM_PLUGIN  path to editor-clients/neovim
--   HONE_NVIM_SETUP   JSON object passed to require("hone").setup()
--   HONE_NVIM_RESULT  where to write an error record if this file fails
--   HONE_NVIM_POSITION_ENCODINGS  optional JSON list: the position encodings the client
--                     offers the server (instead of Neovim's own utf-8, utf-16, utf-32)
local ok, err = pcall(function()
  vim.o.swapfile = false
  vim.o.shada = ""
  vim.o.more = false

  local plugin = assert(vim.env.HONE_NVIM_PLUGIN, "HONE_NVIM_PLUGIN is not set")
  vim.opt.runtimepath:prepend(plugin)
  vim.cmd.runtime("plugin/hone.lua")

  vim.lsp.log.set_level(vim.log.levels.DEBUG)

  local setup = assert(vim.env.HONE_NVIM_SETUP, "HONE_NVIM_SETUP is not set")
  require("hone").setup(vim.json.decode(setup))
  -- Extra client config merges into the plugin's: remember a server exit so the driver can
  -- fail at once instead of waiting for its deadline.
  vim.lsp.config("hone", {
    on_exit = function(code, signal)
      _G.hone_test_server_exit = { code = code, signal = signal }
    end,
  })
  local encodings = vim.env.HONE_NVIM_POSITION_ENCODINGS
  if encodings and encodings ~= "" then
    vim.lsp.config("hone", {
      before_init = function(params)
        params.capabilities.general.positionEncodings = vim.json.decode(encodings)
      end,
    })
  end
end)

if not ok then
  -- A headless Neovim would otherwise sit on the error forever: record it and quit.
  local f = io.open(vim.env.HONE_NVIM_RESULT or "hone-nvim-result.json", "w")
  if f then
    f:write(vim.json.encode({ ok = false, error = "init.lua: " .. tostring(err) }))
    f:close()
  end
  vim.cmd("cquit 3")
end
