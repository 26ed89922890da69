--- hone's "fix this failing test" and "localize" for Neovim.
---
--- Both are server commands (`workspace/executeCommand`): `hone.fixFailingTest` looks for an
--- edit that makes the test under the cursor pass (validated by running the tests in a scratch
--- copy of the workspace), `hone.localize` ranks the functions most likely to hold the bug.
--- The plugin only sends the request (asynchronously: the editor stays usable), shows the
--- server's `$/progress` messages, and then:
---   - fix: shows the diff in a scratch buffer, asks Apply/Cancel, and on Apply calls
---     `hone.applyFix`; the server answers with a `workspace/applyEdit` of versioned
---     TextDocumentEdits that Neovim applies to the buffers (nothing is written to disk).
---   - localize: fills the quickfix list with the ranked functions.
--- See server/README.md ("Commands: fix a failing test, localize") for the protocol.
local M = {}

local api = vim.api
local levels = vim.log.levels

M.FIX = "hone.fixFailingTest"
M.APPLY = "hone.applyFix"
M.LOCALIZE = "hone.localize"

--- What the plugin is doing and did last (read by :HoneStatus users, statuslines, and tests).
---@class hone.repair.State
---@field pending? table The running fix/localize request: { kind, client_id, request_id, test, bufnr, token }.
---@field progress table[] The progress messages of the current (or last) run: { kind, title, message, percentage }.
---@field last? table The last answer: { kind, err?, result?, cancelled? }.
---@field last_apply? table The last Apply/Cancel answer: { fix_id, choice, err?, result? }.
---@field diff? table The diff view being shown: { buf, win, name }.
M.state = { pending = nil, progress = {}, last = nil, last_apply = nil, diff = nil }

local augroup = api.nvim_create_augroup("hone.repair", { clear = true })

---@param msg string
---@param level? integer
local function notify(msg, level)
  -- The server's messages may already say "hone: ".
  vim.notify((msg:match("^hone: ") and "" or "hone: ") .. msg, level or levels.INFO)
end

---@return table
local function options()
  local hone = require("hone")
  return (hone.config and hone.config.repair) or hone.defaults.repair
end

--- The hone client attached to `bufnr`, or nil (after telling the user why).
---@param bufnr integer
---@return vim.lsp.Client?
local function client_for(bufnr)
  local client = vim.lsp.get_clients({ name = require("hone").name, bufnr = bufnr })[1]
  if not client then
    notify("the hone server is not attached to this buffer (see :HoneStatus)", levels.ERROR)
  end
  return client
end

--- The message of a JSON-RPC error.
---@param err lsp.ResponseError|table|string
---@return string
local function error_message(err)
  if type(err) == "table" and err.message then
    return err.message
  end
  return tostring(err)
end

--- Forget a pending request whose client went away (stopped, or answered without a handler).
local function drop_stale_pending()
  local p = M.state.pending
  if not p then
    return
  end
  local client = vim.lsp.get_client_by_id(p.client_id)
  if not client or client:is_stopped() or (client.requests and not client.requests[p.request_id]) then
    M.state.pending = nil
  end
end

-- Progress --------------------------------------------------------------------------------

--- Show a progress message as a Neovim progress-message (0.12 `nvim_echo` kind "progress"),
--- else as a plain echo that does not go into the message history.
---@param pending table
---@param text string
---@param status "running"|"success"|"failed"|"cancel"
---@param percent? integer
local function echo_progress(pending, text, status, percent)
  if not options().progress then
    return
  end
  local opts = { kind = "progress", title = "hone", status = status, percent = percent }
  if pending.progress_id then
    opts.id = pending.progress_id
  end
  -- The progress message shows its title ("hone") itself.
  local ok, id = pcall(api.nvim_echo, { { text } }, false, opts)
  if ok then
    pending.progress_id = id
  else
    pcall(api.nvim_echo, { { "hone: " .. text } }, false, {})
  end
end

