#!/usr/bin/env bash
# Engine benchmark: h2load against grpc.health.v1.Health/Check on a release build of identity
# (h2c), and in the same run against nghttpd serving a static file of the same size with the
# same h2load settings. Prints both req/s, their ratio and each p99 latency.
#   Tools/bench/engine.sh [requests] [clients] [streams-per-client]
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-200000}
clients=${2:-8}
streams=${3:-32}
Tools/dev/install-packages.sh test >/dev/null
swift build -c release --product identity >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

printf '{}' > "$work/request.json"
printf '{"status":"SERVING"}' > "$work/static.json"
"$bin/identity" --port 17101 --data-dir "$work/identity" --log-level warning &
nghttpd --no-tls -d "$work" -a 127.0.0.1 17102 >/dev/null 2>&1 &
for _ in $(seq 100); do
  curl -sf --http2-prior-knowledge -o /dev/null http://127.0.0.1:17101/healthz \
    && curl -sf --http2-prior-knowledge -o /dev/null http://127.0.0.1:17102/static.json && break
  sleep 0.1
done

run() {  # name, h2load arguments...
  local name=$1; shift
  h2load -n "$requests" -c "$clients" -m "$streams" --log-file "$work/$name.log" "$@" > "$work/$name.out"
  local rps failed p99
  rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$work/$name.out")
  failed=$(awk '/^requests:/ {print $10}' "$work/$name.out")
  p99=$(python3 -c "
import sys
latencies = sorted(int(line.split()[2]) for line in open(sys.argv[1]) if line.strip())
print('%.2f' % (latencies[int(len(latencies) * 0.99) - 1] / 1000))" "$work/$name.log")
  echo "$name $rps $failed $p99"
}
# Warm both up, then measure.
h2load -n 20000 -c "$clients" -m "$streams" -d "$work/request.json" -H 'content-type: application/json' \
  http://127.0.0.1:17101/grpc.health.v1.Health/Check >/dev/null
read -r _ ours_rps ours_failed ours_p99 < <(run health -d "$work/request.json" -H 'content-type: application/json' \
  http://127.0.0.1:17101/grpc.health.v1.Health/Check)
read -r _ ref_rps ref_failed ref_p99 < <(run nghttpd http://127.0.0.1:17102/static.json)

echo "h2load -n $requests -c $clients -m $streams"
printf '%-32s %12s req/s  failed %-6s p99 %8s ms\n' "Health/Check (identity, h2c)" "$ours_rps" "$ours_failed" "$ours_p99"
printf '%-32s %12s req/s  failed %-6s p99 %8s ms\n' "nghttpd static file" "$ref_rps" "$ref_failed" "$ref_p99"
python3 -c "print('ratio Health/Check / nghttpd: %.1f%%' % (100 * float('$ours_rps') / float('$ref_rps')))"
