#!/usr/bin/env bash
# marketplace-link benchmark (release builds): GetBillingStatus, the billing page's hot path,
# for an organization with an ACTIVE link, vs Health/Check on the same server, same h2load
# settings, alternating rounds. Target: >= 60%. The whole system runs: the simulator, identity,
# organization and marketplace-link; the link is made through the journey first.
#   Tools/bench/marketplace-link.sh [requests] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-100000}
rounds=${2:-5}
Tools/dev/install-packages.sh test >/dev/null
for product in identity organization marketplace-link aws-marketplace-sim; do swift build -c release --product $product >/dev/null; done
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source Tools/bench/lib.sh
start_linked_system
printf '{"organizationId":"%s"}' "$organization" > "$work/status.json"
printf '{}' > "$work/empty.json"
echo "GetBillingStatus answers: $(rpc http://127.0.0.1:17133/marketplacelink.v1.MarketplaceLinkService/GetBillingStatus \
  -H "authorization: Bearer $access" -d @"$work/status.json")"
status=(-d "$work/status.json" -H 'content-type: application/json' -H "authorization: Bearer $access"
        http://127.0.0.1:17133/marketplacelink.v1.MarketplaceLinkService/GetBillingStatus)
health=(-d "$work/empty.json" -H 'content-type: application/json' http://127.0.0.1:17133/grpc.health.v1.Health/Check)
echo "== GetBillingStatus vs Health/Check: h2load -n $requests -c 8 -m 32, $rounds alternating rounds"
compare_rounds GetBillingStatus Health/Check "$rounds" "-n $requests -c 8 -m 32" status health
