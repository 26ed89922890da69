-- Scenario driver for tests/e2e/test_neovim.py, run with `-c "luafile driver.lua"` after the
-- file under test is opened. It behaves like a user: waits for the hone client to attach,
-- enters insert mode at the end of a line, waits for the ghost text that Neovim's built-in
-- vim.lsp.inline_completion draws, presses the accept key, and records what it saw in a
-- JSON file (HONE_NVIM_RESULT), then quits. Every wait has a deadline, so a hang becomes a
-- recorded failure, not a stuck editor.
--
-- HONE_NVIM_SCENARIO (JSON):
--   line              1-based line to complete at the end of (insert mode via `A`)
--   accept_key        key that accepts the ghost text (the plugin's keymap)
--   attach_timeout_ms how long the client may take to attach
--   ghost_timeout_ms  how long the ghost text may take to appear
--   max_retriggers    how often to re-enter insert mode after an empty answer
--   second_file       optional: after accepting, open this file too and record which hone
--                     clients serve each buffer and what the server knows of the workspace
--   checkhealth       optional: at the end, record the lines of :checkhealth hone

local api = vim.api
local scenario = vim.json.decode(vim.env.HONE_NVIM_SCENARIO or "{}")

local harness = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "harness.lua"))
local result = { ok = false, steps = {}, messages = {}, requests = {} }
local h = harness.new(result)
local step, finish, sleep, wait_for, fail = h.step, h.finish, h.sleep, h.wait_for, h.fail

-- Record window/showMessage from the server (e.g. "unknown setting" warnings).
local show_message = vim.lsp.handlers["window/showMessage"]
vim.lsp.handlers["window/showMessage"] = function(err, params, ctx)
  if params then
    table.insert(result.messages, { type = params.type, message = params.message })
  end
  return show_message(err, params, ctx)
end

-- Count inlineCompletion requests that completed (LspRequest fires on each state change).
local completed = 0
api.nvim_create_autocmd("LspRequest", {
  callback = function(args)
    local req = args.data.request
    if req.method == "textDocument/inlineCompletion" then
      table.insert(result.requests, { t_ms = h.now(), type = req.type })
      if req.type == "complete" then
        completed = completed + 1
      end
    end
  end,
})

local ns = api.nvim_create_namespace("nvim.lsp.inline_completion")

--- The ghost text Neovim is drawing in `bufnr`, or nil.
local function ghost(bufnr)
  local marks = api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  local _, row, col, details = unpack(marks[1])
  local function join(chunks)
    local parts = {}
    for _, chunk in ipairs(chunks or {}) do
      table.insert(parts, chunk[1])
    end
    return table.concat(parts)
  end
  local lines = { join(details.virt_text) }
  for _, virt_line in ipairs(details.virt_lines or {}) do
    table.insert(lines, join(virt_line))
  end
  local text = table.concat(lines, "\n")
  if text == "" then
    return nil
  end
  return {
    text = text,
    row = row,
    col = col,
    pos = details.virt_text_pos,
    n_marks = #marks,
  }
end

--- Open `scenario.second_file` (another folder) after the first buffer's client attached:
--- record the hone clients of both buffers and the server's view of the workspace.
---@param first integer the first buffer
local function second_file(first)
  vim.cmd("stopinsert")
  vim.cmd.edit(vim.fn.fnameescape(scenario.second_file))
  local bufnr = api.nvim_get_current_buf()
  local attached = wait_for(function()
    local s = require("hone").status(bufnr)
    return s.attached and s.clients[1].initialized and s
  end, scenario.attach_timeout_ms, 50)
  local function ids(buf)
    return vim.tbl_map(function(c)
      return c.id
    end, vim.lsp.get_clients({ name = "hone", bufnr = buf, _uninitialized = true }))
  end
  local all = vim.lsp.get_clients({ name = "hone", _uninitialized = true })
  result.second = {
    attached = attached and true or false,
    first_clients = ids(first),
    second_clients = ids(bufnr),
    all_clients = #all,
    workspace_folders = all[1] and all[1].workspace_folders,
  }
  if not attached then
    fail("the hone client did not attach to the second buffer")
  end
  -- What the server itself knows (hone/workspace): its folders and open documents.
  local answer
  all[1]:request("hone/workspace", vim.empty_dict(), function(err, res)
    answer = { err = err, result = res }
  end, bufnr)
  result.second.server = wait_for(function()
    return answer
  end, 5000, 20)
  step("second_file", result.second)
end

