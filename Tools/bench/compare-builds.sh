#!/usr/bin/env bash
# Two builds of the system side by side in one run, for a change that must not cost throughput:
# GetBillingStatus (marketplace-link, an ACTIVE link) and CheckAdmin (organization, a service
# credential) of the build in AFTER_BIN against the same call of the build in BEFORE_BIN, same
# h2load settings, alternating rounds. Each build runs its own simulator, identity, organization
# and marketplace-link, linked through the journey first.
#   Tools/bench/compare-builds.sh BEFORE_BIN AFTER_BIN [requests] [rounds]
# e.g. git worktree add /tmp/before <rev> && (cd /tmp/before && swift build -c release) and
#      swift build -c release, then: Tools/bench/compare-builds.sh /tmp/before/.build/release .build/release
set -euo pipefail
cd "$(dirname "$0")/../.."
before_bin=$(realpath "$1")
after_bin=$(realpath "$2")
requests=${3:-100000}
rounds=${4:-5}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source Tools/bench/lib.sh
secret=bench-link-secret
digest=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)

# start_system BIN FIRST_PORT NAME: the simulator on FIRST_PORT+9, identity +1, organization +2,
# marketplace-link +3; links an organization and writes NAME's request bodies to $work.
start_system() {
  local bin=$1 base=$2 name=$3
  local sim=$((base + 9)) identity=$((base + 1)) org=$((base + 2)) link=$((base + 3))
  "$bin/aws-marketplace-sim" --port $sim --data-dir "$work/$name/sim" --seed Tools/AWSMarketplaceSim/demo-seed.json \
    --notification-url "" --maildrop-dir "" --log-level warning &
  "$bin/identity" --port $identity --data-dir "$work/$name/identity" --log-level warning --scrypt-log-n 12 &
  "$bin/organization" --port $org --data-dir "$work/$name/organization" --log-level warning \
    --identity-url http://127.0.0.1:$identity --trusted-services "marketplace-link=$digest" &
  AWS_ACCESS_KEY_ID=AKIDLOCALSELLER000001 AWS_SECRET_ACCESS_KEY=local-simulator-seller-secret-not-for-aws \
    "$bin/marketplace-link" --port $link --data-dir "$work/$name/link" --log-level warning --identity-url http://127.0.0.1:$identity \
    --organization-url http://127.0.0.1:$org --aws-marketplace-endpoint http://127.0.0.1:$sim --service-secret "$secret" &
  for port in $identity $org $link; do wait_ready $port; done
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$sim/SimpleNotificationService-simulator.pem && break; sleep 0.1; done
  link_through_journey $sim $identity "$work/$name/identity" $org $link
  local user
  user=$(echo "$login" | json_field '["user"]["id"]')
  printf '{"organizationId":"%s"}' "$organization" > "$work/$name-status.json"
  printf '{"organizationId":"%s","userId":"%s"}' "$organization" "$user" > "$work/$name-check.json"
  echo "$name GetBillingStatus answers: $(rpc http://127.0.0.1:$link/marketplacelink.v1.MarketplaceLinkService/GetBillingStatus \
    -H "authorization: Bearer $access" -d @"$work/$name-status.json")"
  echo "$name CheckAdmin answers: $(rpc http://127.0.0.1:$org/organization.v1.OrganizationService/CheckAdmin \
    -H "x-service-credential: marketplace-link:$secret" -d @"$work/$name-check.json")"
  eval "${name}_access=\$access"
}

start_system "$before_bin" 17150 before
start_system "$after_bin" 17160 after

status_before=(-d "$work/before-status.json" -H 'content-type: application/json' -H "authorization: Bearer $before_access"
               http://127.0.0.1:17153/marketplacelink.v1.MarketplaceLinkService/GetBillingStatus)
status_after=(-d "$work/after-status.json" -H 'content-type: application/json' -H "authorization: Bearer $after_access"
              http://127.0.0.1:17163/marketplacelink.v1.MarketplaceLinkService/GetBillingStatus)
check_before=(-d "$work/before-check.json" -H 'content-type: application/json' -H "x-service-credential: marketplace-link:$secret"
              http://127.0.0.1:17152/organization.v1.OrganizationService/CheckAdmin)
check_after=(-d "$work/after-check.json" -H 'content-type: application/json' -H "x-service-credential: marketplace-link:$secret"
             http://127.0.0.1:17162/organization.v1.OrganizationService/CheckAdmin)
echo "== GetBillingStatus, after vs before: h2load -n $requests -c 8 -m 32, $rounds alternating rounds"
compare_rounds GetBillingStatus-after GetBillingStatus-before "$rounds" "-n $requests -c 8 -m 32" status_after status_before
echo "== CheckAdmin, after vs before: h2load -n $requests -c 8 -m 32, $rounds alternating rounds"
compare_rounds CheckAdmin-after CheckAdmin-before "$rounds" "-n $requests -c 8 -m 32" check_after check_before
