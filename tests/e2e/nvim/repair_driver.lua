-- Scenario driver for tests/e2e/test_neovim_repair.py, run with `-c "luafile repair_driver.lua"`
-- after tests/e2e/nvim/init.lua set the plugin up and the test file was opened. It behaves like
-- a user: waits for the hone client to attach, opens the files it is told to, puts the cursor
-- in a test, runs :HoneFix / :HoneLocalize / the code lens, answers the Apply/Cancel question
-- (vim.ui.select, replaced here by a recorder that answers when the scenario says so), and
-- records what it saw in a JSON file (HONE_NVIM_RESULT), then quits. Every wait has a
-- deadline, so a hang becomes a recorded failure, not a stuck editor.
--
-- HONE_NVIM_SCENARIO (JSON):
--   kind              "fix" | "localize" | "codelens" | "cancel" (:HoneFixCancel once the
--                     fix reports progress)
--   line, col         cursor in the test file (1-based line, 0-based byte column)
--   open              files (relative to the cwd) to open in buffers before running
--   answer            "Apply" | "Cancel": the answer to the plugin's question
--   stale_edit        { file, text }: before answering, insert `text` as line 1 of `file`'s buffer
--   run_lens          codelens: run the lens of the test whose id ends with this
--   files             files whose buffer and disk content are recorded at the end
--   attach_timeout_ms how long the client may take to attach
--   run_timeout_ms    how long the fix/localize may take

local api = vim.api
local scenario = vim.json.decode(vim.env.HONE_NVIM_SCENARIO or "{}")

local harness = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "harness.lua"))
local result = {
  ok = false,
  steps = {},
  notifications = {},
  selects = {},
  requests = {},
  lsp_progress = {},
  progress_echo = {},
  apply_edits = {},
  show_message_requests = {},
  server_messages = {},
}
local h = harness.new(result)
local now, step, finish, sleep, wait_for, fail = h.now, h.step, h.finish, h.sleep, h.wait_for, h.fail
local plain = harness.plain

-- What the user sees, recorded -------------------------------------------------------------

local notify = vim.notify
vim.notify = function(msg, level, opts)
  table.insert(result.notifications, { t_ms = now(), message = msg, level = level or vim.log.levels.INFO })
  return notify(msg, level, opts)
end

local pending_select ---@type table?

--- The plugin's diff view, if one is open.
local function diff_view()
  for _, buf in ipairs(api.nvim_list_bufs()) do
    local name = api.nvim_buf_get_name(buf)
    if name:match("^hone://fix/") and api.nvim_buf_is_valid(buf) then
      return {
        name = name,
        lines = api.nvim_buf_get_lines(buf, 0, -1, false),
        filetype = vim.bo[buf].filetype,
        buftype = vim.bo[buf].buftype,
        modifiable = vim.bo[buf].modifiable,
        displayed = vim.fn.bufwinid(buf) ~= -1,
      }
    end
  end
  return nil
end

vim.ui.select = function(items, opts, on_choice)
  local record = { t_ms = now(), items = items, prompt = opts.prompt, kind = opts.kind }
  table.insert(result.selects, record)
  if opts.kind == "hone.fix" then
    record.diff = diff_view()
    pending_select = { items = items, on_choice = on_choice, record = record }
  else
    -- e.g. vim.lsp.codelens.run() choosing among several lenses on one line: the first one.
    record.answer = items[1]
    vim.schedule(function()
      on_choice(items[1], 1)
    end)
  end
end

for method, list in pairs({
  ["workspace/applyEdit"] = "apply_edits",
  ["window/showMessageRequest"] = "show_message_requests",
  ["window/showMessage"] = "server_messages",
}) do
  local original = vim.lsp.handlers[method]
  vim.lsp.handlers[method] = function(err, params, ctx)
    local entry = { t_ms = now(), params = params }
    table.insert(result[list], entry)
    local ret = original(err, params, ctx)
    entry.returned = ret
    return ret
  end
end

api.nvim_create_autocmd("LspProgress", {
  callback = function(ev)
    local value = ev.data.params.value
    if type(value) == "table" then
      table.insert(result.lsp_progress, {
        t_ms = now(),
        token = ev.data.params.token,
        kind = value.kind,
        title = value.title,
        message = value.message,
        percentage = value.percentage,
      })
    end
  end,
})

api.nvim_create_autocmd("Progress", {
  pattern = "hone",
  callback = function(ev)
    local text = ev.data.text
    if type(text) == "table" then
      text = table.concat(text)
    end
    local data = ev.data
    table.insert(result.progress_echo, { t_ms = now(), text = text, status = data.status, percent = data.percent })
  end,
})

