#!/usr/bin/env python3
"""The first five minutes, as a new user spends them: `make run`, then the steps it prints.

Runs `make run` on a fresh data directory, reads the login steps from what it printed, and runs
those very commands in order (only the token and the one-time codes are filled in, as a person
would type them): a role and a user, the proxy's certificate, `pcsh setup` and `pcsh login`, an
sessions to the appliance's node (through the proxy and straight), the audit search that shows
the session and `pcsh play` of its recording.
Fails if a printed command fails or the steps are missing, so the quick start cannot rot.

Usage: scripts/quickstart-test.py   (from the repository root; `make test` runs it)
"""
import base64, hmac, os, re, shutil, signal, socket, struct, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "quick start passphrase"


def fail(message, output=""):
    sys.exit("quickstart-test: FAIL: %s%s" % (message, ("\n" + output) if output else ""))


def totp(secret, offset=0):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30 + offset), "sha1").digest()
    start = digest[-1] & 15
    return "%06d" % ((struct.unpack(">I", digest[start:start + 4])[0] & 0x7FFFFFFF) % 1000000)


def listening(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def printed_steps(lines):
    """The commands of the login steps, in order: each after a label's 'name:  ' or on a
    continuation line, split where the text says 'then' or ';' between two commands."""
    commands, inside = [], False
    for line in lines:
        if "log in (in another terminal" in line:
            inside = True
            continue
        if not inside:
            continue
        if not line.strip():
            break
        match = re.search(r":\s{2,}(\S.*)$", line) or re.match(r"^\s{20,}(\S.*)$", line)
        if match:
            commands.extend(part.strip() for part in re.split(r";\s+then\s+", match.group(1)))
    return commands


def session_ids(output):
    """The session ids of the session.end rows an audit search printed."""
    rows = [line.split("\t") for line in output.splitlines()]
    header = next((row for row in rows if "SESSION" in row and "EVENT" in row), None)
    if not header:
        return []
    return [row[header.index("SESSION")].strip() for row in rows if len(row) == len(header)
            and row[header.index("EVENT")].strip() == "session.end" and row[header.index("SESSION")].strip() not in ("", "-")]


def main():
    if shutil.which("ssh") is None:
        fail("needs OpenSSH's ssh (Debian package openssh-client)")
    for port in (3022, 3023, 3025, 3080):
        if listening(port):
            fail("port %d is in use; the quick start's appliance needs it" % port)
    parent = tempfile.mkdtemp(prefix="portcullis-quickstart-")
    os.chmod(parent, 0o755)  # the daemon's user (as root: portcullis) reaches run/ through it, as through a checkout
    run_dir = os.path.join(parent, "run")  # make run creates it, as on a first run
    home = os.path.expanduser("~")
    pcsh_home = os.path.join(home, ".pcsh")
    backup = pcsh_home + ".quickstart-backup"
    if os.path.exists(pcsh_home):
        os.rename(pcsh_home, backup)
    env = dict(os.environ, RUN_DIR=run_dir)
    env.pop("PCSH_HOME", None)
    log = open(os.path.join(parent, "make-run.log"), "w+")
    daemon = subprocess.Popen(["make", "--no-print-directory", "run", "RUN_DIR=" + run_dir], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 600  # the first make run may build
        while not listening(3080) or not listening(3022):
            if daemon.poll() is not None or time.time() > deadline:
                log.seek(0)
                fail("make run did not bring the appliance up", log.read()[-4000:])
            time.sleep(0.5)
        log.seek(0)
        printed = log.read().splitlines()
        commands = printed_steps(printed)
        if len(commands) < 8:
            fail("make run printed too few login steps: %r" % commands, "\n".join(printed))
        print("quickstart-test: make run printed %d commands" % len(commands))

        token = secret = session = None
        for command in commands:
            is_ssh = command.startswith("ssh ") or " ssh " in command
            if is_ssh and "SERVER" not in command:
                command = command + " 'echo $((6*7)) quick-start-session'"
            if "TOKEN-FROM-STEP-1" in command:
                if token is None:
                    fail("step 1 printed no invitation token")
                command = command.replace("TOKEN-FROM-STEP-1", token)
            if "SESSION-ID" in command:
                if session is None:
                    fail("the printed audit search showed no session id", output)
                command = command.replace("SESSION-ID", session)
            if "SERVER" in command or "TrustedUserCAKeys" in command:
                continue  # step 5 needs a server of the reader's own
            if " setup " in command:
                setup = subprocess.Popen(command, shell=True, cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                shown = b""
                while b"New password" not in shown or not shown.endswith(b": "):
                    byte = setup.stdout.read(1)
                    if not byte:
                        fail("pcsh setup stopped", shown.decode())
                    shown += byte
                secret = shown.decode().split("secret: ")[1].split()[0]
                rest, _ = setup.communicate(("%s\n%s\n%s\n" % (PASSWORD, PASSWORD, totp(secret))).encode(), timeout=60)
                output = (shown + rest).decode()
                if setup.returncode != 0:
                    fail("printed step failed: " + command, output)
                time.sleep(1)
            elif " login " in command:
                result = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, timeout=60,
                                        input=("%s\n%s\n" % (PASSWORD, totp(secret, 1))).encode())
                output = (result.stdout + result.stderr).decode()
                if result.returncode != 0:
                    fail("printed step failed: " + command, output)
            else:
                # The node writes a session's end once the client has gone (after its recording
                # and enhanced-recording feed close): a person typing the next step takes seconds,
                # so the audit search is given up to ten before its missing row is a failure.
                asked = time.time()
                searching_until = asked + (10 if " audit search " in command else 0)
                while True:
                    result = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, timeout=120,
                                            stdin=subprocess.DEVNULL)
                    output = (result.stdout + result.stderr).decode(errors="replace")
                    if result.returncode != 0:
                        fail("printed step failed: " + command, output)
                    if time.time() >= searching_until or session_ids(output):
                        break
                    time.sleep(0.5)
                if " audit search " in command and time.time() - asked > 1:
                    print("quickstart-test: the audit search showed the session's end after %.1f s" % (time.time() - asked))
            found = re.search(r"--token (\S+)", output)
            if found and " users add " in command:
                token = found.group(1)
            if is_ssh and "42 quick-start-session" not in output:
                fail("the session to the node did not run the command", output)
            if " audit search " in command:
                ids = session_ids(output)
                session = ids[-1] if ids else None
            if " play " in command and "42 quick-start-session" not in output:
                fail("pcsh play did not show the recorded session", output)
            print("quickstart-test: ok: " + command)
        if session is None:
            fail("the printed steps never listed the session")
        print("quickstart-test: passed: every printed login step works")
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
        shutil.rmtree(pcsh_home, ignore_errors=True)
        if os.path.exists(backup):
            os.rename(backup, pcsh_home)
        shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
