"""Drives the web console in a real browser (Debian's chromium through Playwright), as a person.

Run by WebConsoleBrowserTests with one JSON argument: the console's URL, the users (name,
password, TOTP secret, the servers their roles show), pcctl and the daemon's configuration (to lock a
user mid-session), the idle timeout, and a directory for screenshots. Exits non-zero with the
first broken expectation; prints what it checked.
"""
import base64, hmac, json, struct, subprocess, sys, time
from urllib.parse import urlparse

from playwright.sync_api import sync_playwright

args = json.loads(sys.argv[1])
base = args["url"].rstrip("/")
origin = urlparse(base)
shots = args["screenshots"]
checked = []


def expect(condition, what, detail=""):
    if not condition:
        sys.exit("web console: FAIL: %s%s" % (what, (": " + str(detail)) if detail else ""))
    checked.append(what)
    print("web console: ok: " + what, flush=True)


def totp(secret, offset=0):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30 + offset), "sha1").digest()
    start = digest[-1] & 15
    return "%06d" % ((struct.unpack(">I", digest[start:start + 4])[0] & 0x7FFFFFFF) % 1000000)


def fresh_code(user):
    """A code not used before (each works once): wait for the next 30 s step if needed."""
    step = int(time.time()) // 30
    if user.get("last_step") == step:
        time.sleep(30 - time.time() % 30 + 0.5)
        step = int(time.time()) // 30
    user["last_step"] = step
    return totp(user["secret"])


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
    context = browser.new_context(ignore_https_errors=True)
    problems, foreign = [], []
    context.on("request", lambda request: foreign.append(request.url)
               if urlparse(request.url).netloc and urlparse(request.url).netloc != origin.netloc else None)

    # Pages answered with the status they mean (a refused sign-in 401, a forbidden page 403) make
    # chromium log "Failed to load resource"; those are expected, any other error is not.
    expected = {("/web/login", 401), ("/web/audit", 403)}

    def console(message):
        if message.type != "error":
            return
        status = message.text.rsplit("status of ", 1)[-1].split(" ")[0] if "status of " in message.text else ""
        if status.isdigit() and (urlparse(message.location.get("url", "")).path, int(status)) in expected:
            return
        problems.append("%s (%s)" % (message.text, message.location.get("url")))

    def watch(page):
        page.on("console", console)
        page.on("pageerror", lambda error: problems.append(str(error)))
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
    expect("script-src" not in headers.get("content-security-policy", "x") and "default-src 'none'" in headers.get("content-security-policy", ""),
           "Content-Security-Policy allows no script", headers.get("content-security-policy"))
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
