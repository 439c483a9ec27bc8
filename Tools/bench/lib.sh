# Shared pieces of the benchmark scripts (sourced, not run). Expects $work (a temporary directory).

# Waits until a service answers /healthz on port $1.
wait_ready() {
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$1/healthz" && return 0; sleep 0.1; done
  echo "port $1 did not become ready" >&2; return 1
}

# Connect call: rpc URL [curl arguments...]
rpc() { local url=$1; shift; curl -sS -f --http2-prior-knowledge -H 'content-type: application/json' "$@" "$url"; }

# Registers and verifies a user with the identity on port $1 (data in $2), signs in, and prints
# the Login response's JSON.
signed_up_user() {
  local port=$1 data=$2 email=$3 password=$4 base="http://127.0.0.1:$1/identity.v1.IdentityService"
  rpc "$base/Register" -o /dev/null -d "{\"email\":\"$email\",\"password\":\"$password\",\"fullName\":\"Bench\"}"
  local token=""
  for _ in $(seq 100); do
    token=$(grep -ho 'token=[A-Za-z0-9_-]*' "$data/maildrop/"*.eml 2>/dev/null | head -1 | cut -d= -f2) || true
    [ -n "$token" ] && break; sleep 0.1
  done
  rpc "$base/VerifyEmail" -o /dev/null -d "{\"token\":\"$token\"}"
  rpc "$base/Login" -d "{\"email\":\"$email\",\"password\":\"$password\"}"
}

# JSON field $1 of standard input.
json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

# h2load with a per-request log; prints "req/s failed", where failed counts every request not
# answered 2xx (h2load itself counts a 4xx as a success). Name, h2load arguments...
measure() {
  local name=$1; shift
  h2load "$@" --log-file "$work/$name.log" > "$work/$name.out"
  python3 - "$work/$name.out" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
rps = float(re.search(r"finished in [^,]+, ([0-9.]+) req/s", out).group(1))
total = int(re.search(r"requests: (\d+) total", out).group(1))
ok = int(re.search(r"status codes: (\d+) 2xx", out).group(1))
print(f"{rps:.0f} {total - ok}")
PY
}

# p99 latency in ms of the per-request log of measurement $1.
percentile99() { python3 -c "
import sys
values = sorted(int(line.split()[2]) for line in open(sys.argv[1]) if line.strip())
print(f'{values[int(len(values) * 0.99) - 1] / 1000:.2f}')" "$work/$1.log"; }

# Alternating rounds of two h2load targets with the same settings; prints each round, the medians
# and the ratio. Arguments: label-a label-b rounds "h2load settings" then the two target argument
# arrays passed by name (bash namerefs).
compare_rounds() {
  local label_a=$1 label_b=$2 rounds=$3 settings=$4
  local -n target_a=$5 target_b=$6
  # shellcheck disable=SC2086
  h2load $settings "${target_a[@]}" >/dev/null   # warm-up
  local rows=() a a_failed b b_failed
  for round in $(seq "$rounds"); do
    # shellcheck disable=SC2086
    read -r a a_failed < <(measure a $settings "${target_a[@]}")
    # shellcheck disable=SC2086
    read -r b b_failed < <(measure b $settings "${target_b[@]}")
    printf 'round %s: %s %s req/s (%s failed), %s %s req/s (%s failed)\n' "$round" "$label_a" "$a" "$a_failed" "$label_b" "$b" "$b_failed"
    rows+=("$a $b")
  done
  printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin if line.strip()]
ratios = [a / b for a, b in rows]
print(f'median $label_a {statistics.median(r[0] for r in rows):.0f} req/s, $label_b {statistics.median(r[1] for r in rows):.0f} req/s')
print(f'ratio $label_a / $label_b: median {100 * statistics.median(ratios):.1f}% (range {100 * min(ratios):.1f}%-{100 * max(ratios):.1f}%)')"
}

