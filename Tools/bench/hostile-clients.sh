#!/usr/bin/env bash
# Memory under hostile clients: runs Tests/Fixtures/hostile_clients.py (pipelined HTTP/1.1 never
# read, an HTTP/2 flood never read, never-ending HTTP/2 bodies; one client each, then three at
# once) against an organization binary, and prints its RSS before and at peak, and the slowest
# /healthz answer on another connection meanwhile. The same probes as
# EndToEndTests/HostileClientTests, for comparing builds (say, before and after a change).
#
#   Tools/bench/hostile-clients.sh [organization binary] [seconds per probe]
#   default: the release build of this tree (built if missing), 8 seconds
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=${1:-}
seconds=${2:-8}
if [ -z "$binary" ]; then
  swift build -c release --product organization >/dev/null
  binary=$(swift build -c release --show-bin-path)/organization
fi
work=$(mktemp -d)
port=17152
server=
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT

start() {  # a fresh process for each probe, so one probe's growth does not hide the next one's
  [ -n "$server" ] && { kill "$server"; wait "$server" 2>/dev/null || true; }
  rm -rf "$work/organization"
  "$binary" --port "$port" --data-dir "$work/organization" --log-level warning > "$work/log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
}

rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status" 2>/dev/null || echo 0; }

probe() {  # label mode...
  local label=$1; shift
  start
  local before peak slowest=0 pids=()
  before=$(rss); peak=$before
  for mode in "$@"; do
    python3 Tests/Fixtures/hostile_clients.py "$mode" 127.0.0.1 "$port" "$seconds" > /dev/null 2>&1 &
    pids+=($!)
  done
  local end=$((SECONDS + seconds))
  while [ $SECONDS -lt $end ]; do
    local now time
    now=$(rss); [ "$now" -gt "$peak" ] && peak=$now
    time=$(curl -s -o /dev/null -m 5 -w '%{time_total}' "http://127.0.0.1:$port/healthz" || echo 5)
    slowest=$(python3 -c "print(max($slowest, $time))")
    sleep 0.2
  done
  wait "${pids[@]}" 2>/dev/null || true
  now=$(rss); [ "$now" -gt "$peak" ] && peak=$now
  if ! kill -0 $server 2>/dev/null; then echo "$label: the server died"; exit 1; fi
  printf '%-16s RSS %6d KiB -> peak %7d KiB (+%.1f MiB); slowest /healthz %.1f ms\n' \
    "$label" "$before" "$peak" "$(python3 -c "print(($peak - $before) / 1024)")" "$(python3 -c "print($slowest * 1000)")"
}

probe http1-pipeline http1-pipeline
probe h2-flood h2-flood
probe h2-bodies h2-bodies
probe "three at once" h2-bodies h2-bodies h2-flood
