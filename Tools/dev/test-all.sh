#!/usr/bin/env bash
# Runs every test: installs what the tests need, builds, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/../.."
Tools/dev/install-packages.sh test
swift build --build-tests
swift test --skip-build "$@"
