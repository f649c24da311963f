#!/usr/bin/env python3
"""What this machine's kernel gives a PTY reader with no SSH around it: `head -c SIZE /dev/zero`
on a raw terminal, its master read as soon as it is readable (an event loop's way), then the same
reader pausing after each read. The benchmarks print it beside their PTY rows: a terminal hands
its output over about 4 KiB a read, each read waking a kernel worker to refill the line
discipline, so the rate depends on when the reader comes back, not on how much work it does.

usage: pty-floor.py BYTES [PAUSE_MICROSECONDS...]; prints "pause_us MiB/s bytes_per_read" lines.
"""
import os
import pty
import select
import subprocess
import sys
import time
import tty


def measure(size: int, pause_us: int) -> tuple[float, float]:
    master, slave = pty.openpty()
    tty.setraw(slave)
    # head's own complaints (stderr) stay out of the terminal: only its output is counted.
    writer = subprocess.Popen(["head", "-c", str(size), "/dev/zero"], stdin=subprocess.DEVNULL, stdout=slave,
                              start_new_session=True)
    os.close(slave)
    os.set_blocking(master, False)
    total = reads = 0
    deadline = time.monotonic() + 300
    started = time.monotonic()
    try:
        with select.epoll() as poller:
            poller.register(master, select.EPOLLIN)
            while total < size and time.monotonic() < deadline:
                poller.poll(0.1)
                try:
                    data = os.read(master, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: the writer ended and closed the terminal
                    break
                if not data:
                    break
                total += len(data)
                reads += 1
                if pause_us:
                    # A busy wait: a sleep this short would last the timer slack (50 µs) instead.
                    until = time.perf_counter_ns() + pause_us * 1000
                    while time.perf_counter_ns() < until:
                        pass
        elapsed = time.monotonic() - started
    finally:
        writer.kill()
        writer.wait()
        os.close(master)
    if total != size:
        sys.exit(f"pty-floor: read {total} of {size} bytes from the terminal (head exited {writer.returncode})")
    return total / elapsed / 1048576, total / reads


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    size = int(sys.argv[1])
    for pause in [0] + [int(p) for p in sys.argv[2:]]:
        rate, per_read = measure(size, pause)
        print(f"{pause} {rate:.1f} {per_read:.0f}")


if __name__ == "__main__":
    main()
