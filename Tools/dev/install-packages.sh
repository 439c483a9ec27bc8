#!/usr/bin/env bash
# Installs the Debian and Python packages this project needs, only those missing.
#   install-packages.sh run    what building and running the services needs
#   install-packages.sh test   that, plus the third-party peers the tests talk to
set -euo pipefail
mode=${1:-run}

apt_packages=(pkg-config libnghttp2-dev libsqlite3-dev zlib1g-dev)
python_modules=()
if [ "$mode" = test ]; then
  # chromium and chromium-driver: the console's browser tests (driven by Selenium).
  # postgresql: the PostgreSQL backend's tests start their own server (Tests/TestSupport/PostgresServer.swift).
  # gdb and procps: test-all.sh prints a hung pass's threads (gdb) and finds its processes (pgrep, pkill).
  apt_packages+=(nghttp2-client nghttp2-server curl openssl gzip sqlite3 python3 python3-pip chromium chromium-driver postgresql
                 gdb procps)
  # yaml and check_jsonschema: compose/compose.yaml is read (ComposeTests) and checked against the Compose Specification.
  # opentelemetry.proto: the OTLP receiver the tracing tests export to (Tests/Fixtures/otlp_receiver.py).
  python_modules+=("h2:h2" "httpx:httpx[http2]" "boto3:boto3" "aiosmtpd:aiosmtpd" "cryptography:cryptography" "selenium:selenium"
                  "yaml:pyyaml" "check_jsonschema:check-jsonschema" "opentelemetry.proto:opentelemetry-proto")
fi

missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

for entry in "${python_modules[@]}"; do
  module=${entry%%:*}
  requirement=${entry#*:}
  if ! python3 -c "import $module" 2>/dev/null; then
    echo "installing python package: $requirement"
    python3 -m pip install --quiet "$requirement" 2>/dev/null \
      || python3 -m pip install --quiet --break-system-packages "$requirement"
  fi
done
