--- Attaching to a running `hone serve --tcp HOST:PORT` (setup({ tcp = "HOST:PORT" })).
---
--- The listener serves one client at a time, and that client's first message must be the
--- `initialize` request carrying the server's secret as `initializationOptions.token`; anything
--- else gets a JSON-RPC error (code -32001) and a closed connection (server/transport.py).
--- So over TCP the plugin:
---   - reads the token when it connects: `token`, else the contents of `token_file`, else
---     `$HONE_TOKEN`, else the file the server writes a generated token to
---     (`$XDG_RUNTIME_DIR/hone/tcp-PORT.token`, else `~/.local/state/hone/tcp-PORT.token`);
---   - puts it into a copy of the `initialize` params at the moment they are sent (M.cmd), so
---     it is in no config table, status or message, and keeps that one request out of
---     Neovim's lsp.log even at DEBUG level (which logs every message sent);
---   - does not start a client when there is no token (M.root_dir: an ERROR saying where it
---     looked), and shows the server's refusal as one ERROR;
---   - uses one client for every buffer, whatever its root (M.reuse_client), adding each new
---     root as a workspace folder (M.add_folder), since a second connection is refused.
local M = {}

M.AUTH_ERROR = -32001

--- `host, port` of "HOST:PORT" ("[::1]:2087" for IPv6), or nil when malformed.
---@param address any
---@return string?, integer?
function M.parse(address)
  if type(address) ~= "string" then
    return nil
  end
  local host, port = address:match("^%[([^%]]+)%]:(%d+)$")
  if not host then
    host, port = address:match("^([^:%s]+):(%d+)$")
  end
  local number = tonumber(port)
  if not host or not number or number < 1 or number > 65535 then
    return nil
  end
  return host, number
end

--- The file `hone serve --tcp HOST:PORT` writes its generated token to (on its machine).
---@param port integer
---@return string
function M.default_token_path(port)
  local base = vim.env.XDG_RUNTIME_DIR
  local folder = (base and base ~= "") and vim.fs.joinpath(base, "hone")
    or vim.fs.joinpath(vim.uv.os_homedir() or "~", ".local", "state", "hone")
  return vim.fs.joinpath(folder, ("tcp-%d.token"):format(port))
end

---@param path string
---@return string?, string? # contents, or nil and why not
local function read(path)
  local f, err = io.open(path, "r")
  if not f then
    -- io.open's message starts with the path; keep the reason.
    return nil, (tostring(err):gsub("^.-: ", ""))
  end
  local text = f:read("*a")
  f:close()
  return text or ""
end

--- The token for `config.tcp`: `secret, source, path`, or `nil, why` (where it looked).
--- `source` says where the secret came from and never contains it; `path` is the file it was
--- read from, if any. Only M.cmd sends the secret anywhere.
---@param config hone.Config
---@return string?, string, string?
function M.token(config)
  local _, port = M.parse(config.tcp)
  if config.token ~= nil then
    local secret = vim.trim(config.token)
    if secret == "" then
      return nil, "the token given to setup() is empty"
    end
    return secret, "token from setup()"
  end
  if config.token_file ~= nil then
    local path = vim.fs.normalize(config.token_file)
    local text, err = read(path)
    if not text then
      return nil, ("cannot read token_file %s (%s)"):format(path, err)
    end
    local secret = vim.trim(text)
    if secret == "" then
      return nil, ("token_file %s is empty"):format(path)
    end
    return secret, "token from token_file " .. path, path
  end
  local env = vim.trim(vim.env.HONE_TOKEN or "")
  if env ~= "" then
    return env, "token from $HONE_TOKEN"
  end
  local path = M.default_token_path(port or 0)
  local text, err = read(path)
  local secret = text and vim.trim(text) or ""
  if secret ~= "" then
    return secret, "token from " .. path, path
  end
  return nil,
    ("no token: token and token_file are not set, $HONE_TOKEN is not set, and %s %s"):format(
      path,
      text and "is empty" or ("cannot be read (" .. err .. ")")
    )
end

--- Where the token comes from (or why there is none): safe to show.
---@param config hone.Config
---@return string description, boolean found, string? path
function M.describe(config)
  local secret, source, path = M.token(config)
  return source, secret ~= nil, path
end

--- Run `fn(...)` with Neovim's LSP log above DEBUG (which logs each message sent, in full).
local function unlogged(fn, ...)
  local log = vim.lsp.log
  local level = log.get_level()
  if level > vim.log.levels.DEBUG then
    return fn(...)
  end
  log.set_level(vim.log.levels.INFO)
  local ok, a, b = pcall(fn, ...)
  log.set_level(level)
  if not ok then
    error(a, 0)
  end
  return a, b
end

--- Connections whose `initialize` has not been answered (the server may not be listening:
--- Neovim then only warns "Could not connect", and the client waits forever).
---@type table<vim.lsp.rpc.PublicClient, true>
local waiting = setmetatable({}, { __mode = "k" })

