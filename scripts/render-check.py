#!/usr/bin/env python3
"""render-check.py FILE.html OUT_DIR [--timeout SECONDS] [--no-js] [--verbose]

Loads a local HTML report in Debian's headless Chromium over the DevTools protocol
(--remote-debugging-pipe: Chromium reads commands on fd 3 and writes replies/events on fd 4,
JSON messages each ended by a NUL byte) and FAILS (exit 1, one line per problem) on:
  - any console message of level warning or error (console.warn/error/assert, and browser-side
    messages: CSP violations, failed loads, deprecations, interventions),
  - any uncaught JS exception (also ones thrown by the sort script when a header is clicked),
  - any CSP violation (securitypolicyviolation events, and DevTools "issues"),
  - any request other than the file itself and data: URLs (the page must be self-contained);
    http(s) requests are also blocked before they leave the machine,
  - a JS dialog (alert/confirm: what an injected script would do), a renderer crash, a timeout.
Writes OUT_DIR/screenshot.png (the full page) and OUT_DIR/print.pdf (printed as A4, backgrounds on).
--no-js loads the page with JavaScript disabled (the report must be complete without it) and skips the
sort exercise. Python 3 stdlib only. Exit 0 = passed, 1 = problems found, 2 = usage or Chromium missing.
"""
import base64, fcntl, json, os, pathlib, select, shutil, signal, subprocess, sys, tempfile, time

# Chromium's own stderr lines that are known noise in a headless container. Only stderr is filtered:
# page messages come over the DevTools protocol and are never filtered. Other stderr lines are printed
# as notes, not failures (they are the browser's, not the page's).
HARMLESS_STDERR = (
    "dbus/bus.cc",           # seen on every run here: no D-Bus system/session bus in a container
    "dbus/object_proxy.cc",  # seen: the same, when Chromium asks D-Bus/UPower for power state
    "Fontconfig error",      # common in minimal images (no fontconfig cache dir writable); not seen here
)

SORT_EXERCISE = r"""(() => {
  const problems = [];
  const key = (row, col) => { const c = row.cells[col]; return c ? (c.dataset.sort ?? c.textContent.trim()) : ""; };
  const cmp = (x, y) => { const a = Number(x), b = Number(y);
    return x !== "" && y !== "" && !isNaN(a) && !isNaN(b) ? (a > b) - (a < b) : x.localeCompare(y, "en"); };
  const tables = Array.from(document.querySelectorAll("table.sortable"));
  let clicks = 0;
  tables.forEach((table, t) => {
    const heads = Array.from(table.tHead.rows[0].cells);
    const before = table.tBodies[0].rows.length;
    const failed = [];
    heads.forEach((th, col) => {
      const button = th.querySelector("button");
      if (!button) { problems.push(`table ${t + 1}: header ${col + 1} has no sort button (sort script did not run?)`); return; }
      const first = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
      for (const want of [first, first === "ascending" ? "descending" : "ascending"]) {
        button.click(); clicks++;
        const sorted = heads.filter(h => h.hasAttribute("aria-sort"));
        if (sorted.length !== 1 || sorted[0] !== th || th.getAttribute("aria-sort") !== want)
          failed.push(`header ${col + 1} (${want}): aria-sort not set on it alone`);
        const rows = Array.from(table.tBodies[0].rows);
        if (rows.length !== before) failed.push(`header ${col + 1}: the number of rows changed`);
        for (let i = 1; i < rows.length; i++) {
          const order = cmp(key(rows[i - 1], col), key(rows[i], col));
          if (want === "ascending" ? order > 0 : order < 0) { failed.push(`header ${col + 1}: rows not in ${want} order`); break; }
        }
      }
    });
    if (failed.length)
      problems.push(`table ${t + 1} ("${table.caption ? table.caption.textContent.trim() : ""}"): ${failed.length} failed checks, first: ${failed[0]}`);
  });
  return {tables: tables.length, clicks, problems};
})()"""

CSP_WATCH = """document.addEventListener("securitypolicyviolation", e => renderCheckCSP(JSON.stringify({
  directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, sample: e.sample})), true);"""


class Timeout(Exception):
    pass


