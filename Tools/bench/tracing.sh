#!/usr/bin/env bash
# Tracing's cost (release builds): Health/Check and GetBillingStatus on marketplace-link with
# tracing off, sampled at 1% and at 100%, exporting over OTLP/HTTP to a receiver that takes every
# export (Tests/Fixtures/otlp_receiver.py --discard). Three marketplace-link processes, one per
# mode, each on its own copy of the same data, run side by side; each round measures them one
# after another within seconds (in a rotating order), so what the shared machine does to one
# falls on the others too, and each round's ratio is taken against the same round's "off".
# Besides throughput, each mode's CPU time per call (the process's user + system time over the
# calls answered), which a busy neighbour disturbs less. Target: at 1%, within 5% of off.
# The whole system runs (the simulator, identity, organization); the link is made through the
# journey first.
#   [BIN=dir] Tools/bench/tracing.sh [requests] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-50000}
rounds=${2:-25}
Tools/dev/install-packages.sh test >/dev/null
# BIN: a directory with release builds already made (compose/build-release.sh's .build/compose-bin).
bin=${BIN:-}
if [ -z "$bin" ]; then
  for product in identity organization marketplace-link aws-marketplace-sim; do swift build -c release --product $product >/dev/null; done
  bin=$(swift build -c release --show-bin-path)
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source Tools/bench/lib.sh

python3 -u Tests/Fixtures/otlp_receiver.py --discard > "$work/receiver.out" 2>&1 &
for _ in $(seq 100); do grep -q '^PORT ' "$work/receiver.out" 2>/dev/null && break; sleep 0.1; done
receiver=$(sed -n 's/^PORT //p' "$work/receiver.out")

start_linked_system
# The journey's marketplace-link (the last job started) gives way to one per mode.
journey_link=$(jobs -p | tail -1)
kill "$journey_link"; wait "$journey_link" 2>/dev/null || true

modes=(off 1% 100%)
declare -A port pid
# Runs marketplace-link with tracing as mode $1 says (off, 1%, 100%) on port $2, on a copy of the data.
start_link() {
  local tracing=()
  case $1 in
    off) ;;
    1%) tracing=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$receiver OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01) ;;
    100%) tracing=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$receiver OTEL_TRACES_SAMPLER=parentbased_always_on) ;;
  esac
  cp -r "$work/link" "$work/link-$2"
  env "${tracing[@]}" AWS_ACCESS_KEY_ID=AKIDLOCALSELLER000001 AWS_SECRET_ACCESS_KEY=local-simulator-seller-secret-not-for-aws \
    "$bin/marketplace-link" --port "$2" --data-dir "$work/link-$2" --log-level warning --identity-url http://127.0.0.1:17131 \
    --organization-url http://127.0.0.1:17132 --aws-marketplace-endpoint http://127.0.0.1:17139 --service-secret bench-link-secret \
    2> "$work/link-$2.log" &
  port[$1]=$2
  pid[$1]=$!
}
start_link off 17133
start_link 1% 17134
start_link 100% 17135
for mode in "${modes[@]}"; do wait_ready "${port[$mode]}"; done

# CPU time (user + system) the process $1 has used, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

printf '{"organizationId":"%s"}' "$organization" > "$work/status.json"
printf '{}' > "$work/empty.json"
settings="-n $requests -c 8 -m 32"
# Sets `args`, h2load's arguments for method $1 (health, status) on mode $2's process.
target() {
  local url=http://127.0.0.1:${port[$2]}
  case $1 in
    health) args=(-d "$work/empty.json" -H 'content-type: application/json' "$url/grpc.health.v1.Health/Check") ;;
    status) args=(-d "$work/status.json" -H 'content-type: application/json' -H "authorization: Bearer $access"
                  "$url/marketplacelink.v1.MarketplaceLinkService/GetBillingStatus") ;;
  esac
}

for mode in "${modes[@]}"; do
  for method in health status; do
    target "$method" "$mode"
    # shellcheck disable=SC2086
    h2load $settings "${args[@]}" >/dev/null   # warm-up: connections, keys, caches
  done
done
sleep 2

echo "== Health/Check and GetBillingStatus, tracing off / 1% / 100%: h2load $settings, $rounds rounds, modes side by side"
results=$work/results
for round in $(seq "$rounds"); do
  # Each round starts with the next mode, so none always runs first or last.
  shift_by=$(( (round - 1) % ${#modes[@]} ))
  for mode in "${modes[@]:$shift_by}" "${modes[@]:0:$shift_by}"; do
    line="$round $mode"
    for method in health status; do
      before=$(cpu_ticks "${pid[$mode]}")
      target "$method" "$mode"
      # shellcheck disable=SC2086
      read -r rps failed < <(measure "$method" $settings "${args[@]}")
      after=$(cpu_ticks "${pid[$mode]}")
      [ "$failed" = 0 ] || echo "round $round, tracing $mode: $failed $method calls failed" >&2
      line="$line $rps $((after - before))"
    done
    # What the exporter still holds goes out now, not during the next mode's calls.
    if [ "$mode" = "100%" ]; then sleep 2; fi
    echo "$line" >> "$results"
    read -r _ _ health_rps _ status_rps _ <<< "$line"
    printf 'round %s, tracing %-4s: Health/Check %s req/s, GetBillingStatus %s req/s\n' "$round" "$mode" "$health_rps" "$status_rps"
  done
done
for mode in "${modes[@]}"; do
  dropped=$(curl -s "http://127.0.0.1:${port[$mode]}/metrics" | awk '/^otel_spans_dropped_total/ { n += $2 } END { print n + 0 }')
  echo "tracing $mode: spans dropped $dropped"
done
echo "receiver: $(curl -s "http://127.0.0.1:$receiver/_stats")"

python3 - "$results" "$requests" "$(getconf CLK_TCK)" <<'PY'
import collections, statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
requests, ticks_per_second = int(sys.argv[2]), int(sys.argv[3])
by_round = collections.defaultdict(dict)
for round_, mode, health, health_ticks, status, status_ticks in rows:
    by_round[round_][mode] = ((float(health), int(health_ticks)), (float(status), int(status_ticks)))
for index, method in enumerate(["Health/Check", "GetBillingStatus"]):
    off = statistics.median(r["off"][index][0] for r in by_round.values())
    off_cpu = statistics.median(r["off"][index][1] for r in by_round.values()) * 1e6 / ticks_per_second / requests
    print(f"{method}: off median {off:.0f} req/s, {off_cpu:.1f} us of CPU per call")
    for mode in ["1%", "100%"]:
        # Each round's ratio against the same round's "off": the drift between rounds cancels.
        ratios = [r[mode][index][0] / r["off"][index][0] for r in by_round.values()]
        # Calls per CPU second, against off's in the same round.
        cpu_ratios = [r["off"][index][1] / max(1, r[mode][index][1]) for r in by_round.values()]
        print(f"  {mode:>4} / off: throughput median {100 * statistics.median(ratios):.1f}% (range {100 * min(ratios):.1f}%-{100 * max(ratios):.1f}%),"
              f" calls per CPU second median {100 * statistics.median(cpu_ratios):.1f}% (range {100 * min(cpu_ratios):.1f}%-{100 * max(cpu_ratios):.1f}%)")
PY
