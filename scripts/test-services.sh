#!/usr/bin/env bash
# Starts the system services the tests talk to, when they are installed but not running and we
# are root: auditd (the Linux audit tests read its log with ausearch). Without root it only says
# what will be skipped; in CI (root) a test that needs a service fails if it is still missing.
set -euo pipefail
if [ -x /sbin/auditd ] && ! pgrep -x auditd >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        auditctl -e 1 >/dev/null 2>&1 || true
        /sbin/auditd && echo "test-services: started auditd"
    else
        echo "test-services: auditd is not running and needs root to start; the Linux audit test will be skipped" >&2
    fi
fi
