#!/usr/bin/env bash
# Throughput of the local server on a mixed workload (bench/wrk/mixed.lua: 70% verify, 20%
# get/list, 10% create/delete), then, in the same run, raw DynamoDB Local throughput on the
# GetItem that verify makes (bench/wrk/getitem.lua); and, as a diagnostic, verify alone. Loads go to 127.0.0.1 only, bounded in time.
#   bench/throughput.sh DYNAMODB_PORT
# Env: LOCAL_SERVER (default target/release/local_server), BENCH_OUT (default target/bench-out),
#      WRK_DURATION (10s), WRK_THREADS (1), WRK_CONNECTIONS (8).
set -euo pipefail
cd "$(dirname "$0")/.."
ddb_port=$1
server=${LOCAL_SERVER:-target/release/local_server}
out=${BENCH_OUT:-target/bench-out}
duration=${WRK_DURATION:-10s}
threads=${WRK_THREADS:-1}
connections=${WRK_CONNECTIONS:-8}
mkdir -p "$out" .run
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
test -x "$server" || { echo "$server is missing: cargo build --release --bin local_server" >&2; exit 1; }

port=$(python3 tools/dev.py free-port)
table=bench-throughput-$port-$$
log=.run/bench-local-server-$port.log
pidfile=.run/bench-local-server-$port.pid
stop_server() {
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}
trap stop_server EXIT
DYNAMODB_ENDPOINT=http://127.0.0.1:$ddb_port TABLE_NAME=$table PORT=$port DEMO_COMPANY=benchco RUST_LOG=warn \
  "$server" >"$log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 1 100); do grep -q "Serving the API" "$log" 2>/dev/null && break; sleep 0.1; done
grep -q "Serving the API" "$log" || { echo "the local server did not start:" >&2; cat "$log" >&2; exit 1; }
root_key=$(sed -n 's/.*export ROOT_KEY=\(sk_[A-Za-z0-9]*\).*/\1/p' "$log" | head -n 1)
api=http://127.0.0.1:$port

# 30 keys, so a list page is full (25); the last one is verified and read by the load.
for i in $(seq 1 30); do
  created=$(curl -sf -X POST "$api/keys" -H "Authorization: Bearer $root_key" -H 'content-type: application/json' \
    -d '{"userId":"user-'"$i"'","description":"throughput"}')
done
verify_key=$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
key_id=$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
check=$(curl -sf -X POST "$api/keys/verify" -H "x-api-key: $root_key" -H 'content-type: application/json' -d '{"key":"'"$verify_key"'"}')
printf '%s' "$check" | grep -q '"valid":true' || { echo "verify does not answer valid: $check" >&2; exit 1; }

echo "wrk: mixed workload on the local server ($server), $duration, $threads thread(s), $connections connections" >&2
ROOT_KEY=$root_key VERIFY_KEY=$verify_key KEY_ID=$key_id \
  wrk -t"$threads" -c"$connections" -d"$duration" --latency -s bench/wrk/mixed.lua "$api" | tee "$out/wrk-mixed.txt" >&2
echo "wrk: verify only on the local server, $duration" >&2
VERIFY_ONLY=1 ROOT_KEY=$root_key VERIFY_KEY=$verify_key KEY_ID=$key_id \
  wrk -t"$threads" -c"$connections" -d"$duration" --latency -s bench/wrk/mixed.lua "$api" | tee "$out/wrk-verify.txt" >&2
lookup_pk="SECRET#$(printf '%s' "$verify_key" | sha256sum | cut -d' ' -f1)"
echo "wrk: raw DynamoDB Local GetItem of $lookup_pk, $duration" >&2
TABLE=$table LOOKUP_PK=$lookup_pk \
  wrk -t"$threads" -c"$connections" -d"$duration" --latency -s bench/wrk/getitem.lua "http://127.0.0.1:$ddb_port/" \
  | tee "$out/wrk-getitem.txt" >&2
python3 - "$out" "$duration" "$threads" "$connections" "$server" <<'PY'
import json, sys
out, duration, threads, connections, server = sys.argv[1:]
def parse(name):
    for line in open(f"{out}/{name}"):
        if line.startswith("WRK_JSON "):
            return json.loads(line[len("WRK_JSON "):])
    raise SystemExit(f"no WRK_JSON line in {out}/{name}")
json.dump({"duration": duration, "threads": int(threads), "connections": int(connections), "server": server,
           "mixed": parse("wrk-mixed.txt"), "verify_only": parse("wrk-verify.txt"), "getitem": parse("wrk-getitem.txt")},
          open(f"{out}/throughput.json", "w"), indent=2)
print(f"wrote {out}/throughput.json", file=sys.stderr)
PY