-- The scenario ----------------------------------------------------------------------------

local function check_server()
  if _G.hone_test_server_exit then
    result.server_exit = _G.hone_test_server_exit
    fail("the server exited")
  end
end

--- Record the executeCommand requests the plugin sends (command and arguments).
local function record_requests(client)
  local request = client.request
  client.request = function(self, method, params, ...)
    if method == "workspace/executeCommand" then
      table.insert(result.requests, { t_ms = now(), command = params.command, arguments = params.arguments })
    end
    return request(self, method, params, ...)
  end
end

local function wait_attached(bufnr)
  local hone = require("hone")
  local s = wait_for(function()
    check_server()
    local s = hone.status(bufnr)
    return s.attached and s.clients[1].initialized and s
  end, scenario.attach_timeout_ms, 50)
  if not s then
    result.status = hone.status(bufnr)
    fail("the hone client did not attach to " .. api.nvim_buf_get_name(bufnr))
  end
  return s
end

local function abspath(file)
  return vim.fs.normalize(vim.fs.joinpath(vim.fn.getcwd(), file))
end

local function read_disk(file)
  local f = io.open(abspath(file), "r")
  if not f then
    return nil
  end
  local text = f:read("*a")
  f:close()
  return text
end

local function buffer_of(file)
  local buf = vim.fn.bufnr(abspath(file))
  if buf == -1 or not api.nvim_buf_is_loaded(buf) then
    return nil
  end
  return buf
end

local function record_files()
  result.files = {}
  for _, file in ipairs(scenario.files or {}) do
    local buf = buffer_of(file)
    local record = { disk = read_disk(file), loaded = buf ~= nil }
    if buf then
      record.lines = api.nvim_buf_get_lines(buf, 0, -1, false)
      record.modified = vim.bo[buf].modified
    end
    result.files[file] = record
  end
end

--- The code lenses of a buffer, whichever vim.lsp.codelens API this Neovim has.
local function lenses(bufnr)
  local codelens = vim.lsp.codelens
  local ok, got = pcall(codelens.get, bufnr)
  if not ok or type(got) ~= "table" then
    ok, got = pcall(codelens.get, { bufnr = bufnr })
  end
  local out = {}
  for _, item in ipairs(ok and got or {}) do
    local lens = item.lens or item
    local cmd = lens.command or {}
    table.insert(out, {
      line = lens.range.start.line,
      title = cmd.title,
      command = cmd.command,
      arguments = cmd.arguments,
    })
  end
  table.sort(out, function(a, b)
    return a.line < b.line
  end)
  return out
end

local function repair_state()
  local state = require("hone.repair").state
  return {
    pending = state.pending,
    progress = state.progress,
    last = state.last,
    last_apply = state.last_apply,
    diff_open = state.diff ~= nil,
  }
end

--- Wait for the fix to come back: the question (a fix was found) or the end of the request.
local function await_fix()
  local repair = require("hone.repair")
  local got = wait_for(function()
    check_server()
    return pending_select or (repair.state.last ~= nil and repair.state.pending == nil)
  end, scenario.run_timeout_ms, 50)
  if not got then
    result.repair = repair_state()
    fail(("no answer to the fix within %d ms"):format(scenario.run_timeout_ms))
  end
  step("fix answered", { asked = pending_select ~= nil })
  if not pending_select then
    return
  end
  local question = pending_select
  pending_select = nil
  if scenario.stale_edit then
    local buf = buffer_of(scenario.stale_edit.file)
    if not buf then
      fail("stale_edit: " .. scenario.stale_edit.file .. " is not loaded")
    end
    api.nvim_buf_set_lines(buf, 0, 0, false, { scenario.stale_edit.text })
    step("stale edit", api.nvim_buf_get_lines(buf, 0, -1, false))
  end
  local answer = scenario.answer or "Cancel"
  question.record.answer = answer
  local index
  for i, item in ipairs(question.items) do
    if item == answer then
      index = i
    end
  end
  question.on_choice(index and answer or nil, index)
  if not wait_for(function()
    check_server()
    return repair.state.last_apply ~= nil
  end, 30000, 25) then
    result.repair = repair_state()
    fail("the plugin never finished the Apply/Cancel answer")
  end
  result.diff_after_answer = diff_view()
  sleep(200)
end