--- Close the connections still waiting for the server's answer to `initialize` (their clients
--- exit), so that the next attach connects again (:HoneRestart).
function M.drop_waiting()
  for rpc in pairs(waiting) do
    waiting[rpc] = nil
    rpc.terminate()
  end
end

--- The vim.lsp.Config `cmd`: `vim.lsp.rpc.connect(host, port)`, whose `initialize` request
--- gets the token added to (a copy of) its initializationOptions as it is sent.
---@param config hone.Config
---@return fun(dispatchers: vim.lsp.rpc.Dispatchers, config: vim.lsp.ClientConfig): vim.lsp.rpc.PublicClient
function M.cmd(config)
  local host, port = assert(M.parse(config.tcp))
  local connect = vim.lsp.rpc.connect(host, port)
  return function(dispatchers)
    local rpc = connect(dispatchers)
    local request = rpc.request
    function rpc.request(method, params, callback, notify_reply_callback)
      if method ~= "initialize" then
        return request(method, params, callback, notify_reply_callback)
      end
      -- Without a token (it went away since M.root_dir looked) the server refuses, and says so.
      local secret, source = M.token(config)
      params = vim.tbl_extend("force", {}, params or {})
      local opts = type(params.initializationOptions) == "table" and params.initializationOptions or {}
      params.initializationOptions = vim.tbl_extend("force", {}, opts, { token = secret })
      local function on_initialize(err, result)
        waiting[rpc] = nil
        if type(err) == "table" and err.code == M.AUTH_ERROR then
          -- Neovim would report it as a failed assertion in a callback: say it plainly, once.
          vim.schedule(function()
            vim.notify(
              ("hone: the server at %s refused the connection (%s): %s"):format(
                config.tcp,
                source,
                tostring(err.message)
              ),
              vim.log.levels.ERROR
            )
          end)
          rpc.terminate()
          return
        end
        return callback(err, result)
      end
      waiting[rpc] = true
      local ok, id = unlogged(request, method, params, on_initialize, notify_reply_callback)
      vim.lsp.log.debug("hone: sent initialize to", config.tcp, "(not logged: it holds the token)")
      return ok, id
    end
    return rpc
  end
end

--- Whether the plugin may (re)use `client` for a buffer: over TCP, any running hone client.
---@param client vim.lsp.Client
---@param config vim.lsp.ClientConfig
---@return boolean
function M.reuse_client(client, config)
  return client.name == config.name and not client:is_stopped()
end

local warned = {} ---@type table<string, boolean>

--- Forget the "no token" messages already shown (setup() calls it).
function M.reset()
  warned = {}
end

--- The vim.lsp.Config `root_dir`: the buffer's root (from `root_markers`), given to Neovim only
--- when a client can attach: one is running (it is reused), or a token was found.
---@param config hone.Config
---@param name string
---@return fun(bufnr: integer, on_dir: fun(root?: string))
function M.root_dir(config, name)
  return function(bufnr, on_dir)
    local root = vim.fs.root(bufnr, config.root_markers)
    -- A running client is reused (M.reuse_client): it needs no token, it has one.
    if #vim.lsp.get_clients({ name = name }) == 0 then
      local secret, why = M.token(config)
      if not secret then
        if not warned[why] then
          warned[why] = true
          local msg = (
            "hone: not attaching to the server at %s: %s. Set token_file (or token, or $HONE_TOKEN) "
            .. "in setup() to the server's token (`hone serve --tcp` prints where it is)"
          ):format(config.tcp, why)
          -- Not from inside the FileType autocommand: an error message there becomes an
          -- exception that aborts the other FileType handlers.
          vim.schedule(function()
            vim.notify(msg, vim.log.levels.ERROR)
          end)
        end
        return
      end
    end
    on_dir(root)
  end
end

--- Make `bufnr`'s root one of `client`'s workspace folders (the server resolves paths, indexes
--- and runs tests per workspace folder; Neovim only sets the first client's root).
---@param client vim.lsp.Client
---@param bufnr integer
---@param config hone.Config
function M.add_folder(client, bufnr, config)
  local root = vim.fs.root(bufnr, config.root_markers)
  if not root then
    return
  end
  local folder = { uri = vim.uri_from_fname(root), name = root }
  for _, known in ipairs(client.workspace_folders or {}) do
    if known.uri == folder.uri then
      return
    end
  end
  client:notify("workspace/didChangeWorkspaceFolders", { event = { added = { folder }, removed = {} } })
  client.workspace_folders = client.workspace_folders or {}
  table.insert(client.workspace_folders, folder)
end

--- Whether `client` talks to its server over TCP (the plugin's `cmd` is then a function).
---@param client vim.lsp.Client
---@return boolean
function M.is_tcp(client)
  return type(client.config.cmd) == "function"
end

return M
