"""The web console under load, as bench/web.sh runs it against a real appliance.

  - the audit page (GET /web/audit: the first page, a filtered page, and a page deep into the
    log by its cursor) over the appliance's sealed log, p50/p95 of REQUESTS requests each, and
    the same searches through `pcctl audit search` (the baseline: the same log, the CLI's door);
  - TERMINALS web terminals open at once on the appliance's node, each typing KEYSTROKES
    single characters as a person types (a key every 100-200 ms); a keystroke's round trip is
    from the socket's send to its echo coming back (the shell echoes it), p50/p95/max over all
    of them; one terminal alone; the same keystrokes through OpenSSH's ssh (a PTY) to the same
    node (the baseline); and, as a stress, every terminal sending a key every 20 ms;
  - the daemon's resident memory (VmRSS) before, with every terminal open, and after.

One JSON argument (from web.sh): url, users (name → invitation token), pid, pcctl, config, node,
login, work (a directory), ssh (argv for the baseline, without the key, port and destination),
node_port, terminals, keystrokes, requests. The users are enrolled here through the API, as pcsh
setup does; the first gets an SSH certificate for the baseline as pcsh login does. The terminals
are spread over the users (a web session holds at most 16) and each user's come from an address
of its own (127.0.0.10, .11, …: the HTTPS port holds at most 32 connections per address).
Prints key=value lines. Only the standard library: the WebSocket client is the minimum RFC 6455
needs (masked client frames, no extensions).
"""
import base64, hmac, http.client, json, os, pty, random, re, select, socket, ssl, struct, subprocess, sys, threading, time
from urllib.parse import urlencode, urlparse

args = json.loads(sys.argv[1])
url = urlparse(args["url"])
insecure = ssl.create_default_context()
insecure.check_hostname = False
insecure.verify_mode = ssl.CERT_NONE


def totp(secret, offset=0):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30 + offset), "sha1").digest()
    start = digest[-1] & 15
    return "%06d" % ((struct.unpack(">I", digest[start:start + 4])[0] & 0x7FFFFFFF) % 1000000)


