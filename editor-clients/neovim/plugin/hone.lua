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
