# shellcheck shell=bash
# Shared helpers for tools/services/<name> scripts. Sourced, not executed.
#
# Layout under $SESSIONKIT_SERVICE_DIR (created by the caller, e.g. tools/test-all
# or CMake's default ${CMAKE_BINARY_DIR}/services):
#   <name>/        everything the service writes: data, logs, sockets, pid
#   <name>/pid     pid of the server process
#   <name>.env     `export VAR=value` lines, written only once the service
#                  answers; tools/services/env-launcher sources these files.
#
# A script sourcing this file defines do_start and do_stop and then calls
# `svc_main <name> "$@"`.

# Refuse to run without a service dir: guessing one (e.g. /tmp) would leave
# daemons and data around that nobody cleans up.
# The SVC_* variables are used by the scripts that source this file.
# shellcheck disable=SC2034
svc_init() {
  SVC_NAME=$1
  if [[ -z "${SESSIONKIT_SERVICE_DIR:-}" ]]; then
    echo "ERROR: $SVC_NAME: SESSIONKIT_SERVICE_DIR is not set (it must point to a scratch directory owned by the caller)" >&2
    exit 2
  fi
  # The default from CMake lives in the build tree and may not exist yet.
  mkdir -p -- "$SESSIONKIT_SERVICE_DIR"
  SVC_ROOT=$(cd -- "$SESSIONKIT_SERVICE_DIR" && pwd -P)
  SVC_DIR=$SVC_ROOT/$SVC_NAME
  SVC_ENV=$SVC_ROOT/$SVC_NAME.env
  SVC_PIDFILE=$SVC_DIR/pid
  SVC_LOG=$SVC_DIR/$SVC_NAME.log
}

svc_log() {
  echo "[$SVC_NAME] $*"
}

# A server program is not installed. On CI that is a broken image and must
# fail loudly; on a developer machine the tests that need it are skipped
# (no env file is written, so they exit 77).
svc_missing() {
  if [[ -n "${CI:-}" ]]; then
    echo "ERROR: $SVC_NAME: required program '$1' not found (CI is set, so this is fatal; run tools/install-deps services)" >&2
    exit 1
  fi
  echo "SKIP: $SVC_NAME not installed ($1 not found)"
  exit 0
}

# Same policy for "installed but cannot work here" (e.g. dockerd without root).
svc_unavailable() {
  if [[ -n "${CI:-}" ]]; then
    echo "ERROR: $SVC_NAME: $1 (CI is set, so this is fatal)" >&2
    exit 1
  fi
  echo "SKIP: $SVC_NAME unavailable: $1"
  exit 0
}

# Installed, started, and still not working here (a sandbox where runc
# cannot start a container, say): show why, stop whatever was started, and
# then skip like svc_unavailable (fatal when CI is set).
svc_unusable() {
  local msg=$1
  shift
  echo "$SVC_NAME: $msg" >&2
  svc_show_logs_and_stop "$@"
  svc_unavailable "$msg"
}

# svc_show_logs_and_stop LOG...: print the end of each log that has
# anything, then stop whatever was started (do_stop is idempotent).
svc_show_logs_and_stop() {
  local f
  for f in "$@"; do
    if [[ -s "$f" ]]; then
      echo "----- last lines of $f -----" >&2
      tail -n 40 -- "$f" >&2
      echo "-----" >&2
    fi
  done
  do_stop >&2 || true
}

# kill -0 alone is not enough: in containers whose PID 1 does not reap,
# a dead daemon stays a zombie forever and kill -0 still succeeds. With a
# second argument, the process name (/proc/PID/comm) must match too, so a
# recycled pid from a stale pid file is never mistaken for our server.
svc_is_alive() {
  local pid=$1 comm=${2:-} state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ "$state" != Z && "$state" != X ]] || return 1
  if [[ -n "$comm" ]]; then
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$comm" ]] || return 1
  fi
  return 0
}

# Prints the pid (or any number) stored in FILE, or nothing.
svc_read_pid() {
  local file=$1 pid=""
  if [[ -r "$file" ]]; then
    read -r pid <"$file" || true
  fi
  if [[ "$pid" =~ ^[0-9]+$ ]]; then
    echo "$pid"
  fi
}

# Idempotent start: env file present and server alive means nothing to do.
# An env file without a live server is stale (crash, reboot) and is removed so
# tests never see a URL that points nowhere.
svc_already_running() {
  local comm=$1 pid
  [[ -f "$SVC_ENV" ]] || return 1
  pid=$(svc_read_pid "$SVC_PIDFILE")
  if [[ -n "$pid" ]] && svc_is_alive "$pid" "$comm"; then
    svc_log "already running (pid $pid), env in $SVC_ENV"
    return 0
  fi
  svc_log "removing stale $SVC_ENV (server not running)"
  rm -f -- "$SVC_ENV"
  return 1
}

# Prints a loopback TCP port that is free right now. Binding to port 0 lets the
# kernel choose; the socket is closed again, so there is a small race with other
# programs, which the start scripts handle by retrying on "address in use".
svc_free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' && return 0
  fi
  # Fallback without python3: random high ports until one refuses connections.
  local port i
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "ERROR: $SVC_NAME: could not find a free TCP port" >&2
  return 1
}