def request(method, path, body=None, cookies=None, headers=None):
    connection = http.client.HTTPSConnection(url.hostname, url.port, context=insecure, timeout=30)
    sent = {"Origin": args["url"], "Sec-Fetch-Site": "same-origin"}
    if cookies:
        sent["Cookie"] = "; ".join("%s=%s" % item for item in cookies.items())
    if body is not None:
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    sent.update(headers or {})
    connection.request(method, path, body=urlencode(body) if body is not None else None, headers=sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def cookies_of(response):
    found = {}
    for name, value in response.getheaders():
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            key, _, val = pair.partition("=")
            found[key] = val
    return found


def api(path, body):
    connection = http.client.HTTPSConnection(url.hostname, url.port, context=insecure, timeout=60)
    connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        sys.exit("web-bench: %s answered %d: %s" % (path, response.status, data[:300]))
    return json.loads(data)


password = "a long enough bench passphrase"
secrets = {}
for name, token in args["users"].items():
    secrets[name] = api("/v1/invitations/inspect", {"token": token})["totp_secret"]
    # Each code works once: enrolment spends the last step's, the web sign-in this one's, the
    # certificate for the ssh baseline the next one's.
    api("/v1/invitations/accept", {"token": token, "password": password, "totp_code": totp(secrets[name], -1)})
names = sorted(secrets)
first = names[0]


def sign_in(user):
    response, page = request("GET", "/web/login")
    jar = cookies_of(response)
    token = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
    response, _ = request("POST", "/web/login", {"user": user, "password": password, "totp": totp(secrets[user]),
                                                 "csrf": token, "motd": "yes"}, cookies=jar)
    session = cookies_of(response).get("__Host-portcullis_session")
    if response.status != 303 or not session:
        sys.exit("web-bench: sign-in failed (%d)" % response.status)
    return {"__Host-portcullis_session": session}


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def rss_mib():
    with open("/proc/%d/status" % args["pid"]) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


jars = {name: sign_in(name) for name in names}
jar = jars[first]
print("rss_start_mib=%.0f" % rss_mib(), flush=True)

# The audit page: first page, a filter, and deep paging (the cursor of the 10th page).
deep = None
path = "/web/audit"
for _ in range(10):
    response, page = request("GET", path, cookies=jar)
    found = re.search(rb'href="/web/audit\?([^"]*before=[^"]+)" rel="next"', page)
    if not found:
        break
    path = "/web/audit?" + found.group(1).decode().replace("&amp;", "&")
    deep = path
if deep is None:
    sys.exit("web-bench: the audit page offered no ten pages to walk (is the log filled?)")
pages = {"first": "/web/audit", "filtered": "/web/audit?event=session.start&user=user007", "deep": deep}
for name, path in pages.items():
    times = []
    for _ in range(args["requests"]):
        started = time.perf_counter()
        response, page = request("GET", path, cookies=jar)
        times.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            sys.exit("web-bench: %s answered %d" % (path, response.status))
    print("audit_%s_p50_ms=%.1f audit_%s_p95_ms=%.1f" % (name, percentile(times, 0.5), name, percentile(times, 0.95)), flush=True)

cli = {"first": [], "filtered": ["--event", "session.start", "--user", "user007"]}
for name, extra in cli.items():
    times = []
    for _ in range(max(5, args["requests"] // 10)):
        started = time.perf_counter()
        subprocess.run(args["pcctl"] + ["audit", "search", "--limit", "100", "--config", args["config"]] + extra,
                       check=True, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
    print("cli_%s_p50_ms=%.1f cli_%s_p95_ms=%.1f" % (name, percentile(times, 0.5), name, percentile(times, 0.95)), flush=True)


ESCAPES = re.compile(rb"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>])")


def echoed(character, data):
    """Whether `character` came back as text (not as a letter inside an escape sequence)."""
    return character in ESCAPES.sub(b"", data)


class WebSocket:
    def __init__(self, path, cookies, source="127.0.0.1"):
        raw = socket.create_connection((url.hostname, url.port), timeout=30, source_address=(source, 0))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = insecure.wrap_socket(raw, server_hostname=url.hostname)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (url.hostname, url.port), "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13", "Origin: " + args["url"],
                 "Cookie: " + "; ".join("%s=%s" % item for item in cookies.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("the socket closed during the upgrade")
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("no upgrade: " + head.split(b"\r\n")[0].decode())

    def send(self, payload, opcode=2):
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(payload))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the socket closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def receive(self):
        """(opcode, payload) of the next frame; pings are answered."""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(length)
            opcode = first & 0x0F
            if opcode == 9:
                self.send(payload, opcode=10)
                continue
            return opcode, payload


def terminal_worker(index, results, ready, go, gap):
    try:
        socket_path = "/web/terminal/socket?" + urlencode({"node": args["node"], "login": args["login"], "cols": 80, "rows": 24})
        owner = index % len(names)
        ws = WebSocket(socket_path, jars[names[owner]], source="127.0.0.%d" % (10 + owner))
        while True:
            opcode, payload = ws.receive()
            if opcode == 1 and json.loads(payload).get("type") == "open":
                break
            if opcode == 1 and json.loads(payload).get("type") == "ended":
                raise RuntimeError(json.loads(payload).get("message"))
        # The shell's prompt first, then a clean line (no echo of earlier output to confuse).
        ws.send(b"stty -icanon; PS1='$ '\r")
        time.sleep(1.0)
        ws.sock.settimeout(0.2)
        try:
            while True:
                ws.receive()
        except (socket.timeout, ssl.SSLError, TimeoutError):
            pass
        ws.sock.settimeout(30)
        ready.release()
        go.wait()
        times = []
        for n in range(args["keystrokes"]):
            character = bytes([ord("a") + n % 26])
            started = time.perf_counter()
            ws.send(character)
            seen = b""
            while not echoed(character, seen):
                opcode, payload = ws.receive()
                if opcode == 2:
                    seen += payload
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(random.uniform(gap[0], gap[1]))
        results[index] = times
        ws.send(b"\x03exit\r")
    except Exception as error:  # noqa: BLE001 - reported as the worker's failure
        results[index] = error
        ready.release()


def run_terminals(count, gap, report_rss=False):
    """Keystroke round trips (ms) of `count` terminals typing at once, a key every `gap` seconds (a range)."""
    results = [None] * count
    ready = threading.Semaphore(0)
    go = threading.Event()
    workers = [threading.Thread(target=terminal_worker, args=(i, results, ready, go, gap), daemon=True) for i in range(count)]
    for worker in workers:
        worker.start()
        time.sleep(0.05)
    for _ in range(count):
        ready.acquire()
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        sys.exit("web-bench: %d of %d terminals failed: %s" % (len(failed), count, failed[0]))
    if report_rss:
        print("rss_terminals_open_mib=%.0f" % rss_mib(), flush=True)
    go.set()
    for worker in workers:
        worker.join(timeout=300)
    failed = [r for r in results if not isinstance(r, list)]
    if failed:
        sys.exit("web-bench: %d terminals did not finish: %s" % (len(failed), failed[0]))
    return [t for r in results for t in r]


# People typing: a key every 100 to 200 ms each (a fast typist), not in step with each other.
TYPING = (0.1, 0.2)
# A stress beside it: every terminal sending a key every 20 ms (50 of them: 2,500 keys a second).
FLOOD = (0.02, 0.02)
single = run_terminals(1, TYPING)
print("one_terminal_keystroke_p50_ms=%.1f one_terminal_keystroke_p95_ms=%.1f" % (percentile(single, 0.5), percentile(single, 0.95)), flush=True)
keystrokes = run_terminals(args["terminals"], TYPING, report_rss=True)
print("terminals=%d keystrokes=%d keystroke_p50_ms=%.1f keystroke_p95_ms=%.1f keystroke_max_ms=%.1f" % (
    args["terminals"], len(keystrokes), percentile(keystrokes, 0.5), percentile(keystrokes, 0.95), max(keystrokes)), flush=True)
flood = run_terminals(args["terminals"], FLOOD)
print("flood_keystroke_p50_ms=%.1f flood_keystroke_p95_ms=%.1f" % (percentile(flood, 0.5), percentile(flood, 0.95)), flush=True)


# The baseline: the same keystrokes through OpenSSH's ssh, on a PTY, to the same node.
def ssh_keystrokes():
    key = os.path.join(args["work"], "bench-key")
    if not os.path.exists(key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f", key], check=True)
    with open(key + ".pub") as public:
        answer = api("/v1/login", {"user": first, "password": password, "totp_code": totp(secrets[first], 1), "public_key": public.read().strip()})
    with open(key + "-cert.pub", "w") as certificate:
        certificate.write(answer["certificate"] + "\n")
    with open(os.path.join(args["work"], "bench-known-hosts"), "w") as known:
        known.write("\n".join(answer["known_hosts"]) + "\n")
    command = args["ssh"] + ["-i", key, "-o", "UserKnownHostsFile=" + os.path.join(args["work"], "bench-known-hosts"),
                             "-p", str(args["node_port"]), "-tt", "%s@127.0.0.1" % args["login"]]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(command[0], command)

    def drain(timeout):
        data = b""
        while select.select([fd], [], [], timeout)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
            timeout = 0.2
        return data

    drain(5)
    os.write(fd, b"stty -icanon; PS1='$ '\r")
    drain(1)
    times = []
    for n in range(args["keystrokes"]):
        character = bytes([ord("a") + n % 26])
        started = time.perf_counter()
        os.write(fd, character)
        seen = b""
        while not echoed(character, seen):
            if not select.select([fd], [], [], 10)[0]:
                raise RuntimeError("ssh did not echo")
            seen += os.read(fd, 65536)
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(random.uniform(*TYPING))
    os.write(fd, b"\x03exit\r")
    drain(1)
    os.close(fd)
    os.waitpid(pid, 0)
    return times


baseline = ssh_keystrokes()
print("ssh_keystroke_p50_ms=%.1f ssh_keystroke_p95_ms=%.1f" % (percentile(baseline, 0.5), percentile(baseline, 0.95)), flush=True)
time.sleep(2)
print("rss_end_mib=%.0f" % rss_mib(), flush=True)
