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
    vim.health.info(("client %d attached to buffers %s"):format(client.id, vim.inspect(bufs)))
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
