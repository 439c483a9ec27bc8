#!/usr/bin/env bash
# Console benchmark (release builds): the billing page of a signed-in ADMIN whose organization has
# an ACTIVE AWS Marketplace link, vs a static page of the same size served by the same console
# (--reference-page-bytes), over HTTP/1.1 keep-alive (h2load --h1, no pipelining), alternating
# rounds; requests per second and p99 of each. Target: >= 50%. The whole system runs; the link
# is made through the journey first.
#   Tools/bench/console.sh [requests] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-50000}
rounds=${2:-5}
Tools/dev/install-packages.sh test >/dev/null
for product in identity organization marketplace-link console aws-marketplace-sim; do swift build -c release --product $product >/dev/null; done
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source Tools/bench/lib.sh
for name in identity organization link console; do printf -v "secret_$name" '%s' "bench-$name-$RANDOM$RANDOM"; done
digest() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
trusted="identity=$(digest "$secret_identity"),organization=$(digest "$secret_organization"),marketplace-link=$(digest "$secret_link"),console=$(digest "$secret_console")"

"$bin/aws-marketplace-sim" --port 17149 --data-dir "$work/sim" --seed Tools/AWSMarketplaceSim/demo-seed.json \
  --notification-url "" --maildrop-dir "" --log-level warning &
"$bin/identity" --port 17141 --data-dir "$work/identity" --log-level warning --scrypt-log-n 12 \
  --service-secret "$secret_identity" --trusted-services "$trusted" &
"$bin/organization" --port 17142 --data-dir "$work/organization" --log-level warning --identity-url http://127.0.0.1:17141 \
  --service-secret "$secret_organization" --trusted-services "$trusted" &
AWS_ACCESS_KEY_ID=AKIDLOCALSELLER000001 AWS_SECRET_ACCESS_KEY=local-simulator-seller-secret-not-for-aws \
  "$bin/marketplace-link" --port 17143 --data-dir "$work/link" --log-level warning --identity-url http://127.0.0.1:17141 \
  --organization-url http://127.0.0.1:17142 --aws-marketplace-endpoint http://127.0.0.1:17149 \
  --service-secret "$secret_link" --trusted-services "$trusted" &
for port in 17141 17142 17143; do wait_ready $port; done
for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:17149/healthz && break; sleep 0.1; done

# The journey: subscribe and "Set up your account" on the simulator, sign up, create an organization, bind.
link_through_journey 17149 17141 "$work/identity" 17142 17143
session=$(echo "$login" | json_field '["sessionToken"]')

# The console's session cookie is identity's session token: the buyer as signed in by the console.
start_console() {  # extra arguments
  "$bin/console" --port 17140 --log-level warning --identity-url http://127.0.0.1:17141 --organization-url http://127.0.0.1:17142 \
    --marketplace-link-url http://127.0.0.1:17143 --service-secret "$secret_console" "$@" &
  console_pid=$!
  wait_ready 17140
}
start_console
page=http://127.0.0.1:17140/organizations/$organization/billing
bytes=$(curl -sf -H "cookie: session=$session" "$page" | wc -c)
curl -sf -H "cookie: session=$session" "$page" | grep -q 'id="state">ACTIVE' || { echo "the billing page does not show ACTIVE" >&2; exit 1; }
kill "$console_pid"; wait "$console_pid" 2>/dev/null || true
start_console --reference-page-bytes "$bytes"
echo "billing page: $bytes bytes; reference: $(curl -sf http://127.0.0.1:17140/_bench/reference | wc -c) bytes"

billing=(--h1 -H "cookie: session=$session" "$page")
reference=(--h1 http://127.0.0.1:17140/_bench/reference)
echo "== billing page vs static page of the same size: h2load --h1 -n $requests -c 16 -m 1, $rounds alternating rounds"
compare_rounds billing-page static-page "$rounds" "-n $requests -c 16 -m 1" billing reference
echo "p99 of the last round: billing page $(percentile99 a) ms, static page $(percentile99 b) ms"
