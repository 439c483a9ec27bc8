#!/usr/bin/env bash
# organization benchmark (release builds): CheckAdmin, the hot path of binding and of every
# admin-gated page, called with a service credential, vs Health/Check on the same server, same
# h2load settings, alternating rounds. Target: >= 60%.
#   Tools/bench/organization.sh [requests] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-100000}
rounds=${2:-5}
Tools/dev/install-packages.sh test >/dev/null
swift build -c release --product identity >/dev/null
swift build -c release --product organization >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source Tools/bench/lib.sh
secret=bench-secret
digest=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)

"$bin/identity" --port 17121 --data-dir "$work/identity" --log-level warning --scrypt-log-n 12 &
"$bin/organization" --port 17122 --data-dir "$work/organization" --log-level warning \
  --identity-url http://127.0.0.1:17121 --trusted-services "marketplace-link=$digest" &
wait_ready 17121
wait_ready 17122
login=$(signed_up_user 17121 "$work/identity" admin@example.com "organization passphrase")
access=$(echo "$login" | json_field '["accessToken"]')
user=$(echo "$login" | json_field '["user"]["id"]')
organization=$(rpc http://127.0.0.1:17122/organization.v1.OrganizationService/CreateOrganization \
  -H "authorization: Bearer $access" -d '{"name":"Bench Co"}' | json_field '["id"]')
printf '{"organizationId":"%s","userId":"%s"}' "$organization" "$user" > "$work/check.json"
printf '{}' > "$work/empty.json"
check=(-d "$work/check.json" -H 'content-type: application/json' -H "x-service-credential: marketplace-link:$secret"
       http://127.0.0.1:17122/organization.v1.OrganizationService/CheckAdmin)
health=(-d "$work/empty.json" -H 'content-type: application/json' http://127.0.0.1:17122/grpc.health.v1.Health/Check)
echo "CheckAdmin answers: $(rpc http://127.0.0.1:17122/organization.v1.OrganizationService/CheckAdmin \
  -H "x-service-credential: marketplace-link:$secret" -d @"$work/check.json")"
echo "== CheckAdmin vs Health/Check: h2load -n $requests -c 8 -m 32, $rounds alternating rounds"
compare_rounds CheckAdmin Health/Check "$rounds" "-n $requests -c 8 -m 32" check health
