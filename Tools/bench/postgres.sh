#!/usr/bin/env bash
# PostgreSQL against SQLite (release builds), in the same run: identity, organization and
# marketplace-link twice each, one set on SQLite files, one on a PostgreSQL 15 started here (as the
# `postgres` user, loopback, its own directory, default durability: fsync and synchronous
# commit on, as SQLite's synchronous=FULL). Alternating h2load rounds, same settings:
#   GetMe               identity's hot path (the user cache; the token verified in process)
#   CheckAdmin          organization's hot path (served from its role cache)
#   GetBillingStatus    marketplace-link's hot path (the rendered page cache)
#   ListMyOrganizations a read that goes to the database on every call
#   Tools/bench/postgres.sh [requests] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-50000}
rounds=${2:-5}
Tools/dev/install-packages.sh test >/dev/null
for product in identity organization marketplace-link aws-marketplace-sim; do swift build -c release --product $product >/dev/null; done
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
source Tools/bench/lib.sh
secret=bench-link-secret
digest=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)

start_postgres 17150
for database in identity organization marketplace-link; do "$pg_bin/createdb" -h 127.0.0.1 -p 17150 -U postgres "$database"; done
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:17150"

"$bin/aws-marketplace-sim" --port 17149 --data-dir "$work/sim" --seed Tools/AWSMarketplaceSim/demo-seed.json \
  --notification-url "" --maildrop-dir "" --log-level warning &
"$bin/identity" --port 17141 --data-dir "$work/identity" --log-level warning --scrypt-log-n 12 &
"$bin/identity" --port 17146 --data-dir "$work/identity-postgres" --log-level warning --scrypt-log-n 12 \
  --database-url "postgres://postgres@127.0.0.1:17150/identity?sslmode=disable" &
# name organization-port link-port server-url (sqlite: for the files)
start_pair() {
  local organization_url=sqlite: link_url=sqlite:
  if [ "$4" != sqlite: ]; then organization_url="$4/organization?sslmode=disable"; link_url="$4/marketplace-link?sslmode=disable"; fi
  "$bin/organization" --port "$2" --data-dir "$work/$1-organization" --database-url "$organization_url" --log-level warning \
    --identity-url http://127.0.0.1:17141 --trusted-services "marketplace-link=$digest" &
  AWS_ACCESS_KEY_ID=AKIDLOCALSELLER000001 AWS_SECRET_ACCESS_KEY=local-simulator-seller-secret-not-for-aws \
    "$bin/marketplace-link" --port "$3" --data-dir "$work/$1-link" --database-url "$link_url" --log-level warning \
    --identity-url http://127.0.0.1:17141 --organization-url "http://127.0.0.1:$2" \
    --aws-marketplace-endpoint http://127.0.0.1:17149 --service-secret "$secret" &
}
start_pair sqlite 17142 17143 sqlite:
start_pair postgres 17144 17145 "postgres://postgres@127.0.0.1:17150"
for port in 17141 17142 17143 17144 17145 17146; do wait_ready $port; done
for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:17149/SimpleNotificationService-simulator.pem && break; sleep 0.1; done
login=$(signed_up_user 17141 "$work/identity" admin@example.com "benchmark passphrase")
access=$(echo "$login" | json_field '["accessToken"]')
user=$(echo "$login" | json_field '["user"]["id"]')