api.nvim_create_autocmd("LspProgress", {
  group = augroup,
  desc = "hone: show the progress of a running fix/localize",
  callback = function(ev)
    local p = M.state.pending
    local data = ev.data or {}
    if not p or data.client_id ~= p.client_id or type(data.params) ~= "table" then
      return
    end
    local value = data.params.value
    if type(value) ~= "table" then
      return
    end
    -- The server creates a token (window/workDoneProgress/create) for the command it runs,
    -- titled "hone: fix <test>" / "hone: localize <test>" (Neovim carries the title over to
    -- report/end); its other work (loading, indexing) is titled "hone".
    local title = type(value.title) == "string" and value.title or ""
    if title:sub(1, #p.kind + 7) ~= ("hone: %s "):format(p.kind) then
      return
    end
    if value.kind == "begin" then
      p.token = data.params.token -- for window/workDoneProgress/cancel
    end
    table.insert(M.state.progress, {
      kind = value.kind,
      title = value.title,
      message = value.message,
      percentage = value.percentage,
    })
    if value.kind ~= "end" then
      echo_progress(p, value.message or title, "running", value.percentage)
    end
  end,
})

-- Requests ---------------------------------------------------------------------------------

--- What names the test: an explicit node id, else the cursor position in the buffer.
---@param bufnr integer
---@param client vim.lsp.Client
---@param test_id? string
---@return table
local function target(bufnr, client, test_id)
  if test_id and test_id ~= "" then
    return { testId = test_id }
  end
  local win = api.nvim_get_current_win()
  if api.nvim_win_get_buf(win) ~= bufnr then
    win = vim.fn.bufwinid(bufnr)
  end
  local params = vim.lsp.util.make_position_params(win, client.offset_encoding)
  return { uri = params.textDocument.uri, position = params.position }
end

--- Send a long-running command without blocking, remembering it as the pending one.
---@param client vim.lsp.Client
---@param bufnr integer
---@param kind "fix"|"localize"
---@param command string
---@param args table
---@param on_result fun(err: lsp.ResponseError?, result: table?, pending: table, client: vim.lsp.Client)
local function start(client, bufnr, kind, command, args, on_result)
  drop_stale_pending()
  if M.state.pending then
    notify(
      ("a %s is already running (%s); :HoneFixCancel stops it"):format(
        M.state.pending.kind,
        M.state.pending.test or "the test under the cursor"
      ),
      levels.WARN
    )
    return
  end
  local pending = { kind = kind, client_id = client.id, test = args.testId, bufnr = bufnr }
  M.state.progress = {}
  -- No workDoneToken: the server creates its own progress token (Neovim supports
  -- window/workDoneProgress/create) and titles it after the command.
  local params = { command = command, arguments = { args } }
  local ok, request_id = client:request("workspace/executeCommand", params, function(err, result)
    if M.state.pending ~= pending then
      return -- cancelled by the user (or superseded): the answer is no longer wanted
    end
    M.state.pending = nil
    M.state.last = { kind = kind, err = err, result = result }
    local status = err and "failed" or "success"
    if result and result.status == "cancelled" then
      status = "cancel"
    end
    echo_progress(pending, err and "failed" or ((result and result.status) or "done"), status, 100)
    on_result(err, result, pending, client)
  end, bufnr)
  if not ok or not request_id then
    notify("could not send " .. command .. " (has the server stopped?)", levels.ERROR)
    return
  end
  pending.request_id = request_id
  M.state.pending = pending
  echo_progress(
    pending,
    (kind == "fix" and "fixing " or "localizing ") .. (pending.test or "the test under the cursor"),
    "running",
    0
  )
end

-- Fix --------------------------------------------------------------------------------------

--- Close the diff view if it is still open.
local function close_diff()
  local d = M.state.diff
  M.state.diff = nil
  if d and d.win and api.nvim_win_is_valid(d.win) then
    pcall(api.nvim_win_close, d.win, true)
  end
  if d and d.buf and api.nvim_buf_is_valid(d.buf) then
    pcall(api.nvim_buf_delete, d.buf, { force = true })
  end
end

--- Show the fix's unified diff in a read-only scratch buffer (filetype diff) in a split below.
---@param result table
---@return integer buf, integer win
function M.show_diff(result)
  close_diff()
  local name = "hone://fix/" .. (result.test or "test")
  for _, b in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_get_name(b) == name then
      pcall(api.nvim_buf_delete, b, { force = true })
    end
  end
  local lines = {}
  local message = (result.message or ("a fix for " .. (result.test or "the test"))):gsub("^hone: ", "")
  table.insert(lines, "# " .. message)
  if result.explanation and result.explanation ~= "" then
    for _, l in ipairs(vim.split(result.explanation, "\n", { plain = true })) do
      table.insert(lines, "# " .. l)
    end
  end
  table.insert(lines, "")
  local diff = vim.split(result.diff or "", "\n", { plain = true })
  if diff[#diff] == "" then
    table.remove(diff)
  end
  vim.list_extend(lines, diff)

  local buf = api.nvim_create_buf(false, true)
  api.nvim_buf_set_name(buf, name)
  api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].filetype = "diff"
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  vim.keymap.set("n", "q", "<Cmd>close<CR>", { buffer = buf, desc = "hone: close the diff" })
  local height = math.max(5, math.min(#lines + 1, math.floor(vim.o.lines / 2)))
  local win = api.nvim_open_win(buf, false, { split = "below", win = -1, height = height })
  vim.wo[win].wrap = true
  vim.wo[win].linebreak = true
  M.state.diff = { buf = buf, win = win, name = name }
  return buf, win
end

--- Ask Apply/Cancel with vim.ui.select (any UI plugin that replaces it is used).
---@param result table
---@param done fun(apply: boolean)
function M.default_confirm(result, done)
  local files = type(result.changes) == "table" and #result.changes or 0
  if files == 0 then
    for _ in ("\n" .. (result.diff or "")):gmatch("\n%+%+%+ ") do
      files = files + 1
    end
  end
  vim.ui.select({ "Apply", "Cancel" }, {
    prompt = ("hone: apply the fix for %s (%d file%s, not saved)?"):format(
      result.test or "the test",
      math.max(files, 1),
      files > 1 and "s" or ""
    ),
    kind = "hone.fix",
  }, function(choice)
    done(choice == "Apply")
  end)
end

--- Ask the server to apply a fix it found (it sends workspace/applyEdit; Neovim applies it).
---@param client vim.lsp.Client
---@param result table
function M.apply(client, result)
  local fix_id = result.fixId
  -- No bufnr: the client flushes every buffer's pending didChange first, so the server checks
  -- the versions against the text the user has now.
  client:request("workspace/executeCommand", {
    command = M.APPLY,
    arguments = { { fixId = fix_id } },
  }, function(err, res)
    M.state.last_apply = { fix_id = fix_id, choice = "apply", err = err, result = res }
    if err then
      notify(error_message(err), levels.ERROR)
    elseif res and res.applied then
      -- The server never writes files: the buffers are changed, not saved.
      notify((res.message or "fix applied") .. " (not saved yet)")
    else
      notify((res and res.message) or "the fix was not applied", levels.WARN)
    end
  end)
end

---@param client vim.lsp.Client
---@param result table
local function review(client, result)
  M.show_diff(result)
  local answered = false
  local confirm = options().confirm or M.default_confirm
  confirm(result, function(apply)
    if answered then
      return
    end
    answered = true
    close_diff()
    if apply then
      M.apply(client, result)
    else
      M.state.last_apply = { fix_id = result.fixId, choice = "cancel" }
      notify("fix not applied")
    end
  end)
end

---@param err lsp.ResponseError?
---@param result table?
--- The command's answer, or nil after telling the user why there is none.
local function answer(err, result)
  if err then
    notify(error_message(err), levels.ERROR)
    return nil
  end
  if type(result) ~= "table" then
    notify("the server gave no answer", levels.ERROR)
    return nil
  end
  return result
end

local function on_fix(err, result, _, client)
  result = answer(err, result)
  if not result then
    return
  end
  if result.status == "fixed" and result.fixId and not result.applied and (result.diff or "") ~= "" then
    review(client, result)
    return
  end
  local level = result.status == "not-fixed" and levels.WARN or levels.INFO
  notify(result.message or result.status or "done", level)
end

--- Fix the failing test under the cursor (or `opts.test`, or the command arguments `opts.args`).
---@param opts? { bufnr?: integer, client_id?: integer, test?: string, args?: table }
function M.fix(opts)
  opts = opts or {}
  local bufnr = vim._resolve_bufnr(opts.bufnr)
  local client = opts.client_id and vim.lsp.get_client_by_id(opts.client_id) or client_for(bufnr)
  if not client then
    return
  end
  local args = opts.args and vim.deepcopy(opts.args) or target(bufnr, client, opts.test)
  args.confirm = "client"
  start(client, bufnr, "fix", M.FIX, args, on_fix)
end

-- Localize ---------------------------------------------------------------------------------

---@param x any
---@return string
local function num(x)
  return type(x) == "number" and ("%.2f"):format(x) or "-"
end

--- The quickfix item of a ranked function.
---@param f table
---@param root string?
---@return table
function M.qf_item(f, root)
  local filename
  if type(f.uri) == "string" then
    filename = vim.uri_to_fname(f.uri)
  elseif root then
    filename = vim.fs.joinpath(root, f.path)
  else
    filename = f.path
  end
  local s = type(f.signals) == "table" and f.signals or {}
  return {
    filename = filename,
    lnum = f.start_line,
    end_lnum = f.end_line,
    col = 1,
    text = ("%s %s (traceback %s, spectrum %s, similarity %s)"):format(
      f.name,
      num(f.score),
      num(s.traceback),
      num(s.spectrum),
      num(s.similarity)
    ),
    user_data = f,
  }
end

local function on_localize(err, result, _, client)
  result = answer(err, result)
  if not result then
    return
  end
  if result.status ~= "localized" then
    notify(result.message or result.status or "done")
    return
  end
  local items = {}
  for _, f in ipairs(result.functions or {}) do
    table.insert(items, M.qf_item(f, client.root_dir))
  end
  vim.fn.setqflist({}, " ", { title = "hone: localize " .. (result.test or ""), items = items })
  if #items > 0 then
    vim.cmd("botright copen")
  end
  notify(result.message or ("%d function(s) ranked"):format(#items))
end

--- Rank the functions that likely hold the bug the test under the cursor (or `opts.test`)
--- fails on, into the quickfix list.
---@param opts? { bufnr?: integer, client_id?: integer, test?: string, args?: table }
function M.localize(opts)
  opts = opts or {}
  local bufnr = vim._resolve_bufnr(opts.bufnr)
  local client = opts.client_id and vim.lsp.get_client_by_id(opts.client_id) or client_for(bufnr)
  if not client then
    return
  end
  local args = opts.args and vim.deepcopy(opts.args) or target(bufnr, client, opts.test)
  start(client, bufnr, "localize", M.LOCALIZE, args, on_localize)
end

--- Cancel the running fix/localize: the server stops the test run and the repair.
--- Both ways the server listens to: window/workDoneProgress/cancel on its progress token, and
--- $/cancelRequest on the request.
function M.cancel()
  drop_stale_pending()
  local p = M.state.pending
  if not p then
    notify("nothing is running")
    return
  end
  M.state.pending = nil
  M.state.last = { kind = p.kind, cancelled = true }
  local client = vim.lsp.get_client_by_id(p.client_id)
  if client then
    if p.token ~= nil then
      client:notify("window/workDoneProgress/cancel", { token = p.token })
    end
    client:cancel_request(p.request_id)
  end
  echo_progress(p, "cancelled", "cancel", 100)
  notify(("%s cancelled"):format(p.kind))
end

-- Code lens --------------------------------------------------------------------------------

--- A `vim.lsp.commands` handler: a code lens (or any other client-side execution of the
--- server's command) goes through the plugin's flow: confirm in the editor, then applyFix.
---@param kind "fix"|"localize"
---@return fun(command: lsp.Command, ctx: table)
function M.command_handler(kind)
  return function(command, ctx)
    local args = (command.arguments or {})[1]
    local opts = { bufnr = ctx.bufnr, client_id = ctx.client_id }
    opts.args = type(args) == "table" and args or nil
    if kind == "fix" then
      M.fix(opts)
    else
      M.localize(opts)
    end
    -- vim.lsp.codelens.run() cleared the lens it ran; without enable() (older 0.12 builds)
    -- nothing redraws it until the next refresh.
    local codelens = vim.lsp.codelens
    if ctx.bufnr and codelens.enable == nil and type(codelens.refresh) == "function" then
      pcall(codelens.refresh, { bufnr = ctx.bufnr })
    end
  end
end

--- Show the server's code lenses ("Fix failing test") in a buffer and keep them fresh.
---@param bufnr integer
---@param client vim.lsp.Client
function M.enable_codelens(bufnr, client)
  local codelens = vim.lsp.codelens
  if type(codelens.enable) == "function" then
    -- Newer Neovim: code lens is a capability that Neovim refreshes itself.
    if pcall(codelens.enable, true, { bufnr = bufnr }) then
      return
    end
  end
  if type(codelens.refresh) ~= "function" then
    return
  end
  local group = api.nvim_create_augroup("hone.codelens." .. bufnr, { clear = true })
  local function refresh()
    if #vim.lsp.get_clients({ id = client.id, bufnr = bufnr }) > 0 then
      codelens.refresh({ bufnr = bufnr })
    end
  end
  api.nvim_create_autocmd({ "BufEnter", "BufWritePost", "InsertLeave" }, {
    group = group,
    buffer = bufnr,
    callback = refresh,
    desc = "hone: refresh code lenses",
  })
  api.nvim_create_autocmd("LspDetach", {
    group = group,
    buffer = bufnr,
    callback = function(ev)
      if ev.data and ev.data.client_id == client.id then
        pcall(api.nvim_del_augroup_by_id, group)
      end
    end,
  })
  refresh()
end

return M
