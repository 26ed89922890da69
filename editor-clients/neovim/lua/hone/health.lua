-- :checkhealth hone
local M = {}

--- Over TCP: the address, where the token comes from (never the token), the token file's mode.
---@param config hone.Config
local function check_tcp(config)
  local tcp = require("hone.tcp")
  vim.health.info(
    ("transport: TCP to %s (a running `hone serve --tcp`; cmd and model are not used)"):format(config.tcp)
  )
  local source, found, path = tcp.describe(config)
  if not found then
    vim.health.error(source, {
      "set token_file (or token, or $HONE_TOKEN) to the server's token; "
        .. "`hone serve --tcp` prints where its token is",
    })
    return
  end
  vim.health.ok(source)
  local info = path and vim.uv.fs_stat(path)
  if info and bit.band(info.mode, 63) ~= 0 then -- 0o077: group or others may read it
    vim.health.warn(("%s can be read by other users"):format(path), { "chmod 600 " .. path })
  end
end

function M.check()
  local hone = require("hone")
  vim.health.start("hone")
  if vim.fn.has("nvim-0.12") == 1 and vim.lsp.inline_completion then
    vim.health.ok("Neovim has vim.lsp.inline_completion")
  else
    vim.health.error("Neovim >= 0.12 is required (vim.lsp.inline_completion)")
  end
  if not hone.config then
    vim.health.warn('not set up: call require("hone").setup()')
    return
  end
  if hone.config.tcp then
    check_tcp(hone.config)
  else
    vim.health.info("transport: stdio (Neovim starts its own `hone serve`; no token needed)")
    local exe = hone.config.cmd[1]
    if vim.fn.executable(exe) == 1 then
      vim.health.ok(("server command %q found: %s"):format(exe, vim.fn.exepath(exe)))
    else
      vim.health.error(("server command %q is not executable"):format(exe), {
        "pip install hone (or point cmd at the hone script in its virtualenv)",
      })
    end
  end
  local run_code = hone.status().run_code
  if run_code then
    vim.health.ok("run_code: on (:HoneFix, :HoneLocalize and the code lens run the repository's tests)")
  else
    vim.health.info(
      "run_code: off; :HoneFix, :HoneLocalize and the \"Fix failing test\" code lens need "
        .. "setup({ run_code = true }) (they run the repository's tests)"
    )
  end
  local clients = vim.lsp.get_clients({ name = hone.name })
  if #clients == 0 then
    vim.health.info("no hone client running (open a file of a configured filetype)")
  end
  for _, client in ipairs(clients) do
    local bufs = vim.tbl_keys(client.attached_buffers)
    local how = require("hone.tcp").is_tcp(client) and ("over TCP to " .. tostring(hone.config.tcp))
      or "over stdio"
    vim.health.info(("client %d (%s) attached to buffers %s"):format(client.id, how, vim.inspect(bufs)))
    if client:supports_method("textDocument/inlineCompletion") then
      vim.health.ok("server advertises inlineCompletionProvider")
    else
      vim.health.error("server does not advertise inlineCompletionProvider")
    end
    local commands = vim.tbl_get(client.server_capabilities or {}, "executeCommandProvider", "commands") or {}
    for _, name in ipairs({ "hone.fixFailingTest", "hone.applyFix", "hone.localize" }) do
      if vim.list_contains(commands, name) then
        vim.health.ok(("server offers the command %s"):format(name))
      else
        vim.health.warn(
          ("server does not offer the command %s (:HoneFix/:HoneLocalize need it; an older hone?)"):format(name)
        )
      end
    end
  end
end

return M
