--- hone for Neovim (>= 0.12): a thin client.
---
--- It registers the `hone serve` language server with vim.lsp.config/vim.lsp.enable, turns on
--- Neovim's built-in LSP inline completion (`vim.lsp.inline_completion`, LSP 3.18
--- textDocument/inlineCompletion) in the buffers the server attaches to, and maps a key that
--- accepts the ghost text. Everything else (when to complete, what to show) is the server's job.
---
--- With `tcp = "HOST:PORT"` it attaches to a running `hone serve --tcp` instead of starting one
--- (one client for all buffers, the server's token sent in `initialize`; lua/hone/tcp.lua).
---
--- It also drives the server's "fix this failing test" and "localize" commands (:HoneFix,
--- :HoneLocalize, the "Fix failing test" code lens; lua/hone/repair.lua). They run the
--- repository's tests, so they are off until `run_code = true`.
local M = {}

--- Name of the LSP config and of the client (`vim.lsp.get_clients({ name = "hone" })`).
M.name = "hone"

---@class hone.Keymaps
---@field accept string|false Insert-mode key that accepts the ghost text; falls back to the key itself.
---@field next string|false Insert-mode key that shows the next candidate.
---@field prev string|false Insert-mode key that shows the previous candidate.

---@class hone.Config
---@field cmd string[] Command that starts the server (speaks LSP over stdio). Not used with `tcp`.
---@field model? string Passed to the server as `--model MODEL` (else the server's default / $HONE_MODEL). Not used with `tcp`.
---@field tcp? string "HOST:PORT" ("[::1]:2087" for IPv6) of a running `hone serve --tcp HOST:PORT` to attach to, instead of starting a server over stdio (nil, the default). Plain TCP: reach a remote server through an SSH tunnel.
---@field token? string With `tcp`: the server's token (sent as initializationOptions.token, trimmed; never shown).
---@field token_file? string With `tcp`: a file holding the server's token (used when `token` is nil). Then $HONE_TOKEN, then the server's generated token file for that port ($XDG_RUNTIME_DIR/hone/tcp-PORT.token, else ~/.local/state/hone/tcp-PORT.token).
---@field filetypes string[] Filetypes the server is started for.
---@field root_markers (string|string[])[] Files that mark the workspace root.
---@field init_options table Sent as `initializationOptions` (e.g. maxNewTokens, multiline, debounceMs).
---@field settings? table Sent as `workspace/didChangeConfiguration` settings after start.
---@field cmd_env? table Extra environment for the server process (stdio only).
---@field detached? boolean Run the server in its own process group (Neovim's default: true; stdio only).
---@field exit_timeout integer|false On quit, wait this many ms for the server to exit after "shutdown", then SIGTERM it (false: don't wait).
---@field inline_completion boolean Enable vim.lsp.inline_completion in attached buffers.
---@field keymaps hone.Keymaps
---@field run_code boolean Let the server run the repository's tests (:HoneFix, :HoneLocalize, code lens): sends init_options.runCode = true.
---@field codelens boolean Show the server's code lenses ("Fix failing test") in attached Python buffers.
---@field repair hone.RepairOptions

---@class hone.RepairOptions
---@field confirm? fun(result: table, done: fun(apply: boolean)) Ask whether to apply a fix (default: vim.ui.select Apply/Cancel, with the diff shown in a split).
---@field progress boolean Echo the server's progress messages while a fix/localize runs.
M.defaults = {
  cmd = { "hone", "serve" },
  model = nil,
  tcp = nil,
  token = nil,
  token_file = nil,
  filetypes = {
    "python",
    "javascript",
    "javascriptreact",
    "typescript",
    "typescriptreact",
    "go",
    "rust",
  },
  root_markers = { ".git", "pyproject.toml", "setup.py", "package.json", "go.mod", "Cargo.toml" },
  init_options = {},
  settings = nil,
  cmd_env = nil,
  detached = nil,
  exit_timeout = 1000,
  inline_completion = true,
  keymaps = {
    accept = "<Tab>",
    next = "<M-]>",
    prev = "<M-[>",
  },
  -- Running a repository's tests executes its code. VS Code gates this on workspace trust;
  -- Neovim has no such notion, so it is an explicit opt-in.
  run_code = false,
  codelens = true,
  repair = {
    confirm = nil,
    progress = true,
  },
}

---@type hone.Config?
M.config = nil

local augroup = vim.api.nvim_create_augroup("hone", { clear = true })

--- "stdio" or "tcp": what the last setup() registered with vim.lsp.config.
---@type string?
local registered_transport = nil

--- The command line that starts the server, with `--model` appended when configured.
---@param config hone.Config
---@return string[]
local function server_cmd(config)
  local cmd = vim.list_extend({}, config.cmd)
  if config.model and config.model ~= "" then
    vim.list_extend(cmd, { "--model", config.model })
  end
  return cmd
end

--- initializationOptions: `init_options`, plus runCode = true when `run_code` is set (false is
--- the server's default, so it is not sent; an explicit init_options.runCode is kept).
---@param config hone.Config
---@return table
local function init_options(config)
  local opts = vim.deepcopy(config.init_options)
  if config.run_code and opts.runCode == nil then
    opts.runCode = true
  end
  return opts
end

--- The vim.lsp.Config registered under the name "hone". With `tcp`, `cmd` connects to the
--- running server and adds the token to the `initialize` request as it is sent (the token is
--- in no field of this table), `root_dir` attaches only when a token is found, and
--- `reuse_client` keeps one client (one connection) for all buffers.
---@param config hone.Config
---@return vim.lsp.Config
function M.lsp_config(config)
  local opts = init_options(config)
  if config.tcp then
    local tcp = require("hone.tcp")
    return {
      cmd = tcp.cmd(config),
      filetypes = config.filetypes,
      root_markers = config.root_markers,
      root_dir = tcp.root_dir(config, M.name),
      reuse_client = tcp.reuse_client,
      init_options = next(opts) ~= nil and opts or nil,
      settings = config.settings,
      flags = { exit_timeout = config.exit_timeout },
    }
  end
  return {
    cmd = server_cmd(config),
    filetypes = config.filetypes,
    root_markers = config.root_markers,
    -- An empty Lua table would be encoded as a JSON array ([]), so send nothing instead.
    init_options = next(opts) ~= nil and opts or nil,
    settings = config.settings,
    cmd_env = config.cmd_env,
    detached = config.detached,
    -- Neovim's default (false) quits right after sending "shutdown", so the server meets a
    -- closed pipe instead of "exit"; waiting lets it shut down cleanly (and a hung one is killed).
    flags = { exit_timeout = config.exit_timeout },
  }
end

---@param bufnr integer
---@param keymaps hone.Keymaps
local function map_keys(bufnr, keymaps)
  if keymaps.accept then
    local key = keymaps.accept
    vim.keymap.set("i", key, function()
      if vim.lsp.inline_completion.get({ bufnr = bufnr }) then
        return ""
      end
      return key
    end, { buffer = bufnr, expr = true, desc = "hone: accept inline completion" })
  end
  if keymaps.next then
    vim.keymap.set("i", keymaps.next, function()
      vim.lsp.inline_completion.select({ bufnr = bufnr, count = 1 })
    end, { buffer = bufnr, desc = "hone: next inline completion" })
  end
  if keymaps.prev then
    vim.keymap.set("i", keymaps.prev, function()
      vim.lsp.inline_completion.select({ bufnr = bufnr, count = -1 })
    end, { buffer = bufnr, desc = "hone: previous inline completion" })
  end
end

---@param args { buf: integer, data: { client_id: integer } }
local function on_attach(args)
  local client = vim.lsp.get_client_by_id(args.data.client_id)
  if not client or client.name ~= M.name or not M.config then
    return
  end
  if M.config.inline_completion then
    -- Neovim creates the per-buffer completor right after LspAttach, for every client that
    -- supports textDocument/inlineCompletion, once the buffer is enabled here.
    vim.lsp.inline_completion.enable(true, { bufnr = args.buf })
  end
  map_keys(args.buf, M.config.keymaps)
  if M.config.tcp and require("hone.tcp").is_tcp(client) then
    -- One client serves every root over TCP: tell the server about this buffer's.
    require("hone.tcp").add_folder(client, args.buf, M.config)
  end
  if
    M.config.codelens
    and vim.bo[args.buf].filetype == "python"
    and client:supports_method("textDocument/codeLens", args.buf)
  then
    require("hone.repair").enable_codelens(args.buf, client)
  end
end

--- Configure and enable the hone language server.
---@param opts? hone.Config|table
function M.setup(opts)
  local config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  -- Lists replace the defaults instead of being merged index by index.
  for _, key in ipairs({ "cmd", "filetypes", "root_markers" }) do
    if opts and opts[key] then
      config[key] = opts[key]
    end
  end
  vim.validate("cmd", config.cmd, "table")
  vim.validate("tcp", config.tcp, function(v)
    return require("hone.tcp").parse(v) ~= nil
  end, true, '"HOST:PORT" (e.g. "127.0.0.1:2087")')
  vim.validate("token", config.token, "string", true)
  vim.validate("token_file", config.token_file, "string", true)
  vim.validate("filetypes", config.filetypes, "table")
  vim.validate("init_options", config.init_options, "table")
  vim.validate("run_code", config.run_code, "boolean")
  vim.validate("repair", config.repair, "table")
  vim.validate("repair.confirm", config.repair.confirm, "function", true)
  M.config = config
  require("hone.tcp").reset()

  if vim.fn.has("nvim-0.12") == 0 or not (vim.lsp and vim.lsp.inline_completion) then
    vim.notify("hone: Neovim >= 0.12 (vim.lsp.inline_completion) is required", vim.log.levels.ERROR)
    return
  end
  if config.tcp == nil and vim.fn.executable(config.cmd[1]) == 0 then
    vim.notify(("hone: %q is not executable; set cmd in setup()"):format(config.cmd[1]), vim.log.levels.WARN)
  end

  vim.api.nvim_clear_autocmds({ group = augroup })
  vim.api.nvim_create_autocmd("LspAttach", {
    group = augroup,
    callback = on_attach,
    desc = "hone: enable inline completion and keymaps",
  })

  -- The server's commands, when run by the client (a code lens, vim.lsp.buf.code_action, ...),
  -- go through the plugin: the fix is confirmed in the editor, then applied with hone.applyFix
  -- (instead of the server asking with window/showMessageRequest).
  local repair = require("hone.repair")
  vim.lsp.commands[repair.FIX] = repair.command_handler("fix")
  vim.lsp.commands[repair.LOCALIZE] = repair.command_handler("localize")

  local transport = config.tcp and "tcp" or "stdio"
  if registered_transport and registered_transport ~= transport then
    -- vim.lsp.config() merges: switching between stdio and TCP must drop the other's fields
    -- (root_dir, reuse_client, cmd_env, detached), so replace the whole config.
    vim.lsp.config[M.name] = M.lsp_config(config)
  else
    vim.lsp.config(M.name, M.lsp_config(config))
  end
  registered_transport = transport
  vim.lsp.enable(M.name)
end

--- The hone clients attached to a buffer.
---@param bufnr? integer (default: current buffer)
---@return vim.lsp.Client[]
function M.clients(bufnr)
  return vim.lsp.get_clients({ name = M.name, bufnr = bufnr or vim.api.nvim_get_current_buf() })
end

--- Machine-readable status for a buffer (used by :HoneStatus and the tests).
---@param bufnr? integer
---@return table
function M.status(bufnr)
  bufnr = vim._resolve_bufnr(bufnr)
  local tcp = require("hone.tcp")
  local clients = {}
  for _, client in ipairs(M.clients(bufnr)) do
    table.insert(clients, {
      id = client.id,
      name = client.name,
      transport = tcp.is_tcp(client) and "tcp" or "stdio",
      initialized = client.initialized or false,
      root_dir = client.root_dir,
      server_info = client.server_info,
      inline_completion = client:supports_method("textDocument/inlineCompletion", bufnr),
      codelens = client:supports_method("textDocument/codeLens", bufnr),
      commands = vim.tbl_get(client.server_capabilities or {}, "executeCommandProvider", "commands"),
      stopped = client:is_stopped(),
    })
  end
  return {
    setup = M.config ~= nil,
    enabled = vim.lsp.is_enabled(M.name),
    bufnr = bufnr,
    filetype = vim.bo[bufnr].filetype,
    attached = #clients > 0,
    clients = clients,
    inline_completion_enabled = vim.lsp.inline_completion.is_enabled({ bufnr = bufnr }),
    transport = M.config and (M.config.tcp and "tcp" or "stdio") or nil,
    cmd = M.config and not M.config.tcp and server_cmd(M.config) or nil,
    -- Over TCP: the server's address, and where the token comes from (never the token).
    address = M.config and M.config.tcp or nil,
    token_source = M.config and M.config.tcp and (tcp.describe(M.config)) or nil,
    run_code = M.config and init_options(M.config).runCode == true or false,
    running = vim.tbl_get(require("hone.repair").state, "pending", "kind"),
  }
end

--- Print a human-readable status for the current buffer.
function M.print_status()
  local s = M.status()
  if not s.setup then
    vim.notify('hone: not set up; call require("hone").setup()', vim.log.levels.WARN)
    return
  end
  local lines = {
    ("hone: %s for buffer %d (filetype %q)"):format(
      s.attached and "attached" or "not attached",
      s.bufnr,
      s.filetype
    ),
    s.transport == "tcp" and ("  tcp: %s (%s)"):format(s.address, s.token_source)
      or ("  stdio, cmd: %s"):format(table.concat(s.cmd, " ")),
    ("  inline completion enabled in buffer: %s"):format(s.inline_completion_enabled),
    ("  run_code (:HoneFix, :HoneLocalize): %s%s"):format(
      s.run_code,
      s.running and (", running: " .. s.running) or ""
    ),
  }
  for _, c in ipairs(s.clients) do
    local info = c.server_info and (c.server_info.name .. " " .. (c.server_info.version or "")) or "?"
    table.insert(
      lines,
      ("  client %d: %s over %s, server %s, root %s, inlineCompletionProvider: %s"):format(
        c.id,
        c.stopped and "stopped" or (c.initialized and "running" or "starting"),
        c.transport,
        info,
        c.root_dir or "(none)",
        c.inline_completion
      )
    )
  end
  if not s.attached and not vim.tbl_contains(M.config.filetypes, s.filetype) then
    table.insert(lines, ("  filetype %q is not in filetypes"):format(s.filetype))
  end
  vim.notify(table.concat(lines, "\n"), vim.log.levels.INFO)
end

--- Toggle inline completion in the current buffer.
function M.toggle()
  local enabled = vim.lsp.inline_completion.is_enabled({ bufnr = 0 })
  vim.lsp.inline_completion.enable(not enabled, { bufnr = 0 })
  vim.notify(("hone: inline completion %s"):format(enabled and "disabled" or "enabled"))
end

--- Fix the failing test under the cursor (or the pytest node id `test`): see lua/hone/repair.lua.
---@param test? string
function M.fix(test)
  require("hone.repair").fix({ test = test })
end

--- Cancel the running fix or localize.
function M.cancel()
  require("hone.repair").cancel()
end

--- Rank the functions likely at fault for the test under the cursor into the quickfix list.
---@param test? string
function M.localize(test)
  require("hone.repair").localize({ test = test })
end

--- Stop the hone clients and start them again for the open buffers. Over TCP it only
--- reconnects: `hone serve --tcp` stops when its client disconnects, so with a client attached
--- it says so and leaves it (start the server again first if it went away).
function M.restart()
  if M.config and M.config.tcp and #vim.lsp.get_clients({ name = M.name }) > 0 then
    vim.notify(
      ("hone: attached over TCP to %s; disconnecting would stop that server (it serves one client "
        .. "and exits when it leaves). Restart `hone serve --tcp` yourself, then :HoneRestart reconnects"):format(
        M.config.tcp
      ),
      vim.log.levels.WARN
    )
    return
  end
  if M.config and M.config.tcp then
    require("hone.tcp").drop_waiting()
  end
  vim.lsp.enable(M.name, false)
  vim.defer_fn(function()
    vim.lsp.enable(M.name, true)
  end, 500)
end

return M
