#!/usr/bin/env bash
# Start and stop of DynamoDB Local (tools/dynamodb-local.sh) on one port, as make targets run
# them one after another: start -> stop -> start twenty times back to back; a start while the
# previous instance is still shutting down (its stop running, as a Ctrl-C'd `make run`'s trap
# is when the next `make run` starts); a stop that must KILL; a start refused a pid file that is
# not its own. Every start must be answered by a DynamoDB Local of its own (ListTables lists
# none of the tables the earlier ones were given), and at the end no process it started is left.
# Exits non-zero on any failure. CYCLES (default 20) sets the back-to-back count.
set -euo pipefail
cd "$(dirname "$0")/.."
ddb=tools/dynamodb-local.sh
cycles=${CYCLES:-20}
dir=.run/tools-test-$$
mkdir -p "$dir"
# Only the start/stop logic is under test: a JVM that compiles less starts sooner on a busy machine.
export JAVA_TOOL_OPTIONS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC ${JAVA_TOOL_OPTIONS:-}"
port=$($ddb free-port)
began=$SECONDS
passed=0
failed=0
started=() # "PID STARTTIME" of every process started

ok() { passed=$((passed + 1)); }
fail() { echo "tools-test: FAILED: $*" >&2; failed=$((failed + 1)); }

cleanup() {
  for pidfile in "$dir"/*.pid; do [ -f "$pidfile" ] && $ddb stop "$pidfile" 1 || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

starttime() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; read -ra f <<<"${s##*) }"; echo "${f[19]}"; }
# running PID STARTTIME: a thread of that process has not exited.
running() {
  [ "$(starttime "$1" || true)" = "$2" ] || return 1
  local t s
  for t in /proc/"$1"/task/*/stat; do
    s=$(cat "$t" 2>/dev/null) || continue
    s=${s##*) }
    case ${s%% *} in Z | X | x) ;; *) return 0 ;; esac
  done
  return 1
}

dynamodb() { # target body: one DynamoDB API call on the port, its answer on stdout
  curl -sS -m 10 -X POST "http://127.0.0.1:$port/" -H "X-Amz-Target: DynamoDB_20120810.$1" \
    -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
    -d "$2"
}

# start NAME: starts an instance with pid file NAME.pid; checks it answers ListTables with no
# table (a fresh instance, not an earlier one still listening), then gives it table NAME.
start() {
  local name=$1 answer
  if ! $ddb start "$port" "$dir/$1.pid" 2>"$dir/$1.err"; then
    cat "$dir/$1.err" >&2
    fail "start $name"
    return 0
  fi
  started+=("$(<"$dir/$name.pid")")
  answer=$(dynamodb ListTables '{}' 2>&1 || true)
  if [ "$answer" = '{"TableNames":[]}' ]; then ok; else fail "start $name: ListTables answered $answer"; fi
  dynamodb CreateTable '{"TableName":"'"$name"'","BillingMode":"PAY_PER_REQUEST","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}]}' >/dev/null ||
    fail "start $name: CreateTable"
}

# stop NAME: stops it; checks that no thread of it runs once stop returns.
stop() {
  local record
  record=$(<"$dir/$1.pid")
  if ! $ddb stop "$dir/$1.pid"; then fail "stop $1 failed"; return 0; fi
  # shellcheck disable=SC2086
  if running $record; then fail "stop $1 returned while pid ${record%% *} still runs"; else ok; fi
}

echo "tools-test: start -> stop -> start on port $port, $cycles times back to back" >&2
for i in $(seq 1 "$cycles"); do
  start "cycle$i"
  stop "cycle$i"
done
echo "tools-test: $cycles cycles in $((SECONDS - began)) s" >&2

# The next start while the previous instance's stop is still waiting for it (0 and 0.5 s after
# the stop began): the start waits for it, and neither touches the other's process or pid file.
for delay in 0 0.5; do
  start "old$delay"
  record=$(<"$dir/old$delay.pid")
  $ddb stop "$dir/old$delay.pid" 2>"$dir/old$delay.stop" &
  stopping=$!
  sleep "$delay"
  # shellcheck disable=SC2086
  if running $record; then shutting=yes; else shutting=no; fi
  start "new$delay"
  if wait "$stopping"; then ok; else fail "the old instance's stop (delay $delay) failed: $(cat "$dir/old$delay.stop")"; fi
  # shellcheck disable=SC2086
  if running $record; then fail "old instance (delay $delay) still runs"; else ok; fi
  if [ "$shutting" = yes ]; then
    if grep -q "waiting up to" "$dir/new$delay.err"; then ok; else fail "start $delay s after a stop did not wait: $(cat "$dir/new$delay.err")"; fi
  fi
  echo "tools-test: stop, start $delay s later (old instance still shutting down: $shutting): $(grep -h "waiting\|DynamoDB Local on" "$dir/new$delay.err" | tr '\n' ' ')" >&2
  stop "new$delay"
done

# A process that ignores TERM is KILLed after the bound.
sh -c 'trap "" TERM; exec sleep 60' &
stubborn=$!
disown "$stubborn" # no "Killed" notice from this shell
echo "$stubborn $(starttime "$stubborn")" >"$dir/stubborn.pid"
record=$(<"$dir/stubborn.pid")
t0=$SECONDS
$ddb stop "$dir/stubborn.pid" 1 2>/dev/null || fail "stop of a process ignoring TERM failed"
# shellcheck disable=SC2086
if running $record || ((SECONDS - t0 > 5)); then fail "a process ignoring TERM was not KILLed after 1 s"; else ok; fi

# A pid file naming a running process is not a start's own: refused, nothing started.
sleep 60 &
sleeper=$!
echo "$sleeper $(starttime $sleeper)" >"$dir/taken.pid"
if $ddb start "$port" "$dir/taken.pid" 2>/dev/null; then fail "start took a pid file naming a running process"; else ok; fi
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "a refused start left something on port $port"; else ok; fi
kill "$sleeper"
wait "$sleeper" 2>/dev/null || true
rm -f "$dir/taken.pid"

# Nothing left: every process started has exited and been reaped (by init, within a moment).
left=
for record in "${started[@]}"; do
  pid=${record%% *}
  for _ in $(seq 1 50); do [ "$(starttime "$pid" || true)" = "${record#* }" ] || break; sleep 0.1; done
  if [ "$(starttime "$pid" || true)" = "${record#* }" ]; then left+=" $pid"; fi
done
if [ -n "$left" ]; then fail "processes left:$left"; else ok; fi
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "port $port still answers at the end"; else ok; fi

echo "tools-test: ${#started[@]} DynamoDB Local instances started and stopped on port $port in $((SECONDS - began)) s; $passed passed, $failed failed" >&2
[ "$failed" = 0 ]
