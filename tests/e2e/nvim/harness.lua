-- The coroutine harness shared by the scenario drivers (driver.lua, repair_driver.lua):
-- a record written as JSON to HONE_NVIM_RESULT when the scenario ends, however it ends
-- (done, failed, an error in the driver, or the watchdog), and the waits a user's
-- scenario needs (sleep, wait_for with a deadline) as a coroutine resumed by timers.
--
--   local h = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "harness.lua"))
--     .new(result)
--   h.run(main, watchdog_ms, on_watchdog)

local api = vim.api
local M = {}

--- Plain data for JSON (functions and userdata dropped, cycles cut).
function M.plain(value, depth)
  depth = depth or 0
  local t = type(value)
  if t == "table" and value ~= vim.NIL then
    if depth > 8 then
      return "<deep>"
    end
    local out = {}
    for k, v in pairs(value) do
      if type(k) == "string" or type(k) == "number" then
        out[k] = M.plain(v, depth + 1)
      end
    end
    return out
  elseif t == "function" or t == "userdata" or t == "thread" then
    return value == vim.NIL and vim.NIL or tostring(value)
  end
  return value
end

--- A harness writing `result` (a table with a `steps` list) to HONE_NVIM_RESULT.
function M.new(result)
  local h = { result = result, finished = false }
  local path = vim.env.HONE_NVIM_RESULT or "hone-nvim-result.json"
  local t_start = vim.uv.now()
  local co ---@type thread

  function h.now()
    return vim.uv.now() - t_start
  end

  function h.step(name, data)
    table.insert(result.steps, { t_ms = h.now(), name = name, data = data })
  end

  --- Write the record and quit Neovim (once).
  function h.finish()
    if h.finished then
      return
    end
    h.finished = true
    result.elapsed_ms = h.now()
    local ok, msgs = pcall(api.nvim_exec2, "messages", { output = true })
    result.nvim_messages = ok and msgs.output or nil
    local encoded, text = pcall(vim.json.encode, M.plain(result))
    if not encoded then
      text = vim.json.encode({ ok = false, error = "driver could not encode its record: " .. text })
    end
    local f = io.open(path, "w")
    if f then
      f:write(text)
      f:close()
    end
    vim.cmd("qa!")
  end

  function h.resume()
    if h.finished then
      return
    end
    local ok, err = coroutine.resume(co)
    if not ok then
      result.error = debug.traceback(co, tostring(err))
      h.finish()
    end
  end

  function h.sleep(ms)
    vim.defer_fn(h.resume, ms)
    coroutine.yield()
  end

  --- Poll `cond` every `interval` ms until it returns a truthy value or `timeout` ms pass.
  function h.wait_for(cond, timeout, interval)
    local deadline = vim.uv.now() + timeout
    while true do
      local ok, value = pcall(cond)
      if ok and value then
        return value
      end
      if vim.uv.now() >= deadline then
        return nil
      end
      h.sleep(interval or 20)
    end
  end

  --- End the scenario as failed: record why, write, quit.
  function h.fail(reason)
    result.error = reason
    h.finish()
    coroutine.yield() -- never resumed
  end

  --- Play `main` as a coroutine; after `watchdog_ms`, whatever happens, record what is
  --- there (`on_watchdog()` may add to it) and quit.
  function h.run(main, watchdog_ms, on_watchdog)
    co = coroutine.create(main)
    vim.defer_fn(function()
      if not h.finished then
        result.error = "driver watchdog fired"
        if on_watchdog then
          pcall(on_watchdog)
        end
        h.finish()
      end
    end, watchdog_ms)
    vim.schedule(h.resume)
  end

  return h
end

return M
