-- User commands for hone. The server is only configured once require("hone").setup() runs.
if vim.g.loaded_hone then
  return
end
vim.g.loaded_hone = true

vim.api.nvim_create_user_command("HoneStatus", function()
  require("hone").print_status()
end, { desc = "hone: show whether the server is attached to this buffer" })

vim.api.nvim_create_user_command("HoneToggle", function()
  require("hone").toggle()
end, { desc = "hone: toggle inline completion in this buffer" })

vim.api.nvim_create_user_command("HoneRestart", function()
  require("hone").restart()
end, { desc = "hone: restart the language server" })

-- Fix this failing test / localize: they run the repository's tests (setup({ run_code = true })).
vim.api.nvim_create_user_command("HoneFix", function(opts)
  require("hone").fix(opts.args ~= "" and opts.args or nil)
end, {
  nargs = "?",
  desc = "hone: fix the failing test under the cursor (or the pytest node id given)",
})

vim.api.nvim_create_user_command("HoneFixCancel", function()
  require("hone").cancel()
end, { desc = "hone: cancel the running fix or localize" })

vim.api.nvim_create_user_command("HoneLocalize", function(opts)
  require("hone").localize(opts.args ~= "" and opts.args or nil)
end, {
  nargs = "?",
  desc = "hone: rank the functions likely at fault for the test under the cursor (quickfix list)",
})
