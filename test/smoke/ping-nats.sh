#!/usr/bin/env bash
# Smoke test: the nats fixture is healthy (monitor endpoint) and its client
# port advertises JetStream in the INFO line.
set -euo pipefail

# shellcheck source=require-service.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/require-service.sh"
require_service NATS_URL nats

if [[ -n "${NATS_MONITOR_URL:-}" ]]; then
  health=$(curl -fsS --max-time 10 "$NATS_MONITOR_URL/healthz?js-enabled-only=true")
  if [[ "$health" != *'"status":"ok"'* ]]; then
    echo "FAIL: $NATS_MONITOR_URL/healthz returned '$health'"
    exit 1
  fi
fi

# nats://host:port -> host, port; the server speaks first with INFO {json}.
hostport=${NATS_URL#nats://}
host=${hostport%:*}
port=${hostport##*:}
exec 3<>"/dev/tcp/$host/$port"
line=""
read -r -t 5 line <&3 || true
exec 3>&-
if [[ "$line" != INFO* ]]; then
  echo "FAIL: no INFO line from $NATS_URL (got '$line')"
  exit 1
fi
if [[ "$line" != *'"jetstream":true'* ]]; then
  echo "FAIL: $NATS_URL does not advertise JetStream: $line"
  exit 1
fi
echo "OK: nats at $NATS_URL (JetStream enabled)"
