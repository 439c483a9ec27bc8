#!/usr/bin/env bash
# Tracing's cost (release builds): Health/Check and GetBillingStatus on marketplace-link with
# tracing off, sampled at 1% and at 100%, exporting over OTLP/HTTP to a receiver that takes every
# export (Tests/Fixtures/otlp_receiver.py --discard). The modes alternate round by round, each a
# fresh marketplace-link process on the same data, so the machine's drift falls on all three.
# Target: at 1%, within 5% of off. The whole system runs (the simulator, identity, organization);
# the link is made through the journey first.
#   [BIN=dir] Tools/bench/tracing.sh [requests] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-50000}
rounds=${2:-9}
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
link_arguments=(--port 17133 --data-dir "$work/link" --log-level warning --identity-url http://127.0.0.1:17131
                --organization-url http://127.0.0.1:17132 --aws-marketplace-endpoint http://127.0.0.1:17139 --service-secret bench-link-secret)
# The journey's marketplace-link (the last job started) gives way to one per mode and round.
journey_link=$(jobs -p | tail -1)
kill "$journey_link"; wait "$journey_link" 2>/dev/null || true

# Runs marketplace-link with tracing as mode $1 says (off, 1%, 100%) until stop_link.
start_link() {
  local tracing=()
  case $1 in
    off) ;;
    1%) tracing=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$receiver OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01) ;;
    100%) tracing=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$receiver OTEL_TRACES_SAMPLER=parentbased_always_on) ;;
  esac
  env "${tracing[@]}" AWS_ACCESS_KEY_ID=AKIDLOCALSELLER000001 AWS_SECRET_ACCESS_KEY=local-simulator-seller-secret-not-for-aws \
    "$bin/marketplace-link" "${link_arguments[@]}" 2> "$work/link-$1.log" &
  link_pid=$!
  wait_ready 17133
}
stop_link() { kill "$link_pid"; wait "$link_pid" 2>/dev/null || true; }

printf '{"organizationId":"%s"}' "$organization" > "$work/status.json"
printf '{}' > "$work/empty.json"
status=(-d "$work/status.json" -H 'content-type: application/json' -H "authorization: Bearer $access"
        http://127.0.0.1:17133/marketplacelink.v1.MarketplaceLinkService/GetBillingStatus)
health=(-d "$work/empty.json" -H 'content-type: application/json' http://127.0.0.1:17133/grpc.health.v1.Health/Check)
settings="-n $requests -c 8 -m 32"
modes=(off 1% 100%)

echo "== Health/Check and GetBillingStatus, tracing off / 1% / 100%: h2load $settings, $rounds rounds, modes alternating"
results=$work/results
for round in $(seq "$rounds"); do
  # Each round starts with the next mode, so none always runs first or last.
  shift_by=$(( (round - 1) % ${#modes[@]} ))
  for mode in "${modes[@]:$shift_by}" "${modes[@]:0:$shift_by}"; do
    start_link "$mode"
    # shellcheck disable=SC2086
    h2load $settings "${health[@]}" >/dev/null   # warm-up: connections, keys, caches
    # shellcheck disable=SC2086
    read -r health_rps health_failed < <(measure health $settings "${health[@]}")
    # shellcheck disable=SC2086
    read -r status_rps status_failed < <(measure status $settings "${status[@]}")
    dropped=$(curl -s http://127.0.0.1:17133/metrics | awk '/^otel_spans_dropped_total/ { n += $2 } END { print n + 0 }')
    stop_link
    printf 'round %s, tracing %-4s: Health/Check %s req/s (%s failed), GetBillingStatus %s req/s (%s failed), spans dropped %s\n' \
      "$round" "$mode" "$health_rps" "$health_failed" "$status_rps" "$status_failed" "$dropped"
    echo "$round $mode $health_rps $status_rps" >> "$results"
  done
done
echo "receiver: $(curl -s "http://127.0.0.1:$receiver/_stats")"

python3 - "$results" <<'PY'
import collections, statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
by_round = collections.defaultdict(dict)
for round_, mode, health, status in rows:
    by_round[round_][mode] = (float(health), float(status))
for index, method in enumerate(["Health/Check", "GetBillingStatus"]):
    off = statistics.median(r["off"][index] for r in by_round.values())
    print(f"{method}: off median {off:.0f} req/s")
    for mode in ["1%", "100%"]:
        # Each round's ratio against the same round's "off": the drift between rounds cancels.
        ratios = [r[mode][index] / r["off"][index] for r in by_round.values()]
        print(f"  {mode:>4} / off: median {100 * statistics.median(ratios):.1f}% (range {100 * min(ratios):.1f}%-{100 * max(ratios):.1f}%)")
PY
