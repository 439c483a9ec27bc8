#!/usr/bin/env bash
# Runs every test: installs what the tests need, builds, then runs the suite in thirteen passes.
# The executables' suite and the hostile-client probes measure start-up time, memory and
# latency, so they run first, each on its own, then the browser tests; the
# services' suites (password hashing, real SMTP servers, several processes) run apart from the
# engine's timing-sensitive tests, so that neither slows the other down.
set -euo pipefail
cd "$(dirname "$0")/../.."
Tools/dev/install-packages.sh test
# The code's shape first: swift-format's lint (.swift-format) and every import declared in Package.swift.
swift format lint --strict -r Shared Services Tools Tests
Tools/dev/check-imports.py
swift build --build-tests
# The images' binaries (compose/Dockerfile's build stage): release, the Swift runtime linked in
# statically; then ldd must find nothing they need outside the runtime image's packages. The
# hostile-client tests measure the release organization built here (EndToEndTests/HostileClientTests).
compose/build-release.sh .build/compose-bin
compose/check-runtime.sh .build/compose-bin
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# Each pass runs in a session of its own. One still running after pass_limit seconds (the longest
# takes about 3 minutes) is hung: the test process's threads are printed (gdb), then every process
# of the pass is killed, and that pass fails while the others still run.
pass_limit=${PASS_LIMIT_SECONDS:-900}
session=""
trap '[ -z "$session" ] || pkill -KILL -s "$session" || true; exit 130' INT TERM
run_pass() {
  local started=$SECONDS
  setsid bash -o pipefail -c 'swift test --skip-build "$@" 2>&1 | tee -a "$0"' "$log" "$@" &
  session=$!
  while kill -0 "$session" 2>/dev/null; do
    if ((SECONDS - started > pass_limit)); then
      echo "HUNG: 'swift test $*' still running after ${pass_limit} s; its test process's threads follow, then it is killed"
      for pid in $(pgrep -s "$session" -f '\.xctest' || true); do
        timeout 120 gdb -p "$pid" -batch -ex 'thread apply all bt' 2>&1 | grep -E '^(Thread|#)' | head -n 600 || true
      done
      pkill -KILL -s "$session" || true
      echo "✘ Test pass 'swift test $*' failed after ${pass_limit} seconds: killed as hung" | tee -a "$log"
      break
    fi
    sleep 1
  done
  wait "$session" || status=1
  session=""
}
run_pass --filter ExecutableTests
run_pass --filter HostileClientTests
# The console in headless Chromium: five processes and a browser, on their own.
run_pass --filter ConsoleBrowserTests
# Tracing: the journey exported to an OTLP receiver, and call latencies while the collector stalls.
run_pass --filter TracingTests
# compose/compose.yaml's default profile run as written, with the journey in Chromium.
run_pass --filter ComposeTests
# identity's reset-timing comparison measures latency; scrypt in the services' pass skews it.
run_pass --filter passwordResetRequestsTakeTheSameTime
# The AWS stand-in's suite (processes, boto3) apart from the engine's timing-sensitive tests.
run_pass --filter SimulatorTests
# Two replicas of each service on PostgreSQL servers of their own: many processes, on their own.
run_pass --filter "ReplicatedOrganizationTests|ReplicatedMarketplaceLinkTests|ReplicatedIdentityTests|RollingRestartTests"
# The load and fault suite's minute on each backend (Tools/load): every process, faults, invariants.
run_pass --filter LoadSuiteTests
alone="LoadSuiteTests|ExecutableTests|HostileClientTests|ConsoleBrowserTests|TracingTests|ComposeTests|passwordResetRequestsTakeTheSameTime|SimulatorTests"
alone+="|ReplicatedOrganizationTests|ReplicatedMarketplaceLinkTests|ReplicatedIdentityTests|RollingRestartTests"
services="IdentityServiceTests|OrganizationServiceTests|MarketplaceLinkServiceTests|IdentityProcessTests|OrganizationProcessTests|JourneyProcessTests|ConsoleProcessTests"
run_pass --skip "$alone" --skip "$services"
# One service's suites at a time: each runs its cases on both backends at once, and several
# at once (scrypt, SMTP servers, PostgreSQL servers, processes) would starve the timing in them.
for suites in "IdentityServiceTests|IdentityProcessTests" "OrganizationServiceTests|OrganizationProcessTests" \
  "MarketplaceLinkServiceTests|JourneyProcessTests|ConsoleProcessTests"; do
  run_pass --filter "$suites" --skip "$alone"
done
passed=$(grep -cE '^✔ Test .* passed after' "$log" || true)
failed=$(grep -cE '^✘ Test .* failed after' "$log" || true)
echo "tests: $passed passed, $failed failed"
exit $status
