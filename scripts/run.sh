#!/usr/bin/env bash
# The last step of `make run`: starts the appliance on the configuration in RUN_DIR.
#   As a developer (not root): the daemon runs as you and starts sessions itself, so only your
#   own login works.
#   As root: split as the installed appliance is (issue 16). The root broker portcullis-privd
#   starts sessions; the daemon runs as the system user `portcullis` (made here if missing)
#   with no capability at all, and owns RUN_DIR.
set -euo pipefail
bin=$1 run=$2
config=$run/portcullis.yaml
if [ "$(id -u)" -ne 0 ]; then
    exec "$bin/portcullis" start --config "$config"
fi
if ! getent passwd portcullis >/dev/null; then
    adduser --quiet --system --group --home /var/lib/portcullis --no-create-home --shell /usr/sbin/nologin portcullis
    echo "created the system user portcullis, which the daemon runs as"
fi
# The broker's directory is beside RUN_DIR, not in it: RUN_DIR is the daemon's, and root does
# not make directories where the daemon could have put a symbolic link.
privd=$run.privd
socket=$privd/privd.sock
sed -i "s|^  broker_socket: .*|  broker_socket: \"$socket\"|" "$config"
chown -R portcullis:portcullis "$run"
# Root's, reachable by the daemon's group only (the broker also checks each connection's uid).
rm -rf "$privd"
install -d -o root -g portcullis -m 0750 "$privd"
"$bin/portcullis-privd" --socket "$socket" --user portcullis --launcher "$bin/portcullis-exec" --create-host-users --enhanced-recording &
broker=$!
trap 'kill $broker 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.05; done
[ -S "$socket" ] || { echo "portcullis-privd did not start" >&2; exit 1; }
echo "the daemon runs as portcullis with no capability; sessions are started by portcullis-privd (root, pid $broker)"
setpriv --reuid=portcullis --regid=portcullis --init-groups --inh-caps=-all --bounding-set=-all -- \
    "$bin/portcullis" start --config "$config"