# The journey's binding on one pair: an organization, "Set up your account", the claim bound. Prints the organization's id.
bind_on() {
  local organization customer token claim sim=http://127.0.0.1:17149
  organization=$(rpc "http://127.0.0.1:$1/organization.v1.OrganizationService/CreateOrganization" \
    -H "authorization: Bearer $access" -d '{"name":"Bench Co"}' | json_field '["id"]')
  customer=$(curl -s -o /dev/null -w '%{redirect_url}' -d as=buyer-admin "$sim/buyer/offers/offer-demo-1/subscribe" | sed 's|.*/subscriptions/||; s|?.*||')
  token=$(curl -s -d as=buyer-admin "$sim/buyer/subscriptions/$customer/setup" | grep -o 'name="x-amzn-marketplace-token" value="[^"]*"' | sed 's/.*value="//; s/"$//')
  claim=$(rpc "http://127.0.0.1:$2/marketplacelink.v1.MarketplaceLinkService/AcceptRegistration" \
    -d "{\"registrationToken\":\"$token\"}" | json_field '["claim"]')
  rpc "http://127.0.0.1:$2/marketplacelink.v1.MarketplaceLinkService/BindOrganization" -H "authorization: Bearer $access" \
    -d "{\"claim\":\"$claim\",\"organizationId\":\"$organization\"}" -o /dev/null
  echo "$organization"
}
sqlite_organization=$(bind_on 17142 17143)
postgres_organization=$(bind_on 17144 17145)
for name in sqlite postgres; do
  organization_var=${name}_organization
  printf '{"organizationId":"%s","userId":"%s"}' "${!organization_var}" "$user" > "$work/$name-check.json"
  printf '{"organizationId":"%s"}' "${!organization_var}" > "$work/$name-status.json"
done
printf '{}' > "$work/empty.json"
postgres_login=$(signed_up_user 17146 "$work/identity-postgres" admin@example.com "benchmark passphrase")
postgres_access=$(echo "$postgres_login" | json_field '["accessToken"]')
echo "GetMe on PostgreSQL answers: $(rpc http://127.0.0.1:17146/identity.v1.IdentityService/GetMe -H "authorization: Bearer $postgres_access" -d '{}')"
echo "GetBillingStatus on PostgreSQL answers: $(rpc http://127.0.0.1:17145/marketplacelink.v1.MarketplaceLinkService/GetBillingStatus \
  -H "authorization: Bearer $access" -d @"$work/postgres-status.json")"
credential=(-H 'content-type: application/json' -H "x-service-credential: marketplace-link:$secret")
bearer=(-H 'content-type: application/json' -H "authorization: Bearer $access")
check_pg=(-d "$work/postgres-check.json" "${credential[@]}" http://127.0.0.1:17144/organization.v1.OrganizationService/CheckAdmin)
check_sqlite=(-d "$work/sqlite-check.json" "${credential[@]}" http://127.0.0.1:17142/organization.v1.OrganizationService/CheckAdmin)
status_pg=(-d "$work/postgres-status.json" "${bearer[@]}" http://127.0.0.1:17145/marketplacelink.v1.MarketplaceLinkService/GetBillingStatus)
status_sqlite=(-d "$work/sqlite-status.json" "${bearer[@]}" http://127.0.0.1:17143/marketplacelink.v1.MarketplaceLinkService/GetBillingStatus)
me_pg=(-d "$work/empty.json" -H 'content-type: application/json' -H "authorization: Bearer $postgres_access"
       http://127.0.0.1:17146/identity.v1.IdentityService/GetMe)
me_sqlite=(-d "$work/empty.json" "${bearer[@]}" http://127.0.0.1:17141/identity.v1.IdentityService/GetMe)
list_pg=(-d "$work/empty.json" "${bearer[@]}" http://127.0.0.1:17144/organization.v1.OrganizationService/ListMyOrganizations)
list_sqlite=(-d "$work/empty.json" "${bearer[@]}" http://127.0.0.1:17142/organization.v1.OrganizationService/ListMyOrganizations)
echo "== h2load -n $requests -c 8 -m 32, $rounds alternating rounds each"
compare_rounds "GetMe/PostgreSQL" "GetMe/SQLite" "$rounds" "-n $requests -c 8 -m 32" me_pg me_sqlite
compare_rounds "CheckAdmin/PostgreSQL" "CheckAdmin/SQLite" "$rounds" "-n $requests -c 8 -m 32" check_pg check_sqlite
compare_rounds "GetBillingStatus/PostgreSQL" "GetBillingStatus/SQLite" "$rounds" "-n $requests -c 8 -m 32" status_pg status_sqlite
compare_rounds "ListMyOrganizations/PostgreSQL" "ListMyOrganizations/SQLite" "$rounds" "-n $requests -c 8 -m 32" list_pg list_sqlite
