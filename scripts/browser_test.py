"""Browser tests: a relay (with its simulator), a webhook receiver and two page origins on loopback,
and headless chromium through selenium. Every server is stopped by this script; chromium is started
and stopped by selenium."""
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

binary, page_path, artifacts = sys.argv[1], sys.argv[2], sys.argv[3]
API_KEY, CONSOLE_TOKEN = "browser-test-key", "browser-console-token-0123456789"
LIMIT = 90  # seconds: a guard against hanging, never a synchronisation


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Receiver(http.server.BaseHTTPRequestHandler):
    """Answers 500 until told otherwise, so deliveries end as dead letters."""
    failing = True
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.received.append((self.headers.get("webhook-id"), body))
        self.send_response(500 if Receiver.failing else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Endpoint(http.server.BaseHTTPRequestHandler):
    """A registered endpoint: the path says whether it is up (204) or down (503)."""
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Endpoint.received.append((self.path, json.loads(body)["type"]))
        self.send_response(503 if self.path.startswith("/down") else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Page(http.server.BaseHTTPRequestHandler):
    """An app's own origin serving the README's example page."""
    def do_GET(self):
        with open(page_path, "rb") as file:
            body = file.read()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def api(method, path, body=None):
    request = urllib.request.Request(relay + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def healthy():
    if process.poll() is not None:
        raise AssertionError(f"the relay exited with {process.returncode}")
    try:
        return urllib.request.urlopen(relay + "/healthz", timeout=2).status == 200
    except OSError:
        return False


def until(what, condition):
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (NoSuchElementException, StaleElementReferenceException):
            value = None  # the page is being replaced: look again
        if value:
            return value
        time.sleep(0.1)  # re-check interval, not synchronisation
    raise AssertionError(f"timed out waiting for {what}")


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print(f"  ✔ {message}")


receiver, app, other_app, endpoints = serve(Receiver), serve(Page), serve(Page), serve(Endpoint)
app_origin = f"http://127.0.0.1:{app.server_port}"
port = free_port()
relay = f"http://127.0.0.1:{port}"
work = tempfile.mkdtemp()
environment = dict(os.environ, VEO_RELAY_API_KEYS=API_KEY, VEO_RELAY_WEBHOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                   VEO_RELAY_CONSOLE_TOKEN=CONSOLE_TOKEN, VEO_RELAY_CORS_ORIGINS=app_origin,
                   VEO_RELAY_CALLBACK_ALLOW_HTTP="true", VEO_RELAY_CALLBACK_ALLOW_CIDRS="127.0.0.0/8",
                   VEO_RELAY_SIMULATOR_TIME_SCALE="0.02", VEO_RELAY_RETRY_SCHEDULE="0,1s", VEO_RELAY_PORT=str(port),
                   VEO_RELAY_DEFAULT_BUDGET="per_day=500,in_flight=50", VEO_RELAY_DATABASE=os.path.join(work, "relay.sqlite"),
                   VEO_RELAY_STORE_VIDEOS=os.path.join(work, "videos"), VEO_RELAY_PUBLIC_URL=relay)
# A second upstream key, added and disabled as an operator does (the built-in simulator knows only its own key):
# the console shows it by name and last four characters only.
STORED_KEY = "sk-browser-stored-4321"
subprocess.run([binary, "upstream", "keys", "add", "spare", "--max-in-flight", "3"], env=environment, input=STORED_KEY + "\n",
               text=True, check=True, stdout=subprocess.DEVNULL)
subprocess.run([binary, "upstream", "keys", "disable", "spare"], env=environment, check=True, stdout=subprocess.DEVNULL)
log = open(os.path.join(artifacts, "relay.log"), "w")
process = subprocess.Popen([binary, "serve"], env=environment, stdout=log, stderr=subprocess.STDOUT)
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-default-apps", "--window-size=1200,900"]:
    options.add_argument(flag)
driver = None
try:
    until("the relay", healthy)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)

    print("README example page, from another origin, following a watch_url")
    hostile = "<script>window.pwned = 1</script> a red kite over the dunes"
    accepted = api("POST", "/v1/videos/generations", {"model": "veo3.1-fast-official", "prompt": hostile, "delivery": "stream"})
    watch_url = accepted["data"][0]["watch_url"]
    check("watch_token=" in watch_url and API_KEY not in watch_url, "the watch_url carries a token, not the API key")
    driver.get(f"{app_origin}/watch.html?watch_url={urllib.parse.quote(watch_url, safe='')}")
    until("the video link", lambda: driver.find_elements(By.CSS_SELECTOR, "a.video"))
    # The relay's stored copy, played with the watch token from another origin (readyState 2: a frame is there).
    until("the stored video to play", lambda: driver.execute_script(
        "const v = document.querySelector('#result video'); return v !== null && v.readyState >= 2"))
    driver.save_screenshot(os.path.join(artifacts, "watch-page.png"))
    check("/videos/0?watch_token=" in driver.find_element(By.CSS_SELECTOR, "#result video").get_attribute("src"),
          "the page plays the relay's stored copy with the watch token")
    check(driver.find_element(By.ID, "status").text == "completed", "the page shows the task completed")
    check(driver.find_element(By.ID, "progress").get_attribute("value") == "100", "the progress bar is full")
    check(driver.find_element(By.CSS_SELECTOR, "a.video").get_attribute("href").endswith(".mp4"), "the page links the final video")
    check(driver.find_element(By.ID, "prompt").text.startswith("<script>"), "a hostile prompt shows as text on the page")
    check(driver.execute_script("return window.pwned === undefined"), "and does not run")
    driver.get(f"http://127.0.0.1:{other_app.server_port}/watch.html?watch_url={urllib.parse.quote(watch_url, safe='')}")
    until("the page on an origin not allowed to give up", lambda: driver.find_element(By.ID, "status").text == "stream closed")
    check(not driver.find_elements(By.CSS_SELECTOR, "a.video"), "an origin not configured for CORS cannot read the stream")

    print("console: sign in, replay a dead letter, hostile prompt as text")
    task = api("POST", "/v1/videos/generations", {"model": "veo3.1-fast-official", "prompt": "a lighthouse in fog",
                                                  "metadata": {"order": "LH-4242"},
                                                  "callback_url": f"http://127.0.0.1:{receiver.server_port}/hooks"})["data"][0]["task_id"]
    until("the delivery to be dead-lettered",
          lambda: api("GET", f"/v1/tasks/{task}")["data"].get("callback", {}).get("state") == "failed")
    dead_id = Receiver.received[-1][0]
    driver.get(relay + "/console/tasks")
    check(driver.current_url.endswith("/console/sign-in"), "the console asks to sign in")
    driver.find_element(By.ID, "token").send_keys(CONSOLE_TOKEN)
    driver.find_element(By.ID, "sign-in").click()
    until("the overview", lambda: driver.current_url.endswith("/console"))
    charts = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
    check(len(charts) == 8, f"the overview draws the last hour and day as charts ({len(charts)})")
    check(driver.find_elements(By.CSS_SELECTOR, "svg.chart .series"), "the run so far is drawn")
    driver.save_screenshot(os.path.join(artifacts, "console-overview.png"))
    driver.find_element(By.ID, "pause").click()
    until("the switch to show paused", lambda: driver.find_elements(By.CSS_SELECTOR, "p.paused"))
    check("all clients" in driver.find_element(By.CSS_SELECTOR, "p.paused").text, "paused for all clients")
    driver.save_screenshot(os.path.join(artifacts, "console-paused.png"))
    driver.find_element(By.ID, "resume").click()
    until("the switch to show running", lambda: driver.find_elements(By.ID, "running"))
    driver.get(relay + "/console/upstream")
    spare = driver.find_element(By.ID, "key-spare").text
    check("…4321" in spare and "disabled" in spare and STORED_KEY not in driver.page_source,
          "the Upstream page lists the stored key by its last four characters, never whole")
    check("takes work" in driver.find_element(By.ID, "key-default").text, "and the configured key's standing")
    driver.save_screenshot(os.path.join(artifacts, "console-upstream.png"))
    driver.get(relay + "/console/clients")
    check("per_day=500,in_flight=50" in driver.find_element(By.ID, "clients").text, "the client's budget is listed")
    driver.find_element(By.CSS_SELECTOR, "#clients a[href*='/console/usage?client=']").click()
    until("the client's usage page", lambda: "/console/usage?client=" in driver.current_url)
    bars = driver.find_elements(By.CSS_SELECTOR, "#usage-chart svg.chart rect.bar")
    check(len(bars) == 1 and float(bars[0].get_attribute("height")) > 0, "the daily chart draws today's generations as a bar")
    check("2 of 500 (498 left)" in driver.find_element(By.ID, "budget").text, "the budget shows what is used and left")
    check("veo3.1-fast-official" in driver.find_element(By.ID, "usage-models").text, "usage is broken down by model")
    driver.save_screenshot(os.path.join(artifacts, "console-usage.png"))
    driver.get(relay + "/console/tasks")
    check(hostile in driver.find_element(By.ID, "tasks").text, "the task list shows the hostile prompt as text")
    check(driver.execute_script("return window.pwned === undefined"), "and it does not run")
    driver.find_element(By.ID, "search").send_keys("LH-4242")
    driver.find_element(By.ID, "filter").click()
    until("the search results", lambda: "q=LH-4242" in driver.current_url)
    rows = driver.find_elements(By.CSS_SELECTOR, "#tasks tr td:first-child a")
    check([row.text for row in rows] == [task], "the search finds the task by its metadata value, and only it")
    driver.save_screenshot(os.path.join(artifacts, "console-search.png"))
    driver.get(relay + "/console/dead-letters")
    row = driver.find_element(By.XPATH, f"//table[@id='dead-letters']//tr[td[text()='{dead_id}']]")
    driver.save_screenshot(os.path.join(artifacts, "console-dead-letter.png"))
    check(task in row.text, "the dead letter is listed")
    Receiver.failing = False
    row.find_element(By.CSS_SELECTOR, "button.replay").click()
    until("the task page after Replay", lambda: f"/console/tasks/{task}" in driver.current_url)
    check("queued" in driver.find_element(By.ID, "notice").text, "the console confirms the replay")

    def delivered():
        driver.refresh()
        return driver.find_element(By.CSS_SELECTOR, f".delivery-state[data-event='{dead_id}']").text == "delivered"
    until("the delivery to show as delivered", delivered)
    driver.save_screenshot(os.path.join(artifacts, "console-replayed.png"))
    check(Receiver.received[-1][0] == dead_id, "the replay carried the same webhook-id")
    driver.get(relay + "/console/dead-letters")
    check("No dead letters." in driver.page_source, "the dead-letter list is empty again")

    print("console: endpoints with their health, the test button, disable and enable")
    base = f"http://127.0.0.1:{endpoints.server_port}"
    up = api("POST", "/v1/endpoints", {"url": f"{base}/up", "description": "queue consumer"})["data"]
    down = api("POST", "/v1/endpoints", {"url": f"{base}/down", "event_types": ["task.succeeded", "task.failed"]})["data"]
    api("POST", "/v1/videos/generations", {"model": "veo3.1-fast-official", "prompt": "a heron at dawn", "delivery": "stream"})

    def health(endpoint_id):
        return next(e for e in api("GET", "/v1/endpoints")["data"] if e["id"] == endpoint_id)["health"]
    until("both endpoints to have been tried", lambda: health(up["id"])["attempts"] >= 2 and health(down["id"])["attempts"] >= 1)
    driver.get(relay + "/console/endpoints")
    up_row, down_row = driver.find_element(By.ID, f"endpoint-{up['id']}"), driver.find_element(By.ID, f"endpoint-{down['id']}")
    check(up_row.find_element(By.CSS_SELECTOR, ".success-rate").text == "100.0 %", "the healthy endpoint's success rate over 24 h")
    check(down_row.find_element(By.CSS_SELECTOR, ".success-rate").text == "0.0 %", "the failing endpoint's success rate over 24 h")
    check(down_row.find_element(By.CSS_SELECTOR, ".last-error").text == "HTTP 503", "its last error")
    driver.save_screenshot(os.path.join(artifacts, "console-endpoints.png"))
    before = len(Endpoint.received)
    up_row.find_element(By.CSS_SELECTOR, "button.test").click()
    until("the test's notice", lambda: driver.find_elements(By.ID, "notice"))
    check("delivered: HTTP 204" in driver.find_element(By.ID, "notice").text, "the Test button reports the attempt's outcome")
    check(("/up", "endpoint.test") in Endpoint.received[before:], "the endpoint received a signed endpoint.test")
    driver.find_element(By.ID, f"endpoint-{down['id']}").find_element(By.CSS_SELECTOR, "button.disable").click()
    until("the endpoint to show disabled", lambda: "disabled;" in driver.find_element(By.ID, "notice").text)
    check(driver.find_element(By.ID, f"endpoint-{down['id']}").find_element(By.CSS_SELECTOR, ".endpoint-state").text == "disabled",
          "the endpoint shows disabled")
    check(driver.find_element(By.ID, f"endpoint-{down['id']}").find_elements(By.CSS_SELECTOR, "button.enable"), "it offers Enable")
    check(not api("GET", f"/v1/endpoints/{down['id']}")["data"]["enabled"], "the API agrees")
    driver.save_screenshot(os.path.join(artifacts, "console-endpoint-disabled.png"))

    hostile_task = accepted["data"][0]["task_id"]
    driver.get(relay + f"/console/tasks/{hostile_task}")
    driver.save_screenshot(os.path.join(artifacts, "console-hostile-prompt.png"))
    check("<script>window.pwned = 1</script>" in driver.find_element(By.ID, "request").text, "the task page shows the prompt as text")
    check(driver.execute_script("return window.pwned === undefined"), "and it does not run")
    until("the task page's player to show the stored video", lambda: driver.execute_script(
        "const v = document.querySelector('video.stored-video'); return v !== null && v.readyState >= 2"))
    driver.save_screenshot(os.path.join(artifacts, "console-video.png"))

    print("console: every page, screenshot")
    for name, path in [("overview", ""), ("tasks", "/tasks"), ("task", f"/tasks/{task}"), ("dead-letters", "/dead-letters"),
                       ("clients", "/clients"), ("endpoints", "/endpoints"), ("usage", "/usage"), ("upstream", "/upstream")]:
        driver.get(relay + "/console" + path)
        check(driver.find_element(By.TAG_NAME, "h1").text != "" and "veo-relay console" in driver.title, f"the {name} page is there")
        driver.save_screenshot(os.path.join(artifacts, f"page-{name}.png"))
    driver.get(relay + "/console")
    choices = [option.text for option in driver.find_elements(By.CSS_SELECTOR, "#switch-client option")]
    check(choices[0] == "all clients" and any("(" in choice for choice in choices[1:]), f"the stop switch offers clients by name: {choices}")
    driver.get(relay + "/console/sign-in")
    check("veo-relay" in driver.find_element(By.TAG_NAME, "main").text, "the sign-in page names the product")
    driver.save_screenshot(os.path.join(artifacts, "page-sign-in.png"))
    print(f"browser tests passed; screenshots in {artifacts}")
except Exception:
    if driver:
        driver.save_screenshot(os.path.join(artifacts, "failure.png"))
    log.flush()
    print(open(os.path.join(artifacts, "relay.log")).read()[-4000:])
    raise
finally:
    if driver:
        driver.quit()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    for server in (receiver, app, other_app, endpoints):
        server.shutdown()
