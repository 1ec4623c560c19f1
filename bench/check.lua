-- wrk script shared by the bench/ scripts: sends a form POST when WRK_BODY is set, counts
-- every response that is not a 200 (and, with WRK_EXPECT, every 200 whose body lacks that
-- text), and prints the counts at the end so the caller can refuse a run that timed errors.

local body = os.getenv("WRK_BODY")
if body and body ~= "" then
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local expect = os.getenv("WRK_EXPECT")
if expect == "" then expect = nil end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   ok = 0
   not_ok = 0
   missing = 0
   first_bad = ""
end

function response(status, headers, response_body)
   if status ~= 200 then
      not_ok = not_ok + 1
      if first_bad == "" then first_bad = status .. " " .. string.sub(response_body or "", 1, 200) end
   elseif expect and not string.find(response_body or "", expect, 1, true) then
      missing = missing + 1
   else
      ok = ok + 1
   end
end

function done(summary, latency, requests)
   local total_ok, total_not_ok, total_missing, bad = 0, 0, 0, ""
   for _, thread in ipairs(threads) do
      total_ok = total_ok + thread:get("ok")
      total_not_ok = total_not_ok + thread:get("not_ok")
      total_missing = total_missing + thread:get("missing")
      if bad == "" then bad = thread:get("first_bad") end
   end
   io.write(string.format("check: ok=%d not_200=%d missing_expected=%d\n", total_ok, total_not_ok, total_missing))
   if bad ~= "" then io.write("check: first bad response: " .. bad .. "\n") end
end
