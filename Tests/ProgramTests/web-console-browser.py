"""Drives the web console in a real browser (Debian's chromium through Playwright), as a person.

Run by WebConsoleBrowserTests with one JSON argument: the console's URL, the users (name,
password, TOTP secret, the servers their roles show), pcctl and the daemon's configuration (to lock a
user mid-session), the idle timeout, and a directory for screenshots. Exits non-zero with the
first broken expectation; prints what it checked.
"""
import base64, hmac, json, re, socket, ssl, struct, subprocess, sys, time
from urllib.parse import urlparse

from playwright.sync_api import sync_playwright

args = json.loads(sys.argv[1])
base = args["url"].rstrip("/")
origin = urlparse(base)
origin_host, origin_port = origin.hostname, origin.port
shots = args["screenshots"]
checked = []
began = time.time()


def expect(condition, what, detail=""):
    if not condition:
        sys.exit("web console: FAIL: %s%s" % (what, (": " + str(detail)) if detail else ""))
    checked.append(what)
    print("web console: ok: %s (%.1f s)" % (what, time.time() - began), flush=True)


def totp(secret, offset=0):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30 + offset), "sha1").digest()
    start = digest[-1] & 15
    return "%06d" % ((struct.unpack(">I", digest[start:start + 4])[0] & 0x7FFFFFFF) % 1000000)


def fresh_code(user):
    """A code for a step after the last one this user spent (each works once): the current
    step's, else the next one's (the console accepts one step of skew), else wait."""
    while True:
        now = int(time.time()) // 30
        target = max(now, user.get("last_step", -1) + 1)
        if target <= now + 1:
            break
        time.sleep(30 - time.time() % 30 + 0.2)
    user["last_step"] = target
    return totp(user["secret"], target - now)