local function main()
  local test_buf = api.nvim_get_current_buf()
  step("start", { file = api.nvim_buf_get_name(test_buf), filetype = vim.bo[test_buf].filetype })
  local status = wait_attached(test_buf)
  result.status = status
  local client = vim.lsp.get_clients({ bufnr = test_buf, name = "hone" })[1]
  record_requests(client)
  step("attached")

  for _, file in ipairs(scenario.open or {}) do
    vim.cmd.edit(vim.fn.fnameescape(file))
    wait_attached(api.nvim_get_current_buf())
    step("opened", file)
  end
  api.nvim_set_current_buf(test_buf)
  api.nvim_win_set_cursor(0, { scenario.line, scenario.col or 0 })
  result.files_before = {}
  for _, file in ipairs(scenario.files or {}) do
    result.files_before[file] = read_disk(file)
  end

  if scenario.kind == "fix" then
    vim.cmd("HoneFix")
    await_fix()
  elseif scenario.kind == "cancel" then
    local repair = require("hone.repair")
    vim.cmd("HoneFix")
    if not wait_for(function()
      check_server()
      for _, p in ipairs(repair.state.progress) do
        if p.message and (p.message:match("^running") or p.message:match("^localizing")) then
          return true
        end
      end
    end, scenario.run_timeout_ms, 25) then
      result.repair = repair_state()
      fail("the fix reported no progress")
    end
    result.cancelled_at_ms = now()
    vim.cmd("HoneFixCancel")
    result.pending_after_cancel = repair.state.pending ~= nil
    -- The server ends its progress when it has stopped the test run and the repair.
    result.server_end_ms = wait_for(function()
      for _, p in ipairs(result.lsp_progress) do
        if p.kind == "end" and type(p.title) == "string" and p.title:match("^hone: fix ") then
          return p.t_ms
        end
      end
    end, scenario.run_timeout_ms, 25)
    sleep(500)
  elseif scenario.kind == "localize" then
    vim.cmd("HoneLocalize")
    local repair = require("hone.repair")
    if not wait_for(function()
      check_server()
      return repair.state.last ~= nil and repair.state.pending == nil
    end, scenario.run_timeout_ms, 50) then
      result.repair = repair_state()
      fail(("no answer to localize within %d ms"):format(scenario.run_timeout_ms))
    end
    sleep(100)
    local qf = vim.fn.getqflist({ title = 1, items = 1, winid = 1 })
    result.quickfix = { title = qf.title, window_open = qf.winid ~= 0, items = {} }
    for _, item in ipairs(qf.items) do
      table.insert(result.quickfix.items, {
        filename = item.bufnr ~= 0 and vim.fs.normalize(api.nvim_buf_get_name(item.bufnr)) or nil,
        lnum = item.lnum,
        end_lnum = item.end_lnum,
        text = item.text,
      })
    end
  elseif scenario.kind == "codelens" then
    local got = wait_for(function()
      check_server()
      return #lenses(test_buf) > 0 and lenses(test_buf)
    end, 20000, 50)
    result.lenses = got or lenses(test_buf)
    if not got then
      fail("no code lens in the test buffer")
    end
    sleep(100) -- drawn right after they are stored
    local marks = {}
    for name, ns in pairs(api.nvim_get_namespaces()) do
      if name:match("codelens") then
        for _, m in ipairs(api.nvim_buf_get_extmarks(test_buf, ns, 0, -1, { details = true })) do
          local chunks = {}
          for _, c in ipairs(m[4].virt_text or {}) do
            table.insert(chunks, c[1])
          end
          table.insert(marks, { row = m[2], text = table.concat(chunks) })
        end
      end
    end
    result.lens_marks = marks
    if scenario.run_lens then
      local target
      for _, lens in ipairs(result.lenses) do
        local args = type(lens.arguments) == "table" and lens.arguments[1] or {}
        if type(args.testId) == "string" and vim.endswith(args.testId, scenario.run_lens) then
          target = lens
        end
      end
      if not target then
        fail("no lens for " .. scenario.run_lens)
      end
      api.nvim_win_set_cursor(0, { target.line + 1, 0 })
      vim.lsp.codelens.run()
      await_fix()
    end
  else
    fail("unknown scenario kind " .. tostring(scenario.kind))
  end

  if scenario.kind ~= "codelens" or scenario.run_lens then
    -- Whatever came after the answer (notifications of the server's refusal, ...).
    sleep(300)
  end
  result.repair = repair_state()
  record_files()
  result.diff_buffers = diff_view()
  step("done")
  result.ok = true
  finish()
end

-- Watchdog: whatever happens, write what we have and quit.
h.run(main, scenario.attach_timeout_ms * 2 + scenario.run_timeout_ms + 40000, function()
  result.repair = plain(repair_state())
  pcall(record_files)
end)
