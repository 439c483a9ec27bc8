#!/usr/bin/env bash
# Tracing's cost (release builds): Health/Check and GetBillingStatus on marketplace-link with
# tracing off, sampled at 0%, 1% and 100%, exporting over OTLP/HTTP to a receiver that takes every
# export (Tests/Fixtures/otlp_receiver.py --discard). Four marketplace-link processes, one per
# mode, each on its own copy of the same data, run side by side; each round measures off and the
# traced modes of its phase one after another within seconds (in a rotating order), so what the
# shared machine does to one falls on the others too, and each round's ratio is taken against the
# same round's "off". 0% and 1% first, then 100% (rounds/5 rounds, at least 3), whose exports
# outlast its calls. 0% is parentbased_traceidratio at 0: every call goes through the root sampler
# and keeps ids, nothing is recorded; it tells the cost of tracing every call from that of the
# spans recorded and exported.
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

modes=(off 0% 1% 100%)
declare -A port pid
# Runs marketplace-link with tracing as mode $1 says (off, 0%, 1%, 100%) on port $2, on a copy of the data.
start_link() {
  local tracing=()
  case $1 in
    off) ;;
    0%|1%) tracing=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$receiver OTEL_TRACES_SAMPLER=parentbased_traceidratio
                    OTEL_TRACES_SAMPLER_ARG=$([ "$1" = 0% ] && echo 0 || echo 0.01)) ;;
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
start_link 0% 17136
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

# Warms mode $1's process up: connections, keys, caches.
warm_up() {
  for method in health status; do
    target "$method" "$1"
    # shellcheck disable=SC2086
    h2load $settings "${args[@]}" >/dev/null
  done
}

results=$work/results
# Rounds $1 to $2, each measuring the modes named after them one after another within seconds,
# starting with the next mode each round, so that none always runs first or last.
run_rounds() {
  local first=$1 last=$2; shift 2
  local phase=("$@")
  for round in $(seq "$first" "$last"); do
    local shift_by=$(( (round - first) % ${#phase[@]} ))
    for mode in "${phase[@]:$shift_by}" "${phase[@]:0:$shift_by}"; do
      local line="$round $mode"
      for method in health status; do
        local before after rps failed
        before=$(cpu_ticks "${pid[$mode]}")
        target "$method" "$mode"
        # shellcheck disable=SC2086
        read -r rps failed < <(measure "$method" $settings "${args[@]}")
        after=$(cpu_ticks "${pid[$mode]}")
        [ "$failed" = 0 ] || echo "round $round, tracing $mode: $failed $method calls failed" >&2
        line="$line $rps $((after - before))"
      done
      if [ "$mode" = "100%" ]; then sleep 2; fi   # a breath for the exporter between rounds
      echo "$line" >> "$results"
      read -r _ _ health_rps _ status_rps _ <<< "$line"
      printf 'round %s, tracing %-4s: Health/Check %s req/s, GetBillingStatus %s req/s\n' "$round" "$mode" "$health_rps" "$status_rps"
    done
  done
}

# Two phases. The 100% process exports a batch of 512 spans every few milliseconds while it is
# busy, and the receiver takes each on the same cores, so it is warmed up and measured only once
# off and 1% are done: its exports would otherwise land on their calls. Each phase has its own
# rounds of off, for the ratios of the same round.
rounds_100=$(( rounds / 5 > 3 ? rounds / 5 : 3 ))
echo "== Health/Check and GetBillingStatus, tracing off / 0% / 1%: h2load $settings, $rounds rounds, side by side"
warm_up off
warm_up 0%
warm_up 1%
sleep 2
run_rounds 1 "$rounds" off 0% 1%
echo "== tracing off / 100%: $rounds_100 rounds"
warm_up 100%
sleep 2
run_rounds $((rounds + 1)) $((rounds + rounds_100)) off 100%
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
    for mode in ["0%", "1%", "100%"]:
        paired = [r for r in by_round.values() if mode in r]
        # Each round's ratio against the same round's "off": the drift between rounds cancels.
        ratios = [r[mode][index][0] / r["off"][index][0] for r in paired]
        # Calls per CPU second, against off's in the same round.
        cpu_ratios = [r["off"][index][1] / max(1, r[mode][index][1]) for r in paired]
        print(f"  {mode:>4} / off ({len(paired)} rounds): throughput median {100 * statistics.median(ratios):.1f}% (range {100 * min(ratios):.1f}%-{100 * max(ratios):.1f}%),"
              f" calls per CPU second median {100 * statistics.median(cpu_ratios):.1f}% (range {100 * min(cpu_ratios):.1f}%-{100 * max(cpu_ratios):.1f}%)")
PY