def sign_in(page, user, code=None):
    page.goto(base + "/web/login")
    page.get_by_label("User name").fill(user["name"])
    page.get_by_label("Password").fill(user["password"])
    page.get_by_label("One-time code").fill(code or fresh_code(user))
    if page.get_by_label("I have read and accept this notice").count():
        page.get_by_label("I have read and accept this notice").check()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=args["chromium"], headless=True, args=["--no-sandbox"])
    # A viewer in New York: times are shown in their zone, UTC on hover.
    context = browser.new_context(ignore_https_errors=True, timezone_id="America/New_York")
    problems, foreign = [], []
    context.on("request", lambda request: foreign.append(request.url)
               if urlparse(request.url).netloc and urlparse(request.url).netloc != origin.netloc else None)

    # Pages answered with the status they mean (a refused sign-in 401, a forbidden page 403) make
    # chromium log "Failed to load resource"; those are expected, any other error is not.
    expected = {("/web/login", 401), ("/web/audit", 403), ("/web/reports", 403)}

    def console(message):
        if message.type != "error":
            return
        status = message.text.rsplit("status of ", 1)[-1].split(" ")[0] if "status of " in message.text else ""
        if status.isdigit() and (urlparse(message.location.get("url", "")).path, int(status)) in expected:
            return
        problems.append("%s (%s)" % (message.text, message.location.get("url")))

    def watch(page):
        page.on("console", console)
        page.on("pageerror", lambda error: problems.append("%s (%s; %s)" % (error, page.url, (error.stack or "")[:300])))
        return page

    alice, bob = args["users"]["alice"], args["users"]["bob"]
    page = watch(context.new_page())

    # The sign-in form: the standard autocomplete values, the notice to accept.
    page.goto(base + "/web/login")
    expect(page.get_by_label("User name").get_attribute("autocomplete") == "username", "the user field is autocomplete=username")
    expect(page.get_by_label("Password").get_attribute("autocomplete") == "current-password", "the password field is current-password")
    expect(page.get_by_label("One-time code").get_attribute("autocomplete") == "one-time-code", "the code field is one-time-code")
    expect(page.get_by_text(args["motd"]).count() == 1, "the message of the day is shown before sign-in")
    page.screenshot(path=shots + "/login.png", full_page=True)
    headers = page.request.get(base + "/web/login").headers
    policy = headers.get("content-security-policy", "")
    expect("default-src 'none'" in policy and "script-src 'self';" in policy and "unsafe" not in policy,
           "Content-Security-Policy allows only the appliance's own script (no inline script)", policy)
    expect(headers.get("x-frame-options") == "DENY" and "max-age" in headers.get("strict-transport-security", ""), "X-Frame-Options DENY and HSTS")

    # The notice must be accepted (AC-8): without the tick the browser itself refuses (required),
    # and a post without it is refused by the console.
    page.goto(base + "/web/login")
    token = page.locator("input[name=csrf]").get_attribute("value")
    unticked = context.request.post(base + "/web/login", form={"user": alice["name"], "password": alice["password"], "totp": "000000",
                                                               "csrf": token}, max_redirects=0)
    expect(unticked.status == 400, "a sign-in without accepting the notice is refused", unticked.status)

    # alice: the servers her roles allow, and nothing of the audit log.
    sign_in(page, alice)
    expect(page.url.endswith("/web/servers"), "alice is signed in", page.url + " " + page.locator("main").inner_text())
    cookie = next(c for c in context.cookies() if c["name"] == "__Host-portcullis_session")
    expect(cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict", "the session cookie is HttpOnly, Secure, SameSite=Strict", cookie)
    names = sorted(page.locator("tbody tr td:first-child").all_inner_texts())
    expect(names == sorted(alice["servers"]), "alice sees exactly the servers her roles allow", names)
    page.screenshot(path=shots + "/servers.png", full_page=True)
    page.get_by_label("Find by name or label").fill(alice["servers"][0])
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tbody tr").count() == 1, "the search finds one server")
    expect(page.get_by_role("link", name="Audit log").count() == 0, "no audit link for a role without audit: [read]")
    response = page.goto(base + "/web/audit")
    expect(response.status == 403, "alice gets 403 on the audit page", response.status)
    reports = page.goto(base + "/web/reports")
    expect(reports.status == 403, "alice gets 403 on the reports page", reports.status)
    page.screenshot(path=shots + "/audit-forbidden.png", full_page=True)

    expect(page.request.get(base + "/web/servers").headers.get("cache-control") == "no-store", "pages are not cached (Cache-Control: no-store)")
    # The sign-in form's own token: a sign-in posted without it (a login CSRF) is refused.
    forged = browser.new_context(ignore_https_errors=True)
    refused = forged.request.post(base + "/web/login", form={"user": bob["name"], "password": bob["password"], "totp": "123456",
                                                             "motd": "yes", "csrf": "forged"}, max_redirects=0)
    expect(refused.status == 403 and "__Host-portcullis_session" not in refused.headers.get("set-cookie", ""),
           "a sign-in without the form's token is refused", refused.status)
    forged.close()
    # A cross-site form post is refused, and so is one without the session's token.
    cross = context.request.post(base + "/web/logout", form={"csrf": "x"}, headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
                                 max_redirects=0)
    expect(cross.status == 403, "a cross-site POST is refused", cross.status)
    origin_only = context.request.post(base + "/web/logout", form={"csrf": "x"}, headers={"Origin": "https://evil.example"}, max_redirects=0)
    expect(origin_only.status == 403, "a POST from another origin is refused (Origin alone)", origin_only.status)
    tokenless = context.request.post(base + "/web/logout", form={"csrf": ""}, max_redirects=0)
    expect(tokenless.status == 403, "a POST without the CSRF token is refused", tokenless.status)
    wrong = context.request.post(base + "/web/logout", form={"csrf": "A" * 43}, max_redirects=0)
    expect(wrong.status == 403, "a POST with a wrong CSRF token is refused", wrong.status)
    page.goto(base + "/web/servers")
    expect(page.url.endswith("/web/servers"), "alice is still signed in after the refused posts")

    # Sign-out ends the session on the server: the old cookie is worth nothing.
    old = [c for c in context.cookies() if c["name"] == "__Host-portcullis_session"]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    expect("/web/login" in page.url and page.get_by_text("You are signed out.").count() == 1, "sign-out returns to the sign-in page", page.url)
    replay = browser.new_context(ignore_https_errors=True)
    replay.add_cookies(old)
    again = replay.request.get(base + "/web/servers", max_redirects=0)
    expect(again.status == 303 and "/web/login" in again.headers.get("location", ""), "the signed-out cookie no longer works", again.status)
    replay.close()

    # bob, with audit: [read]: the audit log, which holds alice's sign-in and sign-out.
    sign_in(page, bob)
    expect(page.get_by_role("link", name="Audit log").count() == 1, "bob's role shows the audit link")
    page.get_by_role("link", name="Audit log").click()
    page.wait_for_load_state()
    events = page.locator("tbody tr td:nth-child(2)").all_inner_texts()
    expect("web.login" in events and "web.logout" in events, "the audit log shows web.login and web.logout", events[:10])
    page.get_by_label("Event").fill("web.logout")
    page.get_by_role("button", name="Search").click()
    users = set(page.locator("tbody tr td:nth-child(4)").all_inner_texts())
    expect(users == {"alice"}, "the event filter keeps only web.logout (alice's)", users)
    page.screenshot(path=shots + "/audit.png", full_page=True)
    first_time = page.locator("tbody time").first
    shown, utc = first_time.inner_text(), first_time.get_attribute("title") or ""
    expect(utc.endswith("(UTC)") and shown != first_time.get_attribute("datetime") and ("EST" in shown or "EDT" in shown or "GMT-" in shown),
           "times are shown in the viewer's zone, UTC on hover", (shown, utc))

    # The web terminal: alice (max_connections: 1) reaches web1 as root through the console.
    alice_context = browser.new_context(ignore_https_errors=True, viewport={"width": 1100, "height": 800})
    alice_context.on("request", lambda request: foreign.append(request.url)
                     if urlparse(request.url).netloc and urlparse(request.url).netloc != origin.netloc else None)
    # alice logs in with pcsh too, for ssh beside her web terminal (first: the web session's idle
    # timeout is seconds long here).
    pcsh = args["alice_pcsh"]
    login = subprocess.run(pcsh["login"], input=(args["motd"] and "yes\n" or "") + alice["password"] + "\n" + fresh_code(alice) + "\n",
                           capture_output=True, text=True, env=pcsh["env"], timeout=60)
    expect(login.returncode == 0, "alice logs in with pcsh as well", login.stdout + login.stderr)
    alice_page = watch(alice_context.new_page())
    sign_in(alice_page, alice)
    expect(alice_page.url.endswith("/web/servers"), "alice signs in for a terminal")

    def screen(page, selector="#terminal"):
        return page.locator(selector + " .xterm-accessibility-tree").inner_text()

    def wait_state(page, state, selector="#terminal", timeout=20000):
        try:
            page.wait_for_function("(want) => document.querySelector(want[0]).dataset.state === want[1]", arg=[selector, state], timeout=timeout)
        except Exception:  # noqa: BLE001 - the failure says what the page showed
            shown = page.content()[:3000]
            expect(False, "%s reaches state %s" % (selector, state), "%s; console: %s" % (shown, problems))

    def wait_text(page, predicate, selector="#terminal", timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = screen(page, selector)
            if predicate(text):
                return text
            time.sleep(0.2)
        return screen(page, selector)

    def open_terminal(page):
        page.goto(base + "/web/servers")
        page.get_by_role("button", name="Connect to web1").click()
        page.wait_for_load_state()
        wait_state(page, "open")
        # The login shell has read its startup files once it echoes what was typed. A terminal
        # ended earlier hangs up on them midway, as sshd would: root's `pyenv rehash`, hung up on
        # while its exit trap's `rm` removes its lock (traced: the rm dies of the SIGHUP), leaves
        # the lock behind, and every later root login on this machine waits a minute for it.
        run(page, "echo shell-$((40+2))-ready")
        ready = wait_text(page, lambda t: any(line.strip() == "shell-42-ready" for line in t.splitlines()))
        expect(any(line.strip() == "shell-42-ready" for line in ready.splitlines()), "the terminal's shell answers", ready[-400:])

    def run(page, command):
        page.locator("#terminal").click()
        page.keyboard.type(command)
        page.keyboard.press("Enter")

    open_terminal(alice_page)
    expect("root@web1" in alice_page.locator("#terminal-status").inner_text(), "the terminal connects", alice_page.locator("#terminal-status").inner_text())
    run(alice_page, "echo $((6*7))")
    text = wait_text(alice_page, lambda t: any(line.strip() == "42" for line in t.splitlines()))
    expect(any(line.strip() == "42" for line in text.splitlines()), "echo $((6*7)) prints 42 in the web terminal", text[-400:])
    alice_page.screenshot(path=shots + "/terminal.png", full_page=True)

    # Resize: the window shrinks, the terminal follows, and the shell sees its new size.
    def sizes_in(text):
        return [line.strip() for line in text.splitlines() if re.fullmatch(r"size=\d+ \d+", line.strip())]

    run(alice_page, "stty size | sed 's/^/size=/'")
    sizes = sizes_in(wait_text(alice_page, lambda t: len(sizes_in(t)) >= 1))
    alice_page.set_viewport_size({"width": 700, "height": 520})
    time.sleep(0.5)
    run(alice_page, "stty size | sed 's/^/size=/'")
    resized = sizes_in(wait_text(alice_page, lambda t: len(sizes_in(t)) >= 2))
    expect(sizes and resized and resized[-1] != sizes[-1], "a resized window resizes the host's terminal", (sizes, resized))
    alice_page.set_viewport_size({"width": 1100, "height": 800})

    # max_connections is one count for web terminals and ssh: a second terminal and an ssh
    # connection are refused while this one is open, with the limit's own words.
    second = watch(alice_context.new_page())
    second.goto(base + "/web/servers")
    second.get_by_role("button", name="Connect to web1").click()
    second.wait_for_load_state()
    wait_state(second, "ended")
    refusal = second.locator("#terminal-status").inner_text()
    expect("max" in refusal.lower() or "limit" in refusal.lower(), "a second web terminal is refused by max_connections", refusal)
    second.screenshot(path=shots + "/terminal-refused.png", full_page=True)
    second.close()
    # (The web session's idle timeout is seconds long here: the terminal is kept busy.)
    run(alice_page, "true")
    refused_ssh = subprocess.run(pcsh["ssh"], capture_output=True, text=True, timeout=60)
    expect(refused_ssh.returncode != 0 and "via-ssh" not in refused_ssh.stdout, "ssh is refused while the web terminal holds the one connection",
           refused_ssh.stdout + refused_ssh.stderr)
    alice_page.get_by_role("button", name="Close session").click()
    wait_state(alice_page, "ended")
    expect("closed" in alice_page.locator("#terminal-status").inner_text(), "Close session ends the terminal", alice_page.locator("#terminal-status").inner_text())
    allowed_ssh = None
    for attempt in range(20):
        allowed_ssh = subprocess.run(pcsh["ssh"], capture_output=True, text=True, timeout=60)
        if allowed_ssh.returncode == 0:
            break
        time.sleep(0.25)
    expect("via-ssh" in allowed_ssh.stdout, "with the terminal closed, ssh gets the connection", allowed_ssh.stdout + allowed_ssh.stderr)

    # The session's recording plays in the browser and shows the 42.
    alice_page.goto(base + "/web/recordings")
    expect(alice_page.locator("tbody tr").count() >= 1, "alice's recordings list her web terminal session")
    alice_page.locator("tbody tr").filter(has_text="web1").last.get_by_role("link").click()
    alice_page.wait_for_load_state()
    wait_state(alice_page, "ready", selector="#player")
    alice_page.get_by_label("Speed").select_option("16")
    alice_page.get_by_role("button", name="Play").click()
    wait_state(alice_page, "ended", selector="#player", timeout=60000)
    played = screen(alice_page, "#player")
    expect(any(line.strip() == "42" for line in played.splitlines()), "the recording plays in the browser and shows 42", played[-400:])
    if args["enhanced_recording"]:
        # The commands enhanced recording saw, beside the screen: choosing one moves playback to it.
        alice_page.wait_for_function("document.querySelectorAll('#player-activity li').length > 0", timeout=10000)
        listed = alice_page.locator("#player-activity").inner_text()
        expect("sed" in listed and "stty" in listed, "the player lists the session's commands (enhanced recording)", listed[:400])
        # The seek bar's value, not the clock beside it: that shows whole seconds, and a command
        # within the last second of a short session showed the same "0:02" before and after.
        at_end = float(alice_page.locator("#player-seek").input_value())
        alice_page.locator("#player-activity button", has_text="stty").first.click()
        moved = float(alice_page.locator("#player-seek").input_value())
        expect(moved < at_end and alice_page.locator("#player-activity li[data-past]").count() >= 1,
               "choosing a command moves playback back to it (from the end)",
               (at_end, moved, alice_page.locator("#player-position").inner_text()))
    alice_page.locator("#player-seek").fill("0")
    expect("0:00" in alice_page.locator("#player-position").inner_text(), "seeking back to the start", alice_page.locator("#player-position").inner_text())
    alice_page.screenshot(path=shots + "/player.png", full_page=True)

    # What the roles do not allow is refused with the reason, before any connection is made.
    for query, why, what in [("node=db1&login=root", "No server", "a server the roles do not show"),
                             ("node=web1&login=ubuntu", "Access denied", "a login the roles do not allow")]:
        alice_page.goto(base + "/web/terminal?" + query)
        wait_state(alice_page, "ended")
        status = alice_page.locator("#terminal-status").inner_text()
        expect(status.startswith("Not connected") and why in status, "a terminal to %s is refused" % what, status)

    # The socket itself: not from another origin, not without a session.
    def handshake(origin, cookie):
        raw = socket.create_connection((origin_host, origin_port), timeout=10)
        tls = ssl._create_unverified_context().wrap_socket(raw, server_hostname=origin_host)
        # db1 is not alice's: an accepted socket is refused at once, before any SSH connection.
        lines = ["GET /web/terminal/socket?node=db1&login=root HTTP/1.1", "Host: %s:%d" % (origin_host, origin_port), "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", "Origin: " + origin]
        if cookie:
            lines.append("Cookie: __Host-portcullis_session=" + cookie)
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = tls.recv(4096).split(b"\r\n")[0].decode()
        tls.close()
        return answer
    session_cookie = next(c["value"] for c in alice_context.cookies() if c["name"] == "__Host-portcullis_session")
    expect(" 101 " in handshake(base, session_cookie) + " ", "the console's own page may open the socket (the control for the two below)")
    expect(" 101 " not in handshake("https://evil.example", session_cookie), "a socket from another origin is refused (no cross-site WebSocket)")
    expect(" 101 " not in handshake(base, None), "a socket without a session is refused")


    page.goto(base + "/web/servers")
    if "/web/login" in page.url:  # the idle timeout is short here, and sign-ins above may wait for a fresh code
        sign_in(page, bob)
    expect(page.url.endswith("/web/servers"), "bob is signed in", page.url)
    open_terminal(alice_page)
    page.goto(base + "/web/sessions")
    expect(page.get_by_role("cell", name="alice").count() >= 1, "bob's live sessions page lists alice's terminal")
    page.screenshot(path=shots + "/sessions.png", full_page=True)
    page.get_by_role("button", name="End the session of alice on web1").first.click()
    page.wait_for_load_state()
    expect(page.locator(".notice").count() == 1, "the sessions page says the session was ended")
    wait_state(alice_page, "ended", timeout=10000)
    killed = alice_page.locator("#terminal-status").inner_text()
    expect("terminated by bob" in killed, "the killed terminal's page says who ended it", killed)

    # The audit log shows the terminal's session.start and session.end (bob reads it).
    for name in ["session.start", "session.end"]:
        page.goto(base + "/web/audit?event=%s&user=alice" % name)
        expect(page.locator("tbody tr").count() >= 1, "the audit log shows alice's %s" % name)

    # A lock ends a live terminal within 2 s, with the lock's message.
    open_terminal(alice_page)
    subprocess.run(args["pcctl"] + ["lock", "--name", "terminal-lock", "--user", "alice", "--message", "terminal lock test", "--ttl", "10m",
                                    "--config", args["config"]], check=True, capture_output=True)
    started = time.time()  # the lock is in force once pcctl has returned
    wait_state(alice_page, "ended", timeout=5000)
    took = time.time() - started
    expect(took < 2.0, "a lock ends the web terminal within 2 s", "%.2f s" % took)
    expect("terminal lock test" in alice_page.locator("#terminal-status").inner_text(), "the locked terminal says why (the lock's message)",
           alice_page.locator("#terminal-status").inner_text())
    alice_page.screenshot(path=shots + "/terminal-locked.png", full_page=True)
    subprocess.run(args["pcctl"] + ["rm", "lock/terminal-lock", "--config", args["config"]], check=True, capture_output=True)

    # Signing out in one tab ends the terminal open in another.
    alice_page.goto(base + "/web/servers")
    if "/web/login" in alice_page.url:
        sign_in(alice_page, alice)
    open_terminal(alice_page)
    other = watch(alice_context.new_page())
    other.goto(base + "/web/servers")
    other.get_by_role("button", name="Sign out").click()
    other.wait_for_load_state()
    wait_state(alice_page, "ended", timeout=10000)
    expect("signed out" in alice_page.locator("#terminal-status").inner_text(), "signing out ends the open terminal",
           alice_page.locator("#terminal-status").inner_text())
    alice_context.close()

    # The compliance reports (bob: reports: [read]): AC-10 with its chart as a page, every form to download.
    page.goto(base + "/web/servers")
    if "/web/login" in page.url:
        sign_in(page, bob)
    page.get_by_role("link", name="Reports").click()
    page.wait_for_load_state()
    page.screenshot(path=shots + "/reports.png", full_page=True)
    page.get_by_role("link", name="View the AC-10 concurrent session control report").click()
    page.wait_for_load_state()
    expect("AC-10" in page.title() and page.locator("svg").count() >= 1, "the AC-10 report shows as a page with its chart", page.title())
    page.screenshot(path=shots + "/report-ac10.png", full_page=True)
    for name, form, check in [("ac-10", "json", lambda text: "baseline" in json.loads(text)),
                              ("ac-10", "oscal", lambda text: "assessment-results" in json.loads(text)),
                              ("ac-10", "md", lambda text: "AC-10" in text),
                              ("fedramp", "json", lambda text: "controls" in text),
                              ("fedramp", "html", lambda text: "<html" in text)]:
        download = page.request.get(base + "/web/reports/%s?format=%s&days=30&download=1" % (name, form))
        expect(download.status == 200 and "attachment" in download.headers.get("content-disposition", "") and check(download.text()),
               "the %s report downloads as %s" % (name, form), (download.status, download.text()[:200]))
    page.goto(base + "/web/servers")

    # A lock ends bob's web session at his next request.
    subprocess.run(args["pcctl"] + ["lock", "--user", "bob", "--message", "browser test", "--ttl", "10m", "--config", args["config"]],
                   check=True, capture_output=True)
    page.goto(base + "/web/servers")
    expect("ended=lock" in page.url, "a lock ends the web session", page.url)

    # Idle: alice signs in and does nothing past the idle timeout.
    sign_in(page, alice)
    expect(page.url.endswith("/web/servers"), "alice signs in again")
    time.sleep(args["idle_seconds"] + 1.5)
    page.goto(base + "/web/servers")
    expect("ended=idle" in page.url and page.get_by_text("without activity").count() == 1, "the idle timeout signs the browser out", page.url)
    page.screenshot(path=shots + "/signed-out-idle.png", full_page=True)

    # Three wrong codes lock the name, as on the command line: then even the right one fails.
    carol = args["users"]["carol"]
    for attempt in range(3):
        sign_in(page, carol, code="000000" if totp(carol["secret"]) != "000000" else "111111")
        expect(page.url.endswith("/web/login") and page.locator(".problem").count() == 1, "wrong code %d refused" % (attempt + 1))
    sign_in(page, carol)
    expect("locked" in page.locator(".problem").inner_text(), "after three wrong codes the name is locked", page.locator(".problem").inner_text())

    expect(not problems, "no page logged a console error", problems)
    expect(not foreign, "no request went to another origin", foreign)
    browser.close()

print("web console: passed (%d checks)" % len(checked))
