#!/usr/bin/python3
"""The compliance console in a real browser: Debian's Chromium, headless,
driven over WebDriver by selenium (python3-selenium, chromium-driver).

    console_browser.py '<json args>'

Args: "base" (https://127.0.0.1:PORT), "admin" and "reviewer" ([name,
password]), "downloads" and "shots" (directories), "blocked" (text of a
blocked message to search for), "blocked_reason", "xss" (a body that must
show as text), "xss_from" (its sender), "release" and "reject" (held
bodies), "hold_user".

Each step asserts what a compliance officer would see; the last line of
stdout is a JSON object of what the Rust test checks further (the
export's manifest, the entries it expects in the chain). Progress goes to
stderr.
"""

import hashlib
import http.client
import io
import json
import os
import ssl
import sys
import tarfile
import time
import urllib.parse

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ARGS = json.loads(sys.argv[1])
BASE = ARGS["base"]
HOST = urllib.parse.urlparse(BASE)
OUT = {"steps": []}


def step(text):
    OUT["steps"].append(text)
    print(f"-- {text}", file=sys.stderr, flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def raw(method, path, body=None, cookie=None):
    """One request without the browser (no cookies unless given, no redirects)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection(HOST.hostname, HOST.port, context=ctx, timeout=20)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["Cookie"] = cookie
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    out = (r.status, r.getheader("Location") or "", r.read().decode("utf-8", "replace"), dict(r.getheaders()))
    c.close()
    return out


def browser(javascript=True):
    opts = webdriver.ChromeOptions()
    if not javascript:
        opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1366,900", "--lang=en-US"):
        opts.add_argument(a)
    opts.set_capability("acceptInsecureCerts", True)
    if javascript:
        opts.add_experimental_option("prefs", {
            "download.default_directory": ARGS["downloads"],
            "download.prompt_for_download": False,
        })
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    d.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": ARGS["downloads"]})
    d.set_page_load_timeout(30)
    return d


def go(d, element, javascript=True):
    """Clicks a submit button or link and waits for the next page."""
    old = d.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(_):
        try:
            old.tag_name  # any call on the old page's element
            return False
        except Exception:  # stale, or detached: the next page is in
            return True

    WebDriverWait(d, 20).until(replaced)
    if javascript:
        WebDriverWait(d, 20).until(lambda _: d.execute_script("return document.readyState") == "complete")
    else:
        WebDriverWait(d, 20).until(lambda _: d.find_elements(By.TAG_NAME, "main"))


def no_alert(d, where):
    try:
        text = d.switch_to.alert.text
    except NoAlertPresentException:
        return
    raise AssertionError(f"a script ran on {where}: alert({text})")


def sign_in(d, who, password, expect_ok=True):
    d.get(BASE + "/login")
    d.find_element(By.NAME, "account").send_keys(who)
    d.find_element(By.NAME, "password").send_keys(password)
    go(d, d.find_element(By.CSS_SELECTOR, "form.login button"))
    if expect_ok:
        check("/login" not in d.current_url, f"{who} could not sign in: {d.page_source[:500]}")


def sign_out(d):
    go(d, d.find_element(By.CSS_SELECTOR, "form.who button"))
    check(d.current_url.endswith("/login"), "signing out leads to the sign-in page")


def shot(d, name):
    """The whole page (up to 2,400 px tall), at a fixed width."""
    path = os.path.join(ARGS["shots"], name)
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1366, min(max(height + 140, 900), 2400))
    d.save_screenshot(path)
    d.set_window_size(1366, 900)
    OUT.setdefault("shots", []).append(path)


def main():
    pages = ["/", "/search", "/search?text=x", "/conversation/1", "/event/x", "/held", "/exports",
             "/chain", "/holds", "/users"]
    for p in pages:
        status, location, _, _ = raw("GET", p)
        check(status == 303 and location.startswith("/login"), f"GET {p} without a session: {status} {location}")
    for p, body in [("/exports", "format=jsonl"), ("/held/x", "decision=release&reason=x"),
                    ("/holds", "kind=user&value=x&reason=y"), ("/chain/verify", ""), ("/users", "name=x")]:
        status, location, _, _ = raw("POST", p, body)
        check(status == 303 and location.startswith("/login"), f"POST {p} without a session: {status} {location}")
    status, _, _, headers = raw("GET", "/login")
    csp = headers.get("content-security-policy", "")
    check("default-src 'none'" in csp and "script-src" not in csp, f"strict CSP: {csp}")
    step("without a session every page and export redirects to sign-in; the CSP allows no script")

    # Guessing passwords: the sign-in form's token first, then five wrong
    # passwords for one account; the sixth try, even the right password,
    # waits out the window. Other accounts are not locked.
    status, _, text, headers = raw("GET", "/login")
    token = headers["set-cookie"].split("imgate_login=", 1)[1].split(";", 1)[0]
    jar = f"imgate_login={token}"
    def attempt(name, password):
        body = urllib.parse.urlencode({"login_csrf": token, "account": name, "password": password, "next": "/search"})
        return raw("POST", "/login", body, cookie=jar)[:3]
    for _ in range(5):
        status, _, text = attempt(ARGS["guessed"][0], "a wrong guess")
        check(status == 401 and "Wrong account or password" in text, f"a wrong password: {status}")
    status, _, text = attempt(*ARGS["guessed"])
    check(status == 429 and "Too many failed sign-ins" in text, f"the sixth try is refused: {status}")
    status, _, text = raw("POST", "/login", urllib.parse.urlencode({"account": ARGS["guessed"][0], "password": "x"}), cookie=jar)[:3]
    check(status == 403, f"a sign-in post without the form's token: {status}")
    step("five wrong passwords lock an account for a while; a sign-in post needs the form's token")

    d = browser()
    try:
        d.get(BASE + "/held")
        check("/login" in d.current_url, "the browser is sent to sign in")
        sign_in(d, ARGS["reviewer"][0], "not the password", expect_ok=False)
        check("Wrong account or password" in d.page_source, "a wrong password is refused")
        sign_in(d, *ARGS["reviewer"])
        d.get(BASE + "/holds")
        check("Not for your role" in d.page_source, "a reviewer cannot manage legal holds")
        check(not d.find_elements(By.LINK_TEXT, "Legal holds"), "nor sees the link")
        sign_out(d)
        d.get(BASE + "/search")
        check("/login" in d.current_url, "after signing out the session is gone")
        step("a reviewer signs in, is kept from admin pages, signs out")

        sign_in(d, *ARGS["admin"])
        session = next(c["value"] for c in d.get_cookies() if c["name"] == "imgate_session")
        cookie = next(c for c in d.get_cookies() if c["name"] == "imgate_session")
        check(cookie.get("httpOnly") and cookie.get("secure") and cookie.get("sameSite") == "Strict",
              f"session cookie flags: {cookie}")
        for body in ("kind=user&value=mallory&reason=csrf", "kind=user&value=mallory&reason=csrf&csrf=00"):
            status, _, text, _ = raw("POST", "/holds", body, cookie=f"imgate_session={session}")
            check(status == 403 and "CSRF" in text, f"a form without its CSRF token: {status}")
        d.get(BASE + "/holds")
        check("mallory" not in d.page_source, "the refused form changed nothing")
        step("the admin signs in; HttpOnly, Secure, SameSite=Strict; forms without the CSRF token are refused")

        d.get(BASE + "/search")
        d.find_element(By.NAME, "text").send_keys(ARGS["blocked_words"])
        d.find_element(By.CSS_SELECTOR, "select[name=verdict] option[value=block]").click()
        go(d, d.find_element(By.CSS_SELECTOR, "form.search button"))
        rows = d.find_elements(By.CSS_SELECTOR, "table.results tbody tr")
        check(len(rows) == 1 and ARGS["blocked"] in rows[0].text and "block" in rows[0].text,
              f"the blocked message is found: {[r.text for r in rows]}")
        shot(d, "search.png")
        go(d, rows[0].find_element(By.CSS_SELECTOR, "td.text a"))
        hit = d.find_element(By.CSS_SELECTOR, "article.hit")
        check(ARGS["blocked"] in hit.text and ARGS["blocked_reason"] in hit.text, f"conversation: {hit.text}")
        sha = hit.find_element(By.CSS_SELECTOR, "code.sha").text
        check(len(sha) == 64 and all(c in "0123456789abcdef" for c in sha), f"the decider's sha256: {sha}")
        check(ARGS["blocked_decider"] in hit.text, "the decider's name")
        OUT["conversation_entry"] = int(d.current_url.rsplit("/", 1)[1])
        step("search finds the blocked message; its conversation shows verdict, decider and sha256")

        d.get(BASE + "/search?" + urllib.parse.urlencode({"participant": ARGS["xss_from"]}))
        no_alert(d, "search")
        cells = [c.text for c in d.find_elements(By.CSS_SELECTOR, "td.text")]
        check(any(ARGS["xss"] in c for c in cells), f"the markup is shown as text: {cells}")
        check(not d.find_elements(By.CSS_SELECTOR, "main img, main script"), "no element was made from it")
        link = next(r for r in d.find_elements(By.CSS_SELECTOR, "td.text a") if ARGS["xss"] in r.text)
        go(d, link)
        no_alert(d, "conversation")
        check(ARGS["xss"] in d.find_element(By.CSS_SELECTOR, "article.hit pre.text").text, "as text in its conversation")
        check(not d.find_elements(By.CSS_SELECTOR, "main img, main script"), "no element in the conversation either")
        check(d.execute_script("return typeof window.__xss") == "undefined", "no script ran")
        shot(d, "conversation.png")
        step("a <script> and an onerror <img> in a message show as text; no alert")

        d.get(BASE + "/held")
        articles = d.find_elements(By.CSS_SELECTOR, "article.held")
        check(len(articles) == 2, f"two held messages: {[a.text for a in articles]}")
        shot(d, "held.png")

        def held(body):
            return next(a for a in d.find_elements(By.CSS_SELECTOR, "article.held") if body in a.text)

        held(ARGS["reject"]).find_element(By.CSS_SELECTOR, "button[value=reject]").click()
        check("/held" in d.current_url and len(d.find_elements(By.CSS_SELECTOR, "article.held")) == 2,
              "a decision without a reason is not sent")
        status, _, text, _ = raw("POST", d.find_element(By.CSS_SELECTOR, "form.decide").get_attribute("action").replace(BASE, ""),
                                 urllib.parse.urlencode({"decision": "release", "reason": " ", "csrf": csrf(d)}),
                                 cookie=f"imgate_session={session}")
        check(status == 422 and "needs a reason" in text, f"nor accepted by the server: {status}")
        a = held(ARGS["release"])
        a.find_element(By.NAME, "reason").send_keys("approved by treasury, ticket 4411")
        go(d, a.find_element(By.CSS_SELECTOR, "button[value=release]"))
        check("Released" in d.page_source, "release confirmed")
        a = held(ARGS["reject"])
        a.find_element(By.NAME, "reason").send_keys("needs a second approver")
        go(d, a.find_element(By.CSS_SELECTOR, "button[value=reject]"))
        check("Rejected" in d.page_source, "reject confirmed")
        decided = d.find_element(By.CSS_SELECTOR, "table.results").text
        check("released" in decided and "rejected" in decided and ARGS["admin"][0] in decided, f"decided: {decided}")
        step("one held message released and another rejected, each with a reason")

        d.get(BASE + "/holds")
        d.find_element(By.NAME, "value").send_keys(ARGS["hold_user"])
        d.find_element(By.NAME, "reason").send_keys("matter 2026-114")
        go(d, d.find_element(By.CSS_SELECTOR, "form.inline button"))
        check(ARGS["hold_user"] in d.find_element(By.CSS_SELECTOR, "table.results").text, "the hold is listed")
        step("a legal hold is placed")

        d.get(BASE + "/search?" + urllib.parse.urlencode({"participant": ARGS["xss_from"]}))
        before = set(os.listdir(ARGS["downloads"]))
        d.find_element(By.CSS_SELECTOR, "button[value=jsonl]").click()
        tar_path = None
        for _ in range(200):
            new = [f for f in set(os.listdir(ARGS["downloads"])) - before if f.endswith(".tar")]
            if new:
                tar_path = os.path.join(ARGS["downloads"], new[0])
                break
            time.sleep(0.1)
        check(tar_path, f"the export downloads: {os.listdir(ARGS['downloads'])}")
        with tarfile.open(tar_path) as t:
            files = {m.name: t.extractfile(m).read() for m in t.getmembers()}
        check(set(files) == {"records.jsonl", "manifest.json", "CHAIN.txt"}, f"files: {set(files)}")
        manifest = json.loads(files["manifest.json"])
        lines = files["records.jsonl"].split(b"\n")[:-1]
        check(len(lines) == len(manifest["records"]) > 0, "one manifest entry per record")
        for line, m in zip(lines, manifest["records"]):
            check(hashlib.sha256(bytes.fromhex(m["prev"]) + line).hexdigest() == m["hash"], f"record {m['seq']} re-hashes")
            check(json.loads(line)["seq"] == m["seq"], "in order")
        digest = hashlib.sha256(files["manifest.json"]).hexdigest()
        check(digest in files["CHAIN.txt"].decode(), "CHAIN.txt names the manifest's sha256")
        check(any(ARGS["xss"] in json.loads(l)["event"]["message"]["body"] for l in lines), "the export holds the messages")
        OUT["export"] = {"manifest_sha256": digest, "records": manifest["records"], "file": os.path.basename(tar_path)}
        d.get(BASE + "/exports")
        check(digest in d.page_source, "the export is listed with its manifest's hash")
        step("an export downloads; every record re-hashes to its manifest entry")

        d.get(BASE + "/chain")
        go(d, d.find_element(By.CSS_SELECTOR, "form[action='/chain/verify'] button"))
        check("intact" in d.page_source, f"the chain verifies: {d.find_element(By.TAG_NAME, 'main').text}")
        step("the chain verifies from the console")

        sign_out(d)
        status, location, _, _ = raw("GET", "/search", cookie=f"imgate_session={session}")
        check(status == 303 and location.startswith("/login"), "the old session no longer works")
        step("signed out; the old session cookie is dead")
        no_alert(d, "the end")
    finally:
        d.quit()
    without_javascript()
    print(json.dumps(OUT))


def without_javascript():
    """The same console with JavaScript off: sign in, search, read, sign out."""
    d = browser(javascript=False)
    try:
        d.get(BASE + "/login")
        d.find_element(By.NAME, "account").send_keys(ARGS["reviewer"][0])
        d.find_element(By.NAME, "password").send_keys(ARGS["reviewer"][1])
        go(d, d.find_element(By.CSS_SELECTOR, "form.login button"), javascript=False)
        d.find_element(By.NAME, "text").send_keys(ARGS["blocked_words"])
        go(d, d.find_element(By.CSS_SELECTOR, "form.search button"), javascript=False)
        rows = d.find_elements(By.CSS_SELECTOR, "table.results tbody tr")
        check(len(rows) == 1 and ARGS["blocked"] in rows[0].text, f"search without JavaScript: {[r.text for r in rows]}")
        go(d, rows[0].find_element(By.CSS_SELECTOR, "td.text a"), javascript=False)
        check(ARGS["blocked_reason"] in d.find_element(By.CSS_SELECTOR, "article.hit").text, "a conversation without JavaScript")
        go(d, d.find_element(By.CSS_SELECTOR, "form.who button"), javascript=False)
        check(d.current_url.endswith("/login"), "signing out without JavaScript")
    finally:
        d.quit()
    step("with JavaScript off: sign in, search, a conversation, sign out")


def csrf(d):
    return d.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")


if __name__ == "__main__":
    main()
