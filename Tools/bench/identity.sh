#!/usr/bin/env bash
# identity benchmark, on a release build with the production scrypt cost (N=2^17, r=8, p=1):
#   1. GetMe with a valid access token vs Health/Check, same h2load settings, alternating rounds;
#      prints the medians and their ratio.
#   2. scrypt hashes per second: successful Logins per second (each checks one password hash).
#   3. Health/Check p99 latency at rest, then while a login flood runs beside it.
#   Tools/bench/identity.sh [requests] [rounds] [flood-seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-100000}
rounds=${2:-5}
flood_seconds=${3:-20}
Tools/dev/install-packages.sh test >/dev/null
swift build -c release --product identity >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source Tools/bench/lib.sh
port=17111
base=http://127.0.0.1:$port

"$bin/identity" --port $port --data-dir "$work/identity" --log-level warning &
wait_ready $port
email=bench@example.com
password="measured passphrase"
access=$(signed_up_user $port "$work/identity" $email "$password" | json_field '["accessToken"]')
printf '{}' > "$work/empty.json"
printf '{"email":"%s","password":"%s"}' "$email" "$password" > "$work/login.json"
json=(-d "$work/empty.json" -H 'content-type: application/json')
health=("${json[@]}" "$base/grpc.health.v1.Health/Check")
getme=("${json[@]}" -H "authorization: Bearer $access" "$base/identity.v1.IdentityService/GetMe")
login=(-d "$work/login.json" -H 'content-type: application/json' "$base/identity.v1.IdentityService/Login")

echo "== 1. GetMe vs Health/Check: h2load -n $requests -c 8 -m 32, $rounds alternating rounds"
compare_rounds GetMe Health/Check "$rounds" "-n $requests -c 8 -m 32" getme health

echo "== 2. scrypt (N=2^17, r=8, p=1) through Login: h2load -n 60 -c 4 -m 1"
read -r rate failed < <(measure login -n 60 -c 4 -m 1 "${login[@]}")
echo "logins (= password hashes checked) per second: $rate ($failed failed); cores: $(nproc)"

echo "== 3. Health/Check p99 at rest and during a ${flood_seconds}s login flood (h2load -c 32 -m 4 on Login)"
measure rest -n 20000 -c 2 -m 1 "${health[@]}" >/dev/null
echo "at rest: p99 $(percentile99 rest) ms"
h2load -D "$flood_seconds" -c 32 -m 4 "${login[@]}" > "$work/flood.out" 2>&1 &
flood=$!
sleep 2
measure busy -n 20000 -c 2 -m 1 "${health[@]}" >/dev/null
echo "during the flood: p99 $(percentile99 busy) ms ($(grep -o '[0-9]* failed' "$work/busy.out"))"
wait $flood || true
grep -E "requests:|finished in" "$work/flood.out" | sed 's/^/flood: /'