class Browser:
    def __init__(self, chromium, profile, timeout, stderr_path):
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Chromium's ends go above fd 9 first, so that dup2 onto 3 and 4 cannot clobber one with the other.
        child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (to_chrome_r, from_chrome_w):
            os.close(fd)
        flags = [
            "--headless",                      # the new headless mode (the full browser, no window)
            "--remote-debugging-pipe",         # DevTools protocol on fds 3/4: no TCP port to open or race for
            f"--user-data-dir={profile}",      # a throw-away profile, removed afterwards
            "--no-first-run", "--no-default-browser-check",
            "--disable-gpu",                   # no GPU in CI; software compositing is enough for a screenshot
            "--disable-dev-shm-usage",         # Docker's /dev/shm is 64 MB: Chromium crashes when it fills
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions", "--disable-breakpad", "--no-pings",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # belt and braces: no name resolves, nothing can leave
            "--hide-scrollbars", "--mute-audio", "--force-color-profile=srgb",
            "--window-size=1100,900",
            "about:blank",
        ]
        if os.geteuid() == 0:
            # Chromium refuses to run as root with its sandbox (the setuid / user-namespace sandbox
            # cannot drop root). CI runs as root, so the sandbox goes; what is loaded is our own
            # local file with every network request blocked.
            flags.insert(0, "--no-sandbox")
        self.stderr = open(stderr_path, "wb")
        def pipe_fds():  # in the child, before exec: its ends of the pipes become fds 3 and 4 (inheritable)
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        self.proc = subprocess.Popen(
            [chromium, *flags], stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr,
            preexec_fn=pipe_fds, close_fds=False,  # every other fd Python opened is close-on-exec (PEP 446)
            start_new_session=True,  # its own process group: one killpg ends Chromium and its helpers
            env={**os.environ, "HOME": profile, "XDG_CONFIG_HOME": profile, "XDG_CACHE_HOME": profile})
        os.close(child_r)
        os.close(child_w)
        self.wfd, self.rfd = to_chrome_w, from_chrome_r
        self.buffer = b""
        self.next_id = 0
        self.replies = {}
        self.handler = lambda event: None  # called for each event as it arrives (even while a call waits:
        self.seen = []                     # a paused request must be answered before Page.navigate replies)

    def remaining(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Timeout(f"timed out after {self.timeout:g} s")
        return left

    def send(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            select.select([], [self.wfd], [], self.remaining())
            data = data[os.write(self.wfd, data):]
        return self.next_id

    def pump(self, wait):
        """Read what Chromium has written within `wait` seconds; queue events, file replies."""
        ready, _, _ = select.select([self.rfd], [], [], max(0, min(wait, self.remaining())))
        if not ready:
            return False
        chunk = os.read(self.rfd, 1 << 20)
        if not chunk:
            raise RuntimeError("Chromium closed the DevTools pipe (it exited or crashed)")
        self.buffer += chunk
        *messages, self.buffer = self.buffer.split(b"\0")
        for raw in messages:
            message = json.loads(raw)
            if "id" in message:
                self.replies[message["id"]] = message
            else:
                self.seen.append((message["method"], message.get("sessionId")))
                self.handler(message)
        return True

    def call(self, method, params=None, session=None):
        ident = self.send(method, params, session)
        while ident not in self.replies:
            self.pump(self.remaining())
        reply = self.replies.pop(ident)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group we started (start_new_session)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def close(self):
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=5)
        except Exception:
            pass
        self.kill()  # helpers still alive (or a Chromium that ignored Browser.close)
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.stderr.close()


def remote_text(arg):
    if "value" in arg:
        return arg["value"] if isinstance(arg["value"], str) else json.dumps(arg["value"])
    return arg.get("description") or arg.get("unserializableValue") or arg.get("type", "?")


def where(url, line):
    return f" ({pathlib.Path(url).name or url}:{line + 1})" if url else ""


class Checker:
    def __init__(self, page_url):
        self.page_url = page_url
        self.counts = {}         # problem text -> times seen (insertion-ordered)
        self.requested = set()   # reported URLs (the Network and Fetch domains both see a request)
        self.csp = {"binding": [], "log": [], "issue": []}  # one CSP violation reaches us up to three ways

    def problem(self, text):
        self.counts[text] = self.counts.get(text, 0) + 1

    def problems(self):
        """Each CSP violation once: from the securitypolicyviolation listener when it saw at least as many
        as the console did (it names directive, URL, line), else the console's and DevTools' reports."""
        csp = self.csp["binding"] if len(self.csp["binding"]) >= len(self.csp["log"]) else self.csp["log"] + self.csp["issue"]
        for text in csp:
            self.problem(text)
        return [text + (f" (x{n})" if n > 1 else "") for text, n in self.counts.items()]

    def allowed(self, url):
        if url.split("#")[0] == self.page_url or url.startswith("data:"):
            return True
        if url not in self.requested:
            self.requested.add(url)
            self.problem(f"network request: {url} (the page must be self-contained)")
        return False

    def handle(self, browser, session, event):
        method, p = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
            frame = (p.get("stackTrace") or {}).get("callFrames") or [{}]
            text = " ".join(remote_text(a) for a in p.get("args", []))
            self.problem(f"console.{'warn' if p['type'] == 'warning' else p['type']}: {text}"
                         + where(frame[0].get("url"), frame[0].get("lineNumber", 0)))
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = (d.get("exception") or {}).get("description") or d.get("text", "exception")
            self.problem(f"uncaught exception: {text.splitlines()[0]}" + where(d.get("url"), d.get("lineNumber", 0)))
        elif method == "Log.entryAdded" and p["entry"]["level"] in ("warning", "error"):
            e = p["entry"]
            text = f"console {e['level']} ({e['source']}): {e['text']}"
            if e["source"] == "security" and "Content Security Policy" in e["text"]:
                self.csp["log"].append(text)
            else:
                self.problem(text)
        elif method == "Runtime.bindingCalled" and p["name"] == "renderCheckCSP":
            v = json.loads(p["payload"])
            self.csp["binding"].append(f"CSP violation: {v['directive']} blocked {v['blocked'] or '(inline)'}"
                                       + (f" at line {v['line']}" if v.get("line") else "")
                                       + (f": {v['sample']!r}" if v.get("sample") else ""))
        elif method == "Audits.issueAdded":
            issue = p["issue"]
            details = issue.get("details", {})
            csp = details.get("contentSecurityPolicyIssueDetails")
            if csp:
                self.csp["issue"].append(f"DevTools issue: CSP {csp.get('contentSecurityPolicyViolationType')} "
                                         f"({csp.get('violatedDirective')}) {csp.get('blockedURL', '')}".rstrip())
            else:
                urls = [v for v in json.dumps(details).split('"') if "://" in v]
                self.problem(f"DevTools issue: {issue['code']}" + (f" {urls[0]}" if urls else ""))
        elif method == "Network.requestWillBeSent":
            self.allowed(p["request"]["url"])
        elif method == "Fetch.requestPaused":
            url = p["request"]["url"]
            if self.allowed(url):
                browser.send("Fetch.continueRequest", {"requestId": p["requestId"]}, session)
            else:
                browser.send("Fetch.failRequest", {"requestId": p["requestId"], "errorReason": "BlockedByClient"}, session)
        elif method == "Page.javascriptDialogOpening":
            self.problem(f"JS dialog ({p['type']}): {p['message']}")
            browser.send("Page.handleJavaScriptDialog", {"accept": False}, session)
        elif method in ("Inspector.targetCrashed", "Target.targetCrashed"):
            self.problem("the renderer crashed")
        elif method == "Target.detachedFromTarget" and p.get("sessionId") == session:
            self.problem("DevTools detached from the page")


def drain(browser, quiet=0.5, limit=3.0):
    """Handle events until none has arrived for `quiet` s (at most `limit` s)."""
    end = time.monotonic() + limit
    while time.monotonic() < end and browser.pump(quiet):
        pass


def wait_event(browser, session, name):
    while (name, session) not in browser.seen:
        browser.pump(browser.remaining())


def evaluate(browser, checker, session, expression, what):
    result = browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
    if "exceptionDetails" in result:
        d = result["exceptionDetails"]
        checker.problem(f"{what}: exception {((d.get('exception') or {}).get('description') or d.get('text', '')).splitlines()[0]}")
        return None
    return result["result"].get("value")


def find_chromium():
    for candidate in (os.environ.get("CHROMIUM"), "/usr/lib/chromium/chromium",  # Debian's binary, without its wrapper script
                      shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def run(html, out_dir, timeout, verbose, no_js=False):
    chromium = find_chromium()
    if not chromium:
        print("render-check: no Chromium found (apt-get install -y chromium, or set CHROMIUM=/path)", file=sys.stderr)
        return 2
    page_url = pathlib.Path(html).resolve().as_uri()
    out_dir.mkdir(parents=True, exist_ok=True)
    checker = Checker(page_url)
    profile = tempfile.mkdtemp(prefix="render-check-")
    stderr_path = os.path.join(profile, "chromium-stderr.log")
    started = time.monotonic()
    browser = Browser(chromium, profile, timeout, stderr_path)
    stats = {}
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.handler = lambda event: checker.handle(browser, session, event)
        for method in ("Runtime.enable", "Log.enable", "Network.enable", "Page.enable", "Audits.enable", "Inspector.enable"):
            browser.call(method, None, session)
        browser.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, session)
        browser.call("Runtime.addBinding", {"name": "renderCheckCSP", "executionContextName": "render-check"}, session)
        browser.call("Page.addScriptToEvaluateOnNewDocument", {"source": CSP_WATCH, "worldName": "render-check"}, session)
        browser.call("Emulation.setDeviceMetricsOverride", {"width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session)
        if no_js:
            browser.call("Emulation.setScriptExecutionDisabled", {"value": True}, session)
        nav = browser.call("Page.navigate", {"url": page_url}, session)
        if nav.get("errorText"):
            checker.problem(f"navigation failed: {nav['errorText']}")
        else:
            wait_event(browser, session, "Page.loadEventFired")
            stats["load"] = time.monotonic() - started
            drain(browser)
            info = evaluate(browser, checker, session,
                            "({title: document.title, charts: document.querySelectorAll('svg').length,"
                            " tables: document.querySelectorAll('table').length, height: document.documentElement.scrollHeight})", "page info")
            stats.update(info or {})
            metrics = browser.call("Page.getLayoutMetrics", None, session)
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            shot = browser.call("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}, session)
            (out_dir / "screenshot.png").write_bytes(base64.b64decode(shot["data"]))
            pdf = browser.call("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True,
                                                   "paperWidth": 8.27, "paperHeight": 11.69}, session)  # A4
            (out_dir / "print.pdf").write_bytes(base64.b64decode(pdf["data"]))
            # Exercise the sort script after the captures (they show the page as delivered).
            sort = None if no_js else evaluate(browser, checker, session, SORT_EXERCISE, "sort exercise")
            if sort:
                stats["sortable tables"], stats["header clicks"] = sort["tables"], sort["clicks"]
                for text in sort["problems"]:
                    checker.problem(f"sort: {text}")
            drain(browser, quiet=0.3, limit=2.0)
    except Timeout as error:
        checker.problem(f"{error} (Chromium killed)")
        browser.kill()
    except (RuntimeError, OSError, ValueError) as error:
        checker.problem(f"DevTools: {error}")
    finally:
        browser.close()
        stats["seconds"] = time.monotonic() - started
        stderr_lines = pathlib.Path(stderr_path).read_text(errors="replace").splitlines()
        shutil.rmtree(profile, ignore_errors=True)

    problems = checker.problems()
    unknown = [l for l in stderr_lines if l.strip() and not any(k in l for k in HARMLESS_STDERR)]
    if verbose:
        for line in stderr_lines:
            print(f"  chromium stderr: {line}")
    else:
        for line in unknown[-20:]:
            print(f"note: chromium stderr: {line}")
    summary = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v!r}" if isinstance(v, str) else f"{k} {v}"
                        for k, v in stats.items())
    if problems:
        for text in problems:
            print(f"FAIL {html}: {text}")
        print(f"render-check: {len(problems)} problem(s) in {html} ({summary})")
        return 1
    print(f"render-check: OK {html} -> {out_dir}/screenshot.png, {out_dir}/print.pdf ({summary})")
    return 0


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    timeout = 60.0
    if "--timeout" in argv:
        i = argv.index("--timeout")
        timeout = float(argv[i + 1])
        args.remove(argv[i + 1])
    if len(args) != 2 or not os.path.isfile(args[0]):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    return run(args[0], pathlib.Path(args[1]), timeout, "--verbose" in argv, "--no-js" in argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
