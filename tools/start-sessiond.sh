# Sourced by scripts that need a running sessiond on a free port:
#   start_sessiond BINARY LOGFILE [sessiond options...]
# starts it with --listen 127.0.0.1:0, waits (up to 5 s) for the start log
# line and sets SESSIOND_PID and SESSIOND_PORT. Returns 1 if it did not start.
start_sessiond() {
  local binary=$1 log=$2
  shift 2
  "$binary" --listen 127.0.0.1:0 "$@" 2>"$log" &
  SESSIOND_PID=$!
  SESSIOND_PORT=""
  local _
  for _ in $(seq 100); do
    SESSIOND_PORT=$(grep -o '"port":[0-9]*' "$log" | head -1 | cut -d: -f2 || true)
    [[ -n "$SESSIOND_PORT" ]] && return 0
    kill -0 "$SESSIOND_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "sessiond did not start:" >&2
  cat "$log" >&2
  return 1
}
