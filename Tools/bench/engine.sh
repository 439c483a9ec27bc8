#!/usr/bin/env bash
# Engine benchmark: h2load against grpc.health.v1.Health/Check on a release build of identity
# (h2c), and in the same run against nghttpd serving a static file of the same size, with the
# same h2load settings. The machine is shared and noisy, so the two are measured in alternating
# rounds; it prints each round, then the medians, their ratio and p99 latencies.
#   Tools/bench/engine.sh [requests] [clients] [streams-per-client] [rounds]
# EVENT_LOOP_THREADS sets identity's event loops (default: one per core, as deployed); nghttpd
# runs its default single worker. h2load (one thread) shares the same cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-200000}
clients=${2:-8}
streams=${3:-32}
rounds=${4:-5}
threads=${EVENT_LOOP_THREADS:-$(nproc)}
Tools/dev/install-packages.sh test >/dev/null
swift build -c release --product identity >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

printf '{}' > "$work/request.json"
printf '{"status":"SERVING"}' > "$work/static.json"
"$bin/identity" --port 17101 --data-dir "$work/identity" --log-level warning --event-loop-threads "$threads" &
nghttpd --no-tls -d "$work" -a 127.0.0.1 17102 >/dev/null 2>&1 &
for _ in $(seq 100); do
  curl -sf --http2-prior-knowledge -o /dev/null http://127.0.0.1:17101/healthz \
    && curl -sf --http2-prior-knowledge -o /dev/null http://127.0.0.1:17102/static.json && break
  sleep 0.1
done

health=(-d "$work/request.json" -H 'content-type: application/json' http://127.0.0.1:17101/grpc.health.v1.Health/Check)
static=(http://127.0.0.1:17102/static.json)
measure() {  # name, h2load target arguments...: prints "req/s failed p99-ms"
  local name=$1; shift
  h2load -n "$requests" -c "$clients" -m "$streams" --log-file "$work/$name.log" "$@" > "$work/$name.out"
  python3 - "$work/$name.out" "$work/$name.log" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
rps = float(re.search(r"finished in [^,]+, ([0-9.]+) req/s", out).group(1))
failed = int(re.search(r"(\d+) failed", out).group(1))
latencies = sorted(int(line.split()[2]) for line in open(sys.argv[2]) if line.strip())
print(f"{rps:.0f} {failed} {latencies[int(len(latencies) * 0.99) - 1] / 1000:.2f}")
PY
}

h2load -n 20000 -c "$clients" -m "$streams" "${health[@]}" >/dev/null   # warm-up
echo "h2load -n $requests -c $clients -m $streams; identity event-loop threads: $threads"
printf '%-6s %14s %8s %10s   %14s %8s %10s   %7s\n' round "Health req/s" failed "p99 ms" "nghttpd req/s" failed "p99 ms" ratio
rows=()
for round in $(seq "$rounds"); do
  read -r ours ours_failed ours_p99 < <(measure health "${health[@]}")
  read -r ref ref_failed ref_p99 < <(measure static "${static[@]}")
  ratio=$(python3 -c "print(f'{100 * $ours / $ref:.1f}%')")
  printf '%-6s %14s %8s %10s   %14s %8s %10s   %7s\n' "$round" "$ours" "$ours_failed" "$ours_p99" "$ref" "$ref_failed" "$ref_p99" "$ratio"
  rows+=("$ours $ref $ours_p99 $ref_p99")
done
printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin if line.strip()]
ours, ref, ours_p99, ref_p99 = (statistics.median(column) for column in zip(*rows))
ratios = [r[0] / r[1] for r in rows]
print(f'median: Health/Check {ours:.0f} req/s (p99 {ours_p99:.2f} ms), nghttpd {ref:.0f} req/s (p99 {ref_p99:.2f} ms)')
print(f'ratio Health/Check / nghttpd: median {100 * statistics.median(ratios):.1f}% (range {100 * min(ratios):.1f}%-{100 * max(ratios):.1f}%)')
"
