#!/usr/bin/env bash
# Starts the system services the tests talk to, when they are installed and we are root:
# auditd, with kernel auditing enabled (the Linux audit tests read its log with ausearch).
# Without root it only says what will be skipped; in CI (root) a test that needs a service
# fails if it is still missing.
set -euo pipefail
if [ -x /sbin/auditd ]; then
    if [ "$(id -u)" = 0 ]; then
        # A kernel booted with auditing off drops every record, and auditd may not stay up.
        auditctl -e 1 >/dev/null 2>&1 || echo "test-services: could not enable kernel auditing (auditctl -e 1)" >&2
        # A running auditd registers its pid with the kernel (0: none; pgrep would count a zombie).
        daemon() { auditctl -s 2>/dev/null | awk '$1 == "pid" { print $2 }'; }
        if [ "$(daemon)" = 0 ] || [ -z "$(daemon)" ]; then
            /sbin/auditd
            for _ in 1 2 3 4 5 6 7 8 9 10; do [ "$(daemon)" != 0 ] && break; sleep 0.2; done
            if [ "$(daemon)" != 0 ]; then echo "test-services: started auditd"; else echo "test-services: auditd did not start" >&2; fi
        fi
    elif ! pgrep -x auditd >/dev/null; then
        echo "test-services: auditd is not running and needs root to start; the Linux audit test will be skipped" >&2
    fi
fi
