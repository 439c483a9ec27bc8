#!/usr/bin/env bash
# The buyer's journey rate with one and with two replicas of identity, organization and
# marketplace-link, all on one PostgreSQL 15 started here (release builds), in alternating rounds
# of the same run: Tools/bench/journey_rate.py drives journeys (fresh token, GetMe, a new
# organization, "Set up your account" on the simulator, AcceptRegistration, BindOrganization,
# GetBillingStatus) from 8 workers for a fixed time, round robin over the replicas' URLs.
#   Tools/bench/replicas.sh [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
rounds=${2:-2}
Tools/dev/install-packages.sh test >/dev/null
for product in identity organization marketplace-link aws-marketplace-sim; do swift build -c release --product $product >/dev/null; done
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
source Tools/bench/lib.sh
secret=bench-link-secret
digest=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)
buyers=4000

start_postgres 17160

# A seed with a buyer account (and an offer to it) per journey: an AWS account binds once.
python3 - "$work/seed.json" "$buyers" <<'PY'
import json, sys
path, count = sys.argv[1], int(sys.argv[2])
seed = {"sellerKeys": [{"accessKeyId": "AKIDBENCHSELLER", "secretAccessKey": "bench-seller-secret"}],
        "product": {"code": "prod-committed-demo", "name": "Committed Contract"},
        "offers": [{"id": f"offer-{i}", "buyerAccountId": f"4{i:011d}", "committedAmountUSD": 1000, "termMonths": 12,
                    "dimensions": {"seats": 1}, "expiresAt": "2030-01-01T00:00:00Z"} for i in range(count)],
        "buyers": [{"accountId": f"4{i:011d}", "email": f"buyer{i}@example.com",
                    "identities": [{"name": f"buyer{i}", "managedPolicies": ["AWSMarketplaceRead-only", "AWSMarketplaceManageSubscriptions"],
                                    "actions": []}]} for i in range(count)]}
json.dump(seed, open(path, "w"))
PY

# One round: fresh databases, the simulator, N replicas of each service; prints the driver's line.
round_with() {
  local replicas=$1 run=$2 pids=() base=17200 urls_identity="" urls_organization="" urls_link=""
  local url="postgres://postgres@127.0.0.1:17160"
  for database in identity organization marketplace-link; do "$pg_bin/createdb" -h 127.0.0.1 -p 17160 -U postgres "$database-$run"; done
  "$bin/aws-marketplace-sim" --port 17199 --data-dir "$work/sim-$run" --seed "$work/seed.json" --notification-url "" --maildrop-dir "" \
    --log-level warning & pids+=($!)
  for index in $(seq 0 $((replicas - 1))); do
    urls_identity+="${urls_identity:+,}http://127.0.0.1:$((base + index))"
    urls_organization+="${urls_organization:+,}http://127.0.0.1:$((base + 10 + index))"
    urls_link+="${urls_link:+,}http://127.0.0.1:$((base + 20 + index))"
  done
  for index in $(seq 0 $((replicas - 1))); do
    "$bin/identity" --port $((base + index)) --data-dir "$work/$run/identity-$index" --log-level warning --scrypt-log-n 12 \
      --maildrop-dir "$work/$run/maildrop" --database-url "$url/identity-$run?sslmode=disable" & pids+=($!)
    "$bin/organization" --port $((base + 10 + index)) --data-dir "$work/$run/organization-$index" --log-level warning \
      --database-url "$url/organization-$run?sslmode=disable" --identity-url "$urls_identity" --trusted-services "marketplace-link=$digest" & pids+=($!)
    AWS_ACCESS_KEY_ID=AKIDBENCHSELLER AWS_SECRET_ACCESS_KEY=bench-seller-secret \
      "$bin/marketplace-link" --port $((base + 20 + index)) --data-dir "$work/$run/link-$index" --log-level warning \
      --database-url "$url/marketplace-link-$run?sslmode=disable" --identity-url "$urls_identity" --organization-url "$urls_organization" \
      --aws-marketplace-endpoint http://127.0.0.1:17199 --service-secret "$secret" --registrations-per-minute 100000 & pids+=($!)
  done
  for index in $(seq 0 $((replicas - 1))); do
    for port in $((base + index)) $((base + 10 + index)) $((base + 20 + index)); do wait_ready $port; done
  done
  python3 Tools/bench/journey_rate.py --identity "$urls_identity" --organization "$urls_organization" --link "$urls_link" \
    --simulator http://127.0.0.1:17199 --maildrop "$work/$run/maildrop" --buyers "$buyers" --workers 8 --seconds "$seconds"
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}

rows=()
for round in $(seq "$rounds"); do
  one=$(round_with 1 "r${round}a")
  two=$(round_with 2 "r${round}b")
  printf 'round %s:\n  one replica each:   %s\n  two replicas each:  %s\n' "$round" "$one" "$two"
  rows+=("$(echo "$one" | head -1 | awk '{print $8}') $(echo "$two" | head -1 | awk '{print $8}')")
done
printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin if line.strip()]
print(f'median journeys/s: one replica {statistics.median(r[0] for r in rows):.2f}, two replicas {statistics.median(r[1] for r in rows):.2f}')
print(f'ratio two / one: median {100 * statistics.median(r[1] / r[0] for r in rows):.1f}%')"