# svc_port_in_use_logged FILE...: did the server die because its port was taken?
svc_port_in_use_logged() {
  grep -qiE 'address already in use|EADDRINUSE|could not bind|bind: address' "$@" 2>/dev/null
}

# svc_wait TIMEOUT PID COMM CMD...: poll CMD until it succeeds. Gives up after
# TIMEOUT seconds, or at once when the server process (PID) has died, so a
# crash is reported in well under the timeout. COMM is only used in messages.
svc_wait() {
  local timeout=$1 pid=$2 comm=$3
  shift 3
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    # Only the pid here, not the name: right after `cmd &` the child may
    # not have exec'd the server yet and still be called "bash"/"setsid".
    if [[ -n "$pid" ]] && ! svc_is_alive "$pid"; then
      svc_log "$comm (pid $pid) exited during startup"
      return 1
    fi
    sleep 0.2
  done
  svc_log "no answer after ${timeout}s"
  return 1
}

# Print the end of the given logs, stop whatever was started (do_stop is
# idempotent) and fail. Used for every start failure, so a failed start never
# leaves a half-running daemon behind.
svc_fail() {
  local msg=$1
  shift
  echo "ERROR: $SVC_NAME: $msg" >&2
  svc_show_logs_and_stop "$@"
  exit 1
}

# svc_write_env VAR=value...: write the env file atomically (tests running in
# parallel must never read a half-written file). Values are shell-quoted.
svc_write_env() {
  local tmp=$SVC_ENV.tmp.$$ kv
  : >"$tmp"
  for kv in "$@"; do
    printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$tmp"
  done
  mv -f -- "$tmp" "$SVC_ENV"
  svc_log "ready; wrote $SVC_ENV:"
  sed 's/^/    /' "$SVC_ENV"
}

# svc_wait_exit PID COMM TIMEOUT: wait for a process asked to quit by other
# means (e.g. a SHUTDOWN command); returns 1 if it is still alive.
svc_wait_exit() {
  local pid=$1 comm=$2 deadline=$((SECONDS + $3))
  while svc_is_alive "$pid" "$comm"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
  return 0
}

# svc_kill_pid PID COMM [TIMEOUT]: SIGTERM, wait up to TIMEOUT s, then SIGKILL.
# Does nothing if the process is already gone (or the pid is now someone else's).
svc_kill_pid() {
  local pid=$1 comm=$2 timeout=${3:-15}
  svc_is_alive "$pid" "$comm" || return 0
  svc_log "sending SIGTERM to $comm (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    svc_is_alive "$pid" "$comm" || return 0
    sleep 0.2
  done
  svc_log "$comm (pid $pid) still alive after ${timeout}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    svc_is_alive "$pid" "$comm" || return 0
    sleep 0.2
  done
  svc_log "WARNING: $comm (pid $pid) survived SIGKILL"
  return 0
}

# Pids of processes whose command line mentions PATH (daemons started with
# their data/socket paths on the command line, e.g. leftover containerd shims).
svc_pids_mentioning() {
  local path=$1 p cmd
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ "$p" == "$$" || "$p" == "$BASHPID" ]] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
    if [[ "$cmd" == *"$path"* ]] && svc_is_alive "$p"; then
      echo "$p"
    fi
  done
}

# Mount points at or below DIR, deepest first (octal escapes like \040 for a
# space in /proc/self/mountinfo are decoded).
svc_mounts_under() {
  local dir=$1
  awk -v dir="$dir" '
    function unescape(s,   out, i, c) {
      out = ""
      for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\" && substr(s, i + 1, 3) ~ /^[0-7][0-7][0-7]$/) {
          out = out sprintf("%c", (substr(s, i + 1, 1) * 64) + (substr(s, i + 2, 1) * 8) + substr(s, i + 3, 1))
          i += 3
        } else {
          out = out c
        }
      }
      return out
    }
    {
      m = unescape($5)
      if (m == dir || index(m, dir "/") == 1) print length(m) "\t" m
    }' /proc/self/mountinfo | sort -rn | cut -f2-
}

# Unmount everything left under DIR. A normal umount first; lazy (-l) if busy,
# so rm -rf of the service dir can never descend into a still-mounted tree.
svc_unmount_under() {
  local dir=$1 m
  command -v umount >/dev/null 2>&1 || return 0
  while IFS= read -r m; do
    [[ -n "$m" ]] || continue
    svc_log "unmounting $m"
    umount -- "$m" 2>/dev/null || umount -l -- "$m" 2>/dev/null || svc_log "WARNING: could not unmount $m"
  done < <(svc_mounts_under "$dir")
}

# svc_main NAME start|stop
svc_main() {
  local name=$1 action=${2:-}
  case "$action" in
    start | stop) ;;
    *)
      echo "usage: $0 start|stop   (needs SESSIONKIT_SERVICE_DIR)" >&2
      exit 2
      ;;
  esac
  svc_init "$name"
  if [[ "$action" == start ]]; then
    mkdir -p -- "$SVC_DIR"
    do_start
  else
    do_stop
  fi
}
