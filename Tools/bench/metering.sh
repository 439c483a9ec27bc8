#!/usr/bin/env bash
# Usage metering benchmark (release builds): RecordUsage with one event a call and with batches
# of 100, each event with a key of its own (so each is a durable write, not a duplicate), against
# Health/Check on the same server, in alternating rounds. h2load repeats one body, so the calls
# are made by curl --parallel from generated config files, Health/Check included: the same client
# for both sides of the ratio. Over HTTP/1.1 keep-alive (64 connections): Debian's curl 7.88
# fails every POST it multiplexes onto an HTTP/2 prior-knowledge connection ("Error in the HTTP2
# framing layer", against nghttpd too). h2load's Health/Check over HTTP/2 is printed too, to show
# how far curl itself limits the rates.
#   Tools/bench/metering.sh [single-calls] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
calls=${1:-20000}
rounds=${2:-3}
Tools/dev/install-packages.sh test >/dev/null
for product in identity organization marketplace-link aws-marketplace-sim; do swift build -c release --product $product >/dev/null; done
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source Tools/bench/lib.sh
reporter=bench-usage-reporter-secret
reporter_digest=$(printf '%s' "$reporter" | sha256sum | cut -d' ' -f1)
start_linked_system --trusted-services "usage-reporter=$reporter_digest" --metered-dimensions compute_hours,storage_gb_hours

# curl config files: name, calls, events per call (0: Health/Check). Every event key is new.
write_calls() {
  python3 - "$work/$1.curl" "$2" "$3" "$organization" "$reporter" "$1" <<'PY'
import datetime, json, sys
path, calls, per_call, organization, secret, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
base = "http://127.0.0.1:17133/"
blocks = []
for call in range(calls):
    if per_call == 0:
        url, body, credential = base + "grpc.health.v1.Health/Check", "{}", ""
    else:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        events = [{"idempotencyKey": f"{name}-{call}-{index}", "organizationId": organization,
                   "dimension": "compute_hours" if index % 2 else "storage_gb_hours", "quantity": 1, "occurredAt": now}
                  for index in range(per_call)]
        url, body = base + "marketplacelink.v1.MarketplaceLinkService/RecordUsage", json.dumps({"events": events})
        credential = f'header = "x-service-credential: usage-reporter:{secret}"\n'
    quoted = body.replace("\\", "\\\\").replace('"', '\\"')
    blocks.append(f'url = "{url}"\nheader = "content-type: application/json"\n{credential}data = "{quoted}"\n'
                  'http1.1\noutput = "/dev/null"\nwrite-out = "%{http_code}\\n"\nsilent\n')
# "next" separates transfers; options after it apply to the next one only.
with open(path, "w") as out:
    out.write("next\n".join(blocks))
PY
}

# Runs a config file; prints "calls/s failed".
run_calls() {
  local started ended
  started=$(date +%s.%N)
  curl --parallel --parallel-max 64 -K "$work/$1.curl" > "$work/$1.codes" 2> "$work/$1.err"
  ended=$(date +%s.%N)
  python3 -c "
import sys
codes = open('$work/$1.codes').read().split()
print(f'{len(codes) / ($ended - $started):.0f} {sum(1 for c in codes if c != \"200\")}')"
}

batch_calls=$((calls / 100))
printf '{}' > "$work/empty.json"
echo "== h2load Health/Check (-n 100000 -c 8 -m 32), the server's reference rate: $(measure h2 -n 100000 -c 8 -m 32 \
  -d "$work/empty.json" -H 'content-type: application/json' http://127.0.0.1:17133/grpc.health.v1.Health/Check) (req/s failed)"
echo "== curl --parallel (HTTP/1.1, 64 connections): Health/Check and RecordUsage, $calls calls of 1 event and $batch_calls of 100, $rounds rounds"
rows=()
for round in $(seq "$rounds"); do
  write_calls health-$round "$calls" 0
  write_calls single-$round "$calls" 1
  write_calls batch-$round "$batch_calls" 100
  read -r health health_failed < <(run_calls health-$round)
  read -r single single_failed < <(run_calls single-$round)
  read -r batch batch_failed < <(run_calls batch-$round)
  printf 'round %s: Health/Check %s calls/s (%s failed), RecordUsage x1 %s calls/s (%s failed), RecordUsage x100 %s calls/s = %s events/s (%s failed)\n' \
    "$round" "$health" "$health_failed" "$single" "$single_failed" "$batch" "$((batch * 100))" "$batch_failed"
  rows+=("$health $single $batch")
done
printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin if line.strip()]
health, single, batch = (statistics.median(r[i] for r in rows) for i in range(3))
print(f'median Health/Check {health:.0f} calls/s; RecordUsage x1 {single:.0f} events/s; RecordUsage x100 {batch * 100:.0f} events/s ({batch:.0f} calls/s)')
print(f'ratio RecordUsage x1 / Health/Check (calls): median {100 * statistics.median(r[1] / r[0] for r in rows):.1f}%')
print(f'ratio RecordUsage x100 / Health/Check (calls): median {100 * statistics.median(r[2] / r[0] for r in rows):.1f}%; '
      f'its events/s / Health/Check calls/s: {100 * statistics.median(100 * r[2] / r[0] for r in rows):.0f}%')"
echo "events recorded: $(sqlite3 "$work/link/marketplace-link.sqlite" 'SELECT count(*) FROM usage_event')"
