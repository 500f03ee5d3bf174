-- The local server's mixed workload for wrk: 70% verify, 10% get, 10% list, 5% create, 5% delete
-- (of keys this run created; a create when there is none yet). ROOT_KEY, VERIFY_KEY and KEY_ID
-- come from the environment (bench/throughput.sh makes them).
local root = os.getenv("ROOT_KEY")
local verify_body = '{"key":"' .. os.getenv("VERIFY_KEY") .. '"}'
local key_id = os.getenv("KEY_ID")
-- VERIFY_ONLY=1: every request a verify (a diagnostic run beside the mix).
local verify_only = os.getenv("VERIFY_ONLY") == "1"
local auth = { ["Authorization"] = "Bearer " .. root, ["Content-Type"] = "application/json" }
local auth_get = { ["Authorization"] = "Bearer " .. root }

local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

created = {}
n_verify, n_get, n_list, n_create, n_delete = 0, 0, 0, 0, 0
s2xx, s4xx, s5xx, sother = 0, 0, 0, 0
invalid = 0

function init(args)
  math.randomseed(os.time() * 1000 + id)
end

function request()
  local r = verify_only and 1 or math.random(100)
  if r <= 70 then
    n_verify = n_verify + 1
    return wrk.format("POST", "/keys/verify", auth, verify_body)
  elseif r <= 80 then
    n_get = n_get + 1
    return wrk.format("GET", "/keys/" .. key_id, auth_get)
  elseif r <= 90 then
    n_list = n_list + 1
    return wrk.format("GET", "/keys?limit=25", auth_get)
  elseif r <= 95 or #created == 0 then
    n_create = n_create + 1
    return wrk.format("POST", "/keys", auth, '{"userId":"load-user","description":"wrk"}')
  else
    n_delete = n_delete + 1
    return wrk.format("DELETE", "/keys/" .. table.remove(created), auth_get)
  end
end

function response(status, headers, body)
  if status >= 200 and status < 300 then s2xx = s2xx + 1
  elseif status >= 400 and status < 500 then s4xx = s4xx + 1
  elseif status >= 500 then s5xx = s5xx + 1
  else sother = sother + 1 end
  if status == 201 then
    local new_id = string.match(body, '"id":"([^"]+)"')
    if new_id then table.insert(created, new_id) end
  elseif status == 200 and string.find(body, '"valid":false', 1, true) then
    invalid = invalid + 1
  end
end

function done(summary, latency, requests)
  local t = { verify = 0, get = 0, list = 0, create = 0, delete = 0, s2xx = 0, s4xx = 0, s5xx = 0, sother = 0, invalid = 0 }
  for _, thread in ipairs(threads) do
    t.verify = t.verify + thread:get("n_verify")
    t.get = t.get + thread:get("n_get")
    t.list = t.list + thread:get("n_list")
    t.create = t.create + thread:get("n_create")
    t.delete = t.delete + thread:get("n_delete")
    t.s2xx = t.s2xx + thread:get("s2xx")
    t.s4xx = t.s4xx + thread:get("s4xx")
    t.s5xx = t.s5xx + thread:get("s5xx")
    t.sother = t.sother + thread:get("sother")
    t.invalid = t.invalid + thread:get("invalid")
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"seconds":%.3f,"rps":%.1f,"errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"sent":{"verify":%d,"get":%d,"list":%d,"create":%d,"delete":%d},"status":{"2xx":%d,"4xx":%d,"5xx":%d,"other":%d},"verify_invalid":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    t.verify, t.get, t.list, t.create, t.delete, t.s2xx, t.s4xx, t.s5xx, t.sother, t.invalid))
end
