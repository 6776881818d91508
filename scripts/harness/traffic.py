"""What clients do during a run: submit tasks (each with its Idempotency-Key, retried until a relay
accepts it), register endpoints, and receive webhooks, each verified with the unmodified PyPI packages
`standardwebhooks` and `svix` (and `v1a` with `cryptography`)."""
import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

from harness.cluster import free_port
from harness.verify import verifies_v1a

API_KEY = "chaos-key"
UPSTREAM_KEY = "chaos-upstream-key"
TERMINAL = ("task.succeeded", "task.failed")


class Receiver:
    """A webhook endpoint that verifies each delivery with both libraries (and, given a public key, its
    v1a signature) and records it."""

    def __init__(self, secret, public_key=None, port=0):
        self.lock = threading.Lock()
        self.deliveries = []  # (webhook-id, type, task_id, error code, verified by all)
        self.videos = {}      # task_id -> the videos of its task.succeeded event
        verifiers = (StandardWebhook(secret), SvixWebhook(secret))
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                verified = True
                for verifier in verifiers:
                    try:
                        verifier.verify(body, headers)
                    except Exception:  # noqa: BLE001 - any refusal is an unverified delivery
                        verified = False
                if public_key and not verifies_v1a([public_key], headers, body):
                    verified = False
                event = json.loads(body)
                error = event["data"].get("error") or {}
                # Why a submission's outcome is unknown: the relay stopped with it on the wire (a kill, or a
                # lease lost while the database was away), or the upstream's answer was lost or unreadable.
                error = error.get("code") if error.get("code") != "submission_outcome_unknown" else \
                    "outcome_unknown_relay" if "relay stopped" in error.get("message", "") else "outcome_unknown_upstream"
                with receiver.lock:
                    receiver.deliveries.append((headers.get("webhook-id"), event["type"], event["data"]["task_id"], error, verified))
                    if event["type"] == "task.succeeded":
                        receiver.videos[event["data"]["task_id"]] = event["data"].get("videos", [])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return list(self.deliveries)


def model_of(index):
    """Every third task asks for the quality model, so usage is reconciled per model."""
    return "veo3.1-quality-official" if index % 3 == 0 else "veo3.1-fast-official"


def task_as_relay_tells(url, task):
    """A task as the relay's API answers it (for a lost task's report)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{url}/v1/tasks/{task}", headers={"Authorization": f"Bearer {API_KEY}"}),
                                    timeout=10) as response:
            data = json.load(response).get("data", {})
    except (OSError, ValueError) as error:
        return f"unreadable ({error})"
    return json.dumps(data)[:400]


def submit(urls, callback_url, index, rng_seed, start_at, stop_at):
    """Submits task `index` at `start_at` with its Idempotency-Key until a relay accepts it; returns its id
    and the attempts it took."""
    rng = random.Random(rng_seed)
    time.sleep(max(0, start_at - time.monotonic()))
    body = json.dumps({"model": model_of(index), "prompt": f"chaos task {index}",
                       "callback_url": callback_url, "metadata": {"n": index}}).encode()
    attempts = 0
    while time.monotonic() < stop_at:
        attempts += 1
        request = urllib.request.Request(rng.choice(urls) + "/v1/videos/generations", data=body, method="POST", headers={
            "Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json", "Idempotency-Key": f"chaos-{index}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)["data"][0]["task_id"], attempts
        except (OSError, urllib.error.HTTPError, http.client.HTTPException):
            # Relay down or busy, or killed while answering (an answer cut mid-body): try again, maybe
            # elsewhere, with the same Idempotency-Key, as a real client would.
            time.sleep(0.05 + rng.random() * 0.1)
    raise RuntimeError(f"task {index} was never accepted")


def register_endpoints(url, count):
    """Registers `count` endpoints for the client, each with a receiver on a port of its own (the port is
    in the endpoint's URL, the secret only in the answer); returns (endpoint id, takes every event, receiver)."""
    endpoints = []
    for index in range(count):
        all_events = index == 0
        port = free_port()
        fields = {"url": f"http://127.0.0.1:{port}/endpoint/{index}", "description": f"chaos endpoint {index}",
                  "event_types": ["task.submitted", "task.progress", *TERMINAL] if all_events else list(TERMINAL),
                  "signatures": ["v1"] if all_events else ["v1", "v1a"]}
        request = urllib.request.Request(url + "/v1/endpoints", data=json.dumps(fields).encode(), method="POST", headers={
            "Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            created = json.load(response)["data"]
        endpoints.append((created["id"], all_events, Receiver(created["secret"], created.get("public_key"), port=port)))
    return endpoints
