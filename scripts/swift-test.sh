#!/usr/bin/env bash
# Runs the test suite (arguments go to `swift test`) and, when it fails, repeats the failing
# tests and their assertions as the last lines printed: a CI log shown only by its tail
# would otherwise end in "Executed 415 tests, with 1 failure" and name nothing.
set -uo pipefail
log=$(mktemp "${TMPDIR:-/tmp}/portcullis-test.XXXXXX") || exit 1
trap 'rm -f "$log"' EXIT
# SWIFT may carry arguments of its own (make test SWIFT="swift --jobs 1").
# shellcheck disable=SC2086
${SWIFT:-swift} test "$@" 2>&1 | tee "$log"
status=$?
if [ "$status" != 0 ]; then
    echo
    echo "swift test failed (exit $status); what failed:"
    # XCTest prints an assertion as "<file>:<line>: error: <Suite.test> : <message>" and a
    # failed case as "Test Case '<Suite.test>' failed (<seconds> seconds)"; a test running a
    # script shows the script's failing check as a line with "FAIL:".
    grep -E ": error: |^Test Case '.*' failed \(|FAIL: " "$log" | cut -c1-600 | awk '!seen[$0]++' | tail -n 40
    # A crash leaves no summary: the last test that started is named instead.
    if ! grep -qE "^Test Suite '(All|Selected) tests' (passed|failed)" "$log"; then
        last=$(grep -E "^Test Case '.*' started at" "$log" | tail -n 1)
        [ -n "$last" ] && last=${last%% started at*}
        echo "the suite did not finish (a crash?); the last test to start: ${last:-none}"
    fi
fi
exit "$status"
