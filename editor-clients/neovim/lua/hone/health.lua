-- :checkhealth hone
local M = {}

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
  local exe = hone.config.cmd[1]
  if vim.fn.executable(exe) == 1 then
    vim.health.ok(("server command %q found: %s"):format(exe, vim.fn.exepath(exe)))
  else
    vim.health.error(("server command %q is not executable"):format(exe), {
      "pip install hone (or point cmd at the hone script in its virtualenv)",
    })
  end
  local clients = vim.lsp.get_clients({ name = hone.name })
  if #clients == 0 then
    vim.health.info("no hone client running (open a file of a configured filetype)")
  end
  for _, client in ipairs(clients) do
    local bufs = vim.tbl_keys(client.attached_buffers)
    vim.health.info(("client %d attached to buffers %s"):format(client.id, vim.inspect(bufs)))
    if client:supports_method("textDocument/inlineCompletion") then
      vim.health.ok("server advertises inlineCompletionProvider")
    else
      vim.health.error("server does not advertise inlineCompletionProvider")
    end
  end
end

return M
