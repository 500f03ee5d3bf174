-- Raw DynamoDB Local throughput for wrk: a consistent GetItem of one lookup item, as verify reads
-- it. TABLE and LOOKUP_PK come from the environment. DynamoDB Local checks that a SigV4-shaped
-- Authorization header is there, not its signature.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["X-Amz-Target"] = "DynamoDB_20120810.GetItem"
wrk.headers["X-Amz-Date"] = "20250101T000000Z"
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/aws4_request, " ..
  "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" .. string.rep("0", 64)
wrk.body = '{"TableName":"' .. os.getenv("TABLE") .. '","Key":{"pk":{"S":"' .. os.getenv("LOOKUP_PK") ..
  '"},"sk":{"S":"SECRET"}},"ConsistentRead":true}'

local threads = {}
function setup(thread) table.insert(threads, thread) end
s2xx, sbad, found = 0, 0, 0
function response(status, headers, body)
  if status == 200 then s2xx = s2xx + 1 else sbad = sbad + 1 end
  if string.find(body, '"Item"', 1, true) then found = found + 1 end
end

function done(summary, latency, requests)
  local ok, bad, hit = 0, 0, 0
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("s2xx"); bad = bad + thread:get("sbad"); hit = hit + thread:get("found")
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"seconds":%.3f,"rps":%.1f,"errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"status":{"200":%d,"other":%d},"found":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, ok, bad, hit))
end