local function main()
  local bufnr = api.nvim_get_current_buf()
  local hone = require("hone")
  step("start", { file = api.nvim_buf_get_name(bufnr), filetype = vim.bo[bufnr].filetype })

  local attached = wait_for(function()
    local s = hone.status(bufnr)
    return _G.hone_test_server_exit or (s.attached and s.clients[1].initialized and s)
  end, scenario.attach_timeout_ms, 50)
  if _G.hone_test_server_exit then
    result.server_exit = _G.hone_test_server_exit
    sleep(200) -- let scheduled messages (e.g. why the server went away) reach :messages
    result.status = hone.status(bufnr)
    fail("the server exited before attaching")
  end
  if not attached then
    result.status = hone.status(bufnr)
    fail("the hone client did not attach to the buffer")
  end
  result.status = attached
  local client = vim.lsp.get_clients({ bufnr = bufnr, name = "hone" })[1]
  result.offset_encoding = client and client.offset_encoding
  step("attached", attached)
  local ok, out = pcall(api.nvim_exec2, "HoneStatus", { output = true })
  result.status_command_output = ok and out.output or ("error: " .. tostring(out))

  -- The per-buffer inline completion capability is created on the tick after LspAttach.
  -- (Private API, used only to avoid racing it; without it, a short pause does the same.)
  local capability = vim.tbl_get(vim.lsp, "_capability", "all", "inline_completion")
  if not wait_for(function()
    return vim.lsp.inline_completion.is_enabled({ bufnr = bufnr })
      and (capability == nil or capability.active[bufnr] ~= nil)
  end, 2000, 20) then
    fail("vim.lsp.inline_completion was not enabled for the buffer")
  end
  if capability == nil then
    sleep(200)
  end
  step("inline_completion_enabled")

  result.before = api.nvim_buf_get_lines(bufnr, 0, -1, false)
  api.nvim_win_set_cursor(0, { scenario.line, 0 })
  local retriggers = 0
  local shown
  local deadline = vim.uv.now() + scenario.ghost_timeout_ms
  api.nvim_input("A")
  while not shown do
    if _G.hone_test_server_exit then
      result.server_exit = _G.hone_test_server_exit
      fail("the server exited")
    end
    local seen = completed
    -- Wait for ghost text, or for an answer that drew nothing (e.g. model still loading).
    shown = wait_for(function()
      return ghost(bufnr)
        or (completed > seen and "answered")
        or (_G.hone_test_server_exit and "exited")
    end, math.max(deadline - vim.uv.now(), 0), 25)
    if shown == "answered" then
      sleep(100) -- the handler draws right after the response; give it a moment
      shown = ghost(bufnr)
    elseif shown == "exited" then
      result.server_exit = _G.hone_test_server_exit
      fail("the server exited")
    end
    if not shown then
      if vim.uv.now() >= deadline then
        -- If Neovim renamed its namespace, the ghost text would be in one of these.
        result.all_extmarks = api.nvim_buf_get_extmarks(bufnr, -1, 0, -1, { details = true })
        result.namespaces = api.nvim_get_namespaces()
        fail(("no ghost text within %d ms"):format(scenario.ghost_timeout_ms))
      end
      if retriggers >= scenario.max_retriggers then
        fail(("no ghost text after %d empty answers"):format(retriggers + 1))
      end
      retriggers = retriggers + 1
      step("retrigger", { completed = completed })
      api.nvim_input("<Esc>A")
      sleep(50)
    end
  end
  result.mode_when_shown = api.nvim_get_mode().mode
  result.cursor_when_shown = api.nvim_win_get_cursor(0)
  result.retriggers = retriggers
  -- Let a possibly newer answer settle, then read what is drawn now: that is what gets accepted.
  sleep(150)
  result.ghost = ghost(bufnr) or shown
  step("ghost", result.ghost)

  local tick = api.nvim_buf_get_changedtick(bufnr)
  api.nvim_input(scenario.accept_key)
  if not wait_for(function()
    return api.nvim_buf_get_changedtick(bufnr) ~= tick
  end, 5000, 20) then
    result.after = api.nvim_buf_get_lines(bufnr, 0, -1, false)
    fail("accepting did not change the buffer")
  end
  sleep(50)
  result.after = api.nvim_buf_get_lines(bufnr, 0, -1, false)
  result.cursor_after = api.nvim_win_get_cursor(0)
  result.mode_after = api.nvim_get_mode().mode
  result.ghost_after = ghost(bufnr)
  step("accepted")

  if scenario.second_file then
    second_file(bufnr)
  end
  if scenario.checkhealth then
    vim.cmd("checkhealth hone")
    result.checkhealth = api.nvim_buf_get_lines(0, 0, -1, false)
  end
  result.ok = true
  finish()
end

-- Watchdog: whatever happens, write what we have and quit.
h.run(main, scenario.attach_timeout_ms + scenario.ghost_timeout_ms + 10000)
