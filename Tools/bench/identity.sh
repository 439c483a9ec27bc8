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
clients=8
streams=32
Tools/dev/install-packages.sh test >/dev/null
swift build -c release --product identity >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=17111
base=http://127.0.0.1:$port
rpc=$base/identity.v1.IdentityService

"$bin/identity" --port $port --data-dir "$work/identity" --log-level warning &
for _ in $(seq 100); do curl -sf -o /dev/null $base/healthz && break; sleep 0.1; done

# A verified user with a session.
email=bench@example.com
password="measured passphrase"
call() { curl -sS --http2-prior-knowledge -H 'content-type: application/json' "$@"; }
call -f -o /dev/null "$rpc/Register" -d "{\"email\":\"$email\",\"password\":\"$password\",\"fullName\":\"Bench\"}"
for _ in $(seq 100); do ls "$work/identity/maildrop/"*.eml >/dev/null 2>&1 && break; sleep 0.1; done
token=$(grep -ho 'token=[A-Za-z0-9_-]*' "$work/identity/maildrop/"*.eml | head -1 | cut -d= -f2)
call -o /dev/null "$rpc/VerifyEmail" -d "{\"token\":\"$token\"}"
printf '{"email":"%s","password":"%s"}' "$email" "$password" > "$work/login.json"
access=$(call "$rpc/Login" -d @"$work/login.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
printf '{}' > "$work/empty.json"

percentile99() { python3 -c "
import sys
values = sorted(int(line.split()[2]) for line in open(sys.argv[1]) if line.strip())
print(f'{values[int(len(values) * 0.99) - 1] / 1000:.2f}')" "$1"; }
measure() {  # name, h2load arguments...: prints "req/s failed"
  local name=$1; shift
  h2load "$@" --log-file "$work/$name.log" > "$work/$name.out"
  python3 - "$work/$name.out" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
rps = float(re.search(r"finished in [^,]+, ([0-9.]+) req/s", out).group(1))
failed = re.search(r"(\d+) failed", out).group(1)
print(f"{rps:.0f} {failed}")
PY
}
json=(-d "$work/empty.json" -H 'content-type: application/json')
health=("${json[@]}" "$base/grpc.health.v1.Health/Check")
getme=("${json[@]}" -H "authorization: Bearer $access" "$rpc/GetMe")

echo "== 1. GetMe vs Health/Check: h2load -n $requests -c $clients -m $streams, $rounds alternating rounds"
h2load -n 20000 -c $clients -m $streams "${getme[@]}" >/dev/null
rows=()
for round in $(seq "$rounds"); do
  read -r ours ours_failed < <(measure getme -n "$requests" -c $clients -m $streams "${getme[@]}")
  read -r ref ref_failed < <(measure health -n "$requests" -c $clients -m $streams "${health[@]}")
  printf 'round %s: GetMe %s req/s (%s failed), Health/Check %s req/s (%s failed)\n' "$round" "$ours" "$ours_failed" "$ref" "$ref_failed"
  rows+=("$ours $ref")
done
printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin if line.strip()]
ratios = [a / b for a, b in rows]
print(f'median GetMe {statistics.median(r[0] for r in rows):.0f} req/s, Health/Check {statistics.median(r[1] for r in rows):.0f} req/s')
print(f'ratio GetMe / Health/Check: median {100 * statistics.median(ratios):.1f}% (range {100 * min(ratios):.1f}%-{100 * max(ratios):.1f}%)')"

echo "== 2. scrypt (N=2^17, r=8, p=1) through Login: h2load -n 60 -c 4 -m 1"
login=(-d "$work/login.json" -H 'content-type: application/json' "$rpc/Login")
read -r rate failed < <(measure login -n 60 -c 4 -m 1 "${login[@]}")
echo "logins (= password hashes checked) per second: $rate ($failed failed); cores: $(nproc)"

echo "== 3. Health/Check p99 at rest and during a ${flood_seconds}s login flood (h2load -c 32 -m 4 on Login)"
measure rest -n 20000 -c 2 -m 1 "${health[@]}" >/dev/null
echo "at rest: p99 $(percentile99 "$work/rest.log") ms"
h2load -D "$flood_seconds" -c 32 -m 4 "${login[@]}" > "$work/flood.out" 2>&1 &
flood=$!
sleep 2
measure busy -n 20000 -c 2 -m 1 "${health[@]}" >/dev/null
echo "during the flood: p99 $(percentile99 "$work/busy.log") ms ($(grep -o '[0-9]* failed' "$work/busy.out"))"
wait $flood || true
grep -E "requests:|finished in" "$work/flood.out" | sed 's/^/flood: /'
