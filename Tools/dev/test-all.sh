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
swift test --skip-build --filter ExecutableTests 2>&1 | tee -a "$log" || status=1
swift test --skip-build --filter HostileClientTests 2>&1 | tee -a "$log" || status=1
# The console in headless Chromium: five processes and a browser, on their own.
swift test --skip-build --filter ConsoleBrowserTests 2>&1 | tee -a "$log" || status=1
# Tracing: the journey exported to an OTLP receiver, and call latencies while the collector stalls.
swift test --skip-build --filter TracingTests 2>&1 | tee -a "$log" || status=1
# compose/compose.yaml's default profile run as written, with the journey in Chromium.
swift test --skip-build --filter ComposeTests 2>&1 | tee -a "$log" || status=1
# identity's reset-timing comparison measures latency; scrypt in the services' pass skews it.
swift test --skip-build --filter passwordResetRequestsTakeTheSameTime 2>&1 | tee -a "$log" || status=1
# The AWS stand-in's suite (processes, boto3) apart from the engine's timing-sensitive tests.
swift test --skip-build --filter SimulatorTests 2>&1 | tee -a "$log" || status=1
# Two replicas of each service on PostgreSQL servers of their own: many processes, on their own.
swift test --skip-build --filter "ReplicatedOrganizationTests|ReplicatedMarketplaceLinkTests|ReplicatedIdentityTests|RollingRestartTests" 2>&1 \
  | tee -a "$log" || status=1
# The load and fault suite's minute on each backend (Tools/load): every process, faults, invariants.
swift test --skip-build --filter LoadSuiteTests 2>&1 | tee -a "$log" || status=1
alone="LoadSuiteTests|ExecutableTests|HostileClientTests|ConsoleBrowserTests|TracingTests|ComposeTests|passwordResetRequestsTakeTheSameTime|SimulatorTests"
alone+="|ReplicatedOrganizationTests|ReplicatedMarketplaceLinkTests|ReplicatedIdentityTests|RollingRestartTests"
services="IdentityServiceTests|OrganizationServiceTests|MarketplaceLinkServiceTests|IdentityProcessTests|OrganizationProcessTests|JourneyProcessTests|ConsoleProcessTests"
swift test --skip-build --skip "$alone" --skip "$services" 2>&1 | tee -a "$log" || status=1
# One service's suites at a time: each runs its cases on both backends at once, and several
# at once (scrypt, SMTP servers, PostgreSQL servers, processes) would starve the timing in them.
for suites in "IdentityServiceTests|IdentityProcessTests" "OrganizationServiceTests|OrganizationProcessTests" \
  "MarketplaceLinkServiceTests|JourneyProcessTests|ConsoleProcessTests"; do
  swift test --skip-build --filter "$suites" --skip "$alone" 2>&1 | tee -a "$log" || status=1
done
passed=$(grep -cE '^✔ Test .* passed after' "$log" || true)
failed=$(grep -cE '^✘ Test .* failed after' "$log" || true)
echo "tests: $passed passed, $failed failed"
exit $status
