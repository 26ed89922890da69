-- The plugin's TCP configuration without a server, for tests/e2e/test_neovim_tcp.py
-- (run with `nvim --headless --clean -l`): prints one JSON record of what it observed.
--   HONE_NVIM_PLUGIN      path to editor-clients/neovim
--   HONE_TEST_TOKEN_FILE  an owner-only file holding a token (padded with spaces)
-- XDG_RUNTIME_DIR holds hone/tcp-2087.token (the server's generated token file); HONE_TOKEN
-- is unset when this starts.
vim.opt.runtimepath:prepend(assert(vim.env.HONE_NVIM_PLUGIN, "HONE_NVIM_PLUGIN is not set"))
local hone = require("hone")
local tcp = require("hone.tcp")
local out = {}

local SECRET = "from-setup-0123456789"
hone.setup({ tcp = "127.0.0.1:2087", token = "  " .. SECRET .. "\n", init_options = { debounceMs = 0 } })
local config = hone.lsp_config(hone.config)
local status = hone.status()
out.tcp_config = {
  cmd = type(config.cmd),
  reuse_client = type(config.reuse_client),
  root_dir = type(config.root_dir),
  init_options = config.init_options,
  secret_in_config = vim.inspect(config):find(SECRET, 1, true) ~= nil
    or vim.inspect(vim.lsp.config.hone):find(SECRET, 1, true) ~= nil,
  secret_in_status = vim.inspect(status):find(SECRET, 1, true) ~= nil,
  token_source = status.token_source,
}

-- Each source in turn: token, token_file, $HONE_TOKEN, the default file for the port.
local function token(cfg)
  local secret, source = tcp.token(vim.tbl_extend("force", { tcp = "127.0.0.1:2087" }, cfg))
  return { secret or vim.NIL, source }
end
local file = assert(vim.env.HONE_TEST_TOKEN_FILE)
vim.env.HONE_TOKEN = " from-the-env-0123456789 "
out.order = {
  token({ token = SECRET, token_file = file }),
  token({ token_file = file }),
  token({}),
}
vim.env.HONE_TOKEN = nil
table.insert(out.order, token({}))
out.missing_token_file = select(2, tcp.token({ tcp = "127.0.0.1:2087", token_file = file .. ".missing" }))

out.bad_addresses = {}
for _, address in ipairs({ "localhost", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:x", "[::1]:2087", "localhost:2087" }) do
  out.bad_addresses[address] = (pcall(hone.setup, { tcp = address }))
end

hone.setup({})
local stdio = hone.lsp_config(hone.config)
out.stdio_config = {
  cmd = stdio.cmd,
  root_dir = stdio.root_dir or vim.NIL,
  reuse_client = stdio.reuse_client or vim.NIL,
  transport = hone.status().transport,
  -- what Neovim will use: no TCP leftovers after switching back (vim.lsp.config merges)
  registered_root_dir = type(vim.lsp.config.hone.root_dir),
  registered_reuse_client = type(vim.lsp.config.hone.reuse_client),
  registered_cmd = vim.lsp.config.hone.cmd,
}

io.stdout:write(vim.json.encode(out) .. "\n")
