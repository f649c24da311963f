# Shared by the SSH benchmarks: the measurements, made with the OpenSSH client in "${client[@]}"
# (set by the caller), RUNS and SIZE; and Debian's sshd to compare with.

require_sshd() {  # the benchmark starts its own sshd only
    [ "$(id -u)" = 0 ] || { echo "$0: needs root (sshd)" >&2; exit 1; }
    if ! [ -x /usr/sbin/sshd ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
        systemctl disable --now ssh >/dev/null 2>&1 || true
    fi
    mkdir -p /run/sshd
}

# SIZE in bytes, worked out once (a transfer checks it moved exactly this much).
SIZE_BYTES=$(head -c "${SIZE:-1G}" /dev/zero | wc -c)

median_ms() { median_ms_as "$1" root@127.0.0.1; }
mib_per_s() { mib_per_s_as_direction "$1" "$2" root@127.0.0.1 "${3:-0}"; }
mib_per_s_as() { mib_per_s_as_direction up "$1" "$2"; }

median_ms_as() {  # port destination: median of RUNS connect+auth+exec true, in ms
    local port=$1 destination=$2 samples=()
    for _ in $(seq "$RUNS"); do
        local start end
        start=$(date +%s%N)
        "${client[@]}" -p "$port" "$destination" true
        end=$(date +%s%N)
        samples+=($(( (end - start) / 1000 )))
    done
    median "${samples[@]}" | awk '{ printf "%.1f", $1 / 1000 }'
}

mib_per_s_as_direction() {  # direction port destination
    # up: zeros uploaded to `cat >/dev/null`; down: `head -c SIZE /dev/zero` downloaded;
    # down-random: a file of SIZE random bytes (RANDOM_FILE) downloaded; pty: zeros downloaded
    # through a terminal in raw mode (an interactive session's path). `setup_ms` (the side's
    # median connect time) is taken off the elapsed time, so a faster handshake does not pass
    # for a faster transfer. A transfer that did not move SIZE bytes stops the benchmark.
    local direction=$1 port=$2 destination=$3 setup_ms=${4:-0} start end bytes expected=$SIZE_BYTES
    start=$(date +%s%N)
    if [ "$direction" = down ]; then
        bytes=$("${client[@]}" -p "$port" "$destination" "head -c $SIZE /dev/zero" | wc -c)
    elif [ "$direction" = down-random ]; then
        bytes=$("${client[@]}" -p "$port" "$destination" "cat $RANDOM_FILE" | wc -c)
    elif [ "$direction" = pty ]; then
        bytes=$("${client[@]}" -tt -p "$port" "$destination" "stty raw -echo; head -c $SIZE /dev/zero" </dev/null 2>/dev/null | wc -c)
    else
        bytes=$(head -c "$SIZE" /dev/zero | "${client[@]}" -p "$port" "$destination" 'wc -c')
    fi
    end=$(date +%s%N)
    if [ "$bytes" != "$expected" ]; then
        echo "$direction through port $port moved $bytes bytes, not $expected" >&2
        exit 1
    fi
    awk -v b="$bytes" -v ns=$((end - start)) -v setup="$setup_ms" 'BEGIN { printf "%.0f", b / 1048576 / ((ns / 1e6 - setup) / 1000) }'
}

cpu_seconds() {  # pid: its user + system CPU seconds so far
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

machine_busy_seconds() {  # every CPU's non-idle time so far (user, nice, system, irq, softirq, steal)
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

peak_rss_mib() {  # pid: its peak resident memory, MiB (since it started, or since reset_peak_rss)
    awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

reset_peak_rss() {  # pid: its peak so far forgotten (Linux ≥ 4.0), so the next peak is of what follows
    echo 5 >"/proc/$1/clear_refs"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

ratio_range() {  # "ours per round" "baseline per round": the lowest and highest round's ratio
    awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " ")
        for (i = 1; i <= n; i++) { r = x[i] / y[i]; if (i == 1 || r < lo) lo = r; if (i == 1 || r > hi) hi = r }
        printf "%.2f-%.2f", lo, hi }'
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pty_floor() {  # one line: what a bare PTY reader gets here (bench/lib/pty-floor.py), beside the PTY rows
    local size=$(( SIZE_BYTES < 268435456 ? SIZE_BYTES : 268435456 )) probe at_once paused per_read
    probe=$(python3 bench/lib/pty-floor.py "$size" 20) || { echo "a bare PTY reader here: not measured (bench/lib/pty-floor.py failed)"; return 0; }
    read -r _ at_once _ <<<"$(sed -n 1p <<<"$probe")"
    read -r _ paused per_read <<<"$(sed -n 2p <<<"$probe")"
    echo "a bare PTY reader here (no SSH; bench/lib/pty-floor.py): $at_once MiB/s reading as soon as output is there," \
        "$paused MiB/s pausing 20 µs after each read ($per_read bytes a read): the kernel's hand-over, not work, sets PTY rates"
}