# The journey over RPC with the demo seed: subscribe and "Set up your account" on the simulator on
# port $1, sign up on identity's port $2 (data in $3), create an organization on organization's
# port $4 and bind the contract to it on marketplace-link's port $5. Sets `login` (Login's JSON),
# `access` (its access token) and `organization` (the new organization's id).
link_through_journey() {
  local sim=http://127.0.0.1:$1 customer token claim
  customer=$(curl -s -o /dev/null -w '%{redirect_url}' -d as=buyer-admin "$sim/buyer/offers/offer-demo-1/subscribe" | sed 's|.*/subscriptions/||; s|?.*||')
  token=$(curl -s -d as=buyer-admin "$sim/buyer/subscriptions/$customer/setup" | grep -o 'name="x-amzn-marketplace-token" value="[^"]*"' | sed 's/.*value="//; s/"$//')
  login=$(signed_up_user "$2" "$3" admin@example.com "linking passphrase")
  access=$(echo "$login" | json_field '["accessToken"]')
  organization=$(rpc "http://127.0.0.1:$4/organization.v1.OrganizationService/CreateOrganization" \
    -H "authorization: Bearer $access" -d '{"name":"Bench Co"}' | json_field '["id"]')
  claim=$(rpc "http://127.0.0.1:$5/marketplacelink.v1.MarketplaceLinkService/AcceptRegistration" \
    -d "{\"registrationToken\":\"$token\"}" | json_field '["claim"]')
  rpc "http://127.0.0.1:$5/marketplacelink.v1.MarketplaceLinkService/BindOrganization" -H "authorization: Bearer $access" \
    -d "{\"claim\":\"$claim\",\"organizationId\":\"$organization\"}" -o /dev/null
}

# Starts a PostgreSQL of its own on port $1 (as the `postgres` user when run as root, in
# $work/pg, default durability) and waits for it; the caller's EXIT trap stops it with its jobs.
# Sets pg_bin (the server's programs).
start_postgres() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  local as_postgres=()
  [ "$(id -u)" -eq 0 ] && as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  chmod 755 "$work"
  mkdir -p "$work/pg" && chown postgres:postgres "$work/pg" 2>/dev/null || true
  "${as_postgres[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 >/dev/null
  "${as_postgres[@]}" "$pg_bin/postgres" -D "$work/pg/data" -p "$1" -c listen_addresses=127.0.0.1 -k "$work/pg" \
    -c max_connections=300 >"$work/pg.log" 2>&1 &
  for _ in $(seq 100); do "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$1" && return 0; sleep 0.1; done
  echo "PostgreSQL did not start on port $1" >&2; return 1
}


# The system marketplace-link's benchmarks measure (release builds in $bin, data in $work): the
# simulator with the demo seed on 17139, identity on 17131, organization on 17132 and
# marketplace-link on 17133 (with the extra arguments given), then an ACTIVE link made through the
# journey (sets `login`, `access` and `organization`, as link_through_journey does).
start_linked_system() {
  local secret=bench-link-secret digest
  digest=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)
  "$bin/aws-marketplace-sim" --port 17139 --data-dir "$work/sim" --seed Tools/AWSMarketplaceSim/demo-seed.json \
    --notification-url "" --maildrop-dir "" --log-level warning &
  "$bin/identity" --port 17131 --data-dir "$work/identity" --log-level warning --scrypt-log-n 12 &
  "$bin/organization" --port 17132 --data-dir "$work/organization" --log-level warning \
    --identity-url http://127.0.0.1:17131 --trusted-services "marketplace-link=$digest" &
  AWS_ACCESS_KEY_ID=AKIDLOCALSELLER000001 AWS_SECRET_ACCESS_KEY=local-simulator-seller-secret-not-for-aws \
    "$bin/marketplace-link" --port 17133 --data-dir "$work/link" --log-level warning --identity-url http://127.0.0.1:17131 \
    --organization-url http://127.0.0.1:17132 --aws-marketplace-endpoint http://127.0.0.1:17139 --service-secret "$secret" "$@" &
  for port in 17131 17132 17133; do wait_ready $port; done
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:17139/SimpleNotificationService-simulator.pem && break; sleep 0.1; done
  # The journey: subscribe and "Set up your account" on the simulator, sign up, create an organization, bind.
  link_through_journey 17139 17131 "$work/identity" 17132 17133
}
