#!/usr/bin/env python3
"""Crash harness: real processes, SIGKILL at random moments, and an audit of the relay's promises.

  scripts/chaos --mode sqlite   --tasks 300 --kills 5     one relay on a SQLite file
  scripts/chaos --mode postgres --tasks 300 --kills 5     two relays sharing one PostgreSQL database
  scripts/chaos --mode postgres --partitions 3            ... reaching it through a proxy that, now and
                                                          then, stops forwarding for --partition-seconds
  scripts/chaos --stop-signal term                        graceful stops (SIGTERM) instead of kills: the
                                                          relay drains, no submission's outcome is unknown
  scripts/chaos --mode postgres --relays 3 --skew 10      three relays whose hosts' clocks are 0, +10 and -10 s
                --kills 0 --fault-rate 0 --require-no-failures    off (libfaketime): no task may fail
  scripts/chaos --clock-step 60 ...                       every relay's wall clock steps +60 s and back mid-run

The upstream simulator runs with faults (429/500/503 before work; malformed, dropped, 502 and 504
after the job was created). A webhook receiver verifies every delivery with the unmodified PyPI
packages `standardwebhooks` and `svix`. Clients submit N tasks, each with its own Idempotency-Key,
and retry every submission until some relay accepts it, also while relays are down. Meanwhile
relays are killed with SIGKILL K times and restarted. At the end every accepted task must have
exactly one terminal event, delivered and verified; no request may have been submitted upstream
twice; and the relay's usage ledger (`veo-relay usage`, printed) must match the upstream's log of paid
jobs per model. With --store-videos every succeeded task must have one whole stored file per video
(the bytes and SHA-256 its event announced) and no partial download may be left behind. With --endpoints N the
client registers N endpoints first (the first takes every task event with a v1 secret, the others the terminal
ones signed v1 and v1a): each must receive every task's terminal event under the callback's webhook-id, a task's
events in order, no event under two webhook-ids, every signature verified (v1a with PyPI `cryptography` and the
published whpk_ key). Outcome-unknown failures (a job that may exist upstream, never resent) are reported, per kill.
With --partitions, every packet between the relays and PostgreSQL is held for a while, connections
left open (a partition, as during a failover): relays must answer 503 meanwhile, and an upstream answer
in hand must be written afterwards, so partitions shorter than the lease add no outcome-unknown failure.

All traffic stays on 127.0.0.1. Every process started here is stopped by its PID.
"""
import argparse
import base64
import collections
import hashlib
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

API_KEY = "chaos-key"
UPSTREAM_KEY = "chaos-upstream-key"
TERMINAL = ("task.succeeded", "task.failed")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, limit=60):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # any answer means it is up
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"chaos: no answer from {url}")


def verifies_v1a(public_key, headers, body):
    """The spec's v1a check, with an Ed25519 from PyPI `cryptography`: some entry signs `{id}.{timestamp}.{body}`."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key[len("whpk_"):]))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    for entry in headers.get("webhook-signature", "").split(" "):
        if entry.startswith("v1a,"):
            try:
                key.verify(base64.b64decode(entry[len("v1a,"):]), content)
                return True
            except InvalidSignature:
                pass
    return False


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
                if public_key and not verifies_v1a(public_key, headers, body):
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


class PartitionProxy:
    """A TCP proxy to PostgreSQL that can hold every byte in both directions, connections left open."""

    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.flowing = threading.Event()
        self.flowing.set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                inbound, _ = self.listener.accept()
            except OSError:
                return
            try:
                outbound = socket.create_connection(self.target)
            except OSError:
                inbound.close()
                continue
            for source, sink in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self.pump, args=(source, sink), daemon=True).start()

    def pump(self, source, sink):
        try:
            while data := source.recv(65536):
                self.flowing.wait()  # held, in order, while partitioned
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def partition(self, seconds):
        self.flowing.clear()
        time.sleep(seconds)
        self.flowing.set()


class Clocks:
    """Each relay's wall clock, through libfaketime (Debian's faketime; the monotonic clock untouched):
    relay i is `skew` seconds off in turn (0, +skew, -skew, ...), and all of them read a step from a file
    that `step` rewrites while they run. None: every relay on the host's clock."""

    def __init__(self, skew, directory):
        self.skew = skew
        self.file = os.path.join(directory, "clock-step")
        self.relays = set()
        self.stepped = 0

    def offset(self, index):
        return [0, self.skew, -self.skew][index % 3]

    def command(self, index, argv):
        # The offset goes in the file libfaketime reads (re-read every second); `faketime` sets up the
        # preload, and FAKETIME is taken away so that the file decides (a bare LD_PRELOAD loses a Swift
        # program's arguments).
        self.relays.add(index)
        self.write(index, self.offset(index) + self.stepped)
        return ["faketime", "-f", "+0s", "env", "-u", "FAKETIME", f"FAKETIME_TIMESTAMP_FILE={self.file}.{index}", *argv]

    def step(self, seconds):
        """Every relay's wall clock moves by `seconds` from its offset, at once."""
        self.stepped = seconds
        for index in sorted(self.relays):
            self.write(index, self.offset(index) + seconds)

    def write(self, index, seconds):
        """Relay `index`'s file, replaced whole, so libfaketime never reads half of it."""
        own = self.file + f".{index}"
        with open(own + ".new", "w") as f:
            f.write(f"{seconds:+d}s\n")
        os.replace(own + ".new", own)


class Relays:
    """The relay processes of one run, each restartable on its own port and database."""

    def __init__(self, binary, count, database, environment, logs, clocks=None):
        self.binary, self.database, self.logs = binary, database, logs
        self.environment = environment
        self.clocks = clocks
        self.ports = [free_port() for _ in range(count)]
        self.processes = [None] * count
        self.starts = [0] * count
        self.lock = threading.Lock()

    def start(self, index):
        self.starts[index] += 1
        log = open(os.path.join(self.logs, f"relay-{index}-{self.starts[index]}.log"), "w")
        env = dict(self.environment, VEO_RELAY_PORT=str(self.ports[index]), VEO_RELAY_DATABASE=self.database)
        argv = [self.binary, "serve"]
        if self.clocks:
            argv = self.clocks.command(index, argv)
            env.update(FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_CACHE_DURATION="1")
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        with self.lock:
            self.processes[index] = process
        wait_http(f"http://127.0.0.1:{self.ports[index]}/healthz")

    @staticmethod
    def relay_pid(process):
        """The relay's own process: under faketime, the one child of the faketime process."""
        if os.path.basename(process.args[0]) != "faketime":
            return process.pid
        with open(f"/proc/{process.pid}/task/{process.pid}/children") as f:
            return int(f.read().split()[0])

    def stop(self, index, how):
        """SIGKILL, or SIGTERM and the relay's own drain (under the 25 s default, nothing cuts it short)."""
        with self.lock:
            process = self.processes[index]
        os.kill(self.relay_pid(process), signal.SIGKILL if how == "kill" else signal.SIGTERM)
        process.wait()

    def urls(self):
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def stop_all(self):
        for process in self.processes:
            if process and process.poll() is None:
                try:
                    os.kill(self.relay_pid(process), signal.SIGTERM)
                except (OSError, IndexError, ValueError):
                    process.send_signal(signal.SIGTERM)
        for process in self.processes:
            if process:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


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


def usage_by_model(binary, database):
    """Prints `veo-relay usage` for the run (since yesterday, in case it crossed a UTC midnight) and
    returns generations per model from it."""
    since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86_400))
    table = subprocess.run([binary, "usage", "--database", database, "--since", since],
                           capture_output=True, text=True, check=True).stdout
    print("chaos: usage ledger (veo-relay usage)")
    lines = table.splitlines()
    header = lines[0].split()
    generations = collections.Counter()
    for line in lines:
        print(f"chaos:   {line}")
        cells = line.split()
        if cells[0] not in ("day", "total"):
            row = dict(zip(header, cells))
            generations[row["model"]] += int(row["generations"])
    return generations


def interrupted_downloads(logs):
    """Partial downloads the relays found and removed at start-up: downloads a kill cut short."""
    removed = 0
    for name in os.listdir(logs):
        if name.startswith("relay-") and name.endswith(".log"):
            for line in open(os.path.join(logs, name), errors="replace"):
                match = re.search(r"files[\"=: ]+(\d+)", line) if "removed partial video downloads" in line else None
                removed += int(match.group(1)) if match else 0
    return removed


def submissions_in_flight(logs):
    """The relays' submission concurrency, as their start-up banner states it (sized from the upstream allowance)."""
    for name in sorted(os.listdir(logs)):
        if name.startswith("relay-") and name.endswith(".log"):
            for line in open(os.path.join(logs, name), errors="replace"):
                match = re.search(r"up to (\d+) submissions", line)
                if match:
                    return int(match.group(1))
    return "?"


def audit_stored_videos(directory, videos_by_task, simulator_port):
    """With --store-videos: every succeeded task must have one complete file per stored video (the
    simulator's bytes, the SHA-256 its event announced), and no partial download may be left."""
    with urllib.request.urlopen(f"http://127.0.0.1:{simulator_port}/_simulator/videos/reference.mp4") as r:
        reference = hashlib.sha256(r.read()).hexdigest()
    stored, store_errors, broken = 0, collections.Counter(), []
    for task, videos in videos_by_task.items():
        for index, video in enumerate(videos):
            if "store_error" in video:
                store_errors[video["store_error"]] += 1
                continue
            path = os.path.join(directory, f"{task}.{index}.mp4")
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.exists(path) else None
            if digest == reference == video.get("sha256"):
                stored += 1
            else:
                broken.append(task)
    partials = [name for name in os.listdir(directory) if name.startswith(".partial-")]
    return stored, store_errors, broken, partials


def submit(urls, index, rng_seed, start_at, stop_at):
    """Submits task `index` at `start_at` with its Idempotency-Key until a relay accepts it; returns its id."""
    rng = random.Random(rng_seed)
    time.sleep(max(0, start_at - time.monotonic()))
    body = json.dumps({"model": model_of(index), "prompt": f"chaos task {index}",
                       "callback_url": SUBMIT_CALLBACK, "metadata": {"n": index}}).encode()
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


SUBMIT_CALLBACK = ""


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


def audit_endpoint(receiver, all_events, ids, callback_terminals):
    """Per destination: lost, duplicate, unverified, out-of-order deliveries, and terminal events whose
    webhook-id is not the callback's."""
    deliveries = receiver.snapshot()
    events = collections.defaultdict(set)
    first_arrival = {}
    for position, (webhook_id, kind, task, _, _) in enumerate(deliveries):
        events[(task, kind)].add(webhook_id)
        first_arrival.setdefault(webhook_id, (position, kind, task))
    terminal = {task for (task, kind) in events if kind in TERMINAL}
    # A task has many progress events, each its own; one submitted and one terminal event.
    duplicates = sum(1 for (_, kind), ids_ in events.items() if kind != "task.progress" and len(ids_) > 1)
    duplicates += sum(1 for task in ids if sum(1 for kind in TERMINAL if (task, kind) in events) > 1)
    unverified = sum(1 for delivery in deliveries if not delivery[4])
    mismatched = sum(1 for (task, kind), ids_ in events.items() if kind in TERMINAL and ids_ != callback_terminals.get((task, kind), ids_))
    out_of_order = 0
    if all_events:
        rank = {"task.submitted": 0, "task.progress": 1, "task.succeeded": 2, "task.failed": 2}
        last_rank = {}
        for position, kind, task in sorted(first_arrival.values()):
            if rank[kind] < last_rank.get(task, -1):
                out_of_order += 1
            last_rank[task] = max(rank[kind], last_rank.get(task, -1))
    return len(ids - terminal), duplicates, unverified, out_of_order, mismatched, len(deliveries)


def main():
    global SUBMIT_CALLBACK
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--stop-signal", choices=["kill", "term"], default="kill",
                        help="kill: SIGKILL; term: SIGTERM, a graceful stop, which must leave no submission outcome-unknown")
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=40, help="tasks submitted per second")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--binary", required=True)
    parser.add_argument("--postgres-url", help="an empty database's URL (postgres mode)")
    parser.add_argument("--drain-limit", type=float, default=300, help="seconds to wait for the last webhooks")
    parser.add_argument("--partitions", type=int, default=0, help="postgres mode: times the database stops answering")
    parser.add_argument("--partition-seconds", type=float, default=2, help="how long each partition lasts (under the 4 s lease)")
    parser.add_argument("--store-videos", action="store_true", help="relays store every video (one directory, shared); audit the files")
    parser.add_argument("--endpoints", type=int, default=0, help="endpoints the client registers besides each task's callback")
    parser.add_argument("--relays", type=int, default=2, help="postgres mode: relays sharing the database")
    parser.add_argument("--skew", type=int, default=0, help="seconds each relay's wall clock is off in turn: 0, +skew, -skew")
    parser.add_argument("--clock-step", type=int, default=0,
                        help="every relay's wall clock steps this many seconds forward a third into the run, and back two thirds in")
    parser.add_argument("--require-no-failures", action="store_true",
                        help="fail on any task that ended failed (with --fault-rate 0 the upstream fails none on purpose)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="veo-relay-chaos-")
    secret = subprocess.run([args.binary, "secret"], capture_output=True, text=True, check=True).stdout.strip()

    receiver = Receiver(secret)
    SUBMIT_CALLBACK = f"http://127.0.0.1:{receiver.port}/hooks/chaos"
    simulator_port = free_port()
    simulator_log = open(os.path.join(work, "simulator.log"), "w")
    # With --store-videos each video takes half a second to download, so kills land mid-download.
    simulator = subprocess.Popen([args.binary, "simulate", "--port", str(simulator_port), "--api-key", UPSTREAM_KEY,
                                  "--time-scale", "0.01", "--fault-rate", str(args.fault_rate), "--slow-delay", "0.2",
                                  "--video-seconds", "0.5" if args.store_videos else "0"],
                                 stdout=simulator_log, stderr=subprocess.STDOUT)
    relays = None
    endpoints = []
    try:
        wait_http(f"http://127.0.0.1:{simulator_port}/v1/tasks/x")
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "VEO_RELAY_API_KEYS": API_KEY, "VEO_RELAY_WEBHOOK_SECRET": secret,
            "VEO_RELAY_UPSTREAM_URL": f"http://127.0.0.1:{simulator_port}", "VEO_RELAY_UPSTREAM_API_KEY": UPSTREAM_KEY,
            "VEO_RELAY_CALLBACK_ALLOW_HTTP": "true", "VEO_RELAY_CALLBACK_ALLOW_CIDRS": "127.0.0.0/8",
            "VEO_RELAY_RATE_LIMIT": "100000", "VEO_RELAY_UPSTREAM_RATE": "500", "VEO_RELAY_UPSTREAM_BURST": "500",
            "VEO_RELAY_POLL_FLOOR": "0.1s", "VEO_RELAY_POLL_CEILING": "1s",
            # Short leases so that a killed relay's work is taken over within seconds.
            "VEO_RELAY_LEASE_DURATION": "4s", "VEO_RELAY_UPSTREAM_TIMEOUT": "3s", "VEO_RELAY_DELIVERY_TIMEOUT": "3s",
            "VEO_RELAY_RETRY_SCHEDULE": "0,0.5s,1s,2s,4s,8s,15s,30s", "LOG_LEVEL": "notice",
        }
        video_directory = os.path.join(work, "videos")
        if args.store_videos:
            environment["VEO_RELAY_STORE_VIDEOS"] = video_directory
        count = args.relays if args.mode == "postgres" else 1
        database = args.postgres_url if args.mode == "postgres" else os.path.join(work, "relay.sqlite")
        if not database:
            raise SystemExit("chaos: --postgres-url is required in postgres mode")
        proxy = None
        if args.partitions:
            if args.mode != "postgres":
                raise SystemExit("chaos: --partitions needs --mode postgres")
            target = urllib.parse.urlsplit(database)
            proxy = PartitionProxy(target.hostname, target.port or 5432)
            database = target._replace(netloc=target.netloc.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")).geturl()
            # Calls give up within the partition, so requests answer 503 instead of hanging.
            environment["VEO_RELAY_DATABASE_TIMEOUT"] = "1s"
        clocks = Clocks(args.skew, work) if args.skew or args.clock_step else None
        relays = Relays(args.binary, count, database, environment, work, clocks)
        for index in range(count):
            relays.start(index)
        endpoints = register_endpoints(relays.urls()[0], args.endpoints)

        started = time.monotonic()
        accepted = {}
        attempts = 0

        # Kills at random moments over the submission window and a few seconds after it.
        window = args.tasks / args.rate
        moments = sorted(rng.uniform(0.2, window + 5) for _ in range(args.kills))

        stopped_how = "kill" if args.stop_signal == "kill" else "graceful stop"

        def killer():
            for kill, moment in enumerate(moments):
                time.sleep(max(0, started + moment - time.monotonic()))
                index = rng.randrange(count)
                relays.stop(index, args.stop_signal)
                time.sleep(rng.uniform(0.1, 0.6))  # down for a moment: clients keep retrying
                relays.start(index)
                print(f"chaos: {stopped_how} {kill + 1}/{args.kills}: relay {index} stopped and restarted", flush=True)

        def partitioner():
            for partition, moment in enumerate(sorted(rng.uniform(0.2, window + 5) for _ in range(args.partitions))):
                time.sleep(max(0, started + moment - time.monotonic()))
                proxy.partition(args.partition_seconds)
                print(f"chaos: partition {partition + 1}/{args.partitions}: the database answered nothing for {args.partition_seconds} s",
                      flush=True)

        def stepper():
            for moment, seconds in ((window / 3, args.clock_step), (2 * window / 3, 0)):
                time.sleep(max(0, started + moment - time.monotonic()))
                clocks.step(seconds)
                print(f"chaos: every relay's wall clock now {seconds:+d} s from where it was", flush=True)

        kill_thread = threading.Thread(target=killer)
        kill_thread.start()
        partition_thread = threading.Thread(target=partitioner) if proxy else None
        if partition_thread:
            partition_thread.start()
        step_thread = threading.Thread(target=stepper) if args.clock_step else None
        if step_thread:
            step_thread.start()
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(submit, relays.urls(), index, args.seed * 100_003 + index, started + index / args.rate, started + 600)
                       for index in range(args.tasks)]
            for index, future in enumerate(futures):
                accepted[index], tries = future.result()
                attempts += tries
        kill_thread.join()
        if partition_thread:
            partition_thread.join()
        if step_thread:
            step_thread.join()
        submitted_at = time.monotonic()

        # Wait until every accepted task has a terminal webhook, or nothing new arrives for a while.
        ids = set(accepted.values())
        last_progress, seen = time.monotonic(), 0
        while time.monotonic() - last_progress < args.drain_limit:
            deliveries = receiver.snapshot()
            finished = {task for (_, kind, task, _, _) in deliveries if kind in TERMINAL}
            for _, _, endpoint_receiver in endpoints:
                finished &= {task for (_, kind, task, _, _) in endpoint_receiver.snapshot() if kind in TERMINAL}
            if ids <= finished:
                break
            received = len(deliveries) + sum(len(endpoint_receiver.snapshot()) for _, _, endpoint_receiver in endpoints)
            if received != seen:
                seen, last_progress = received, time.monotonic()
            time.sleep(0.2)
        finished_at = time.monotonic()

        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{simulator_port}/_simulator/submissions", headers={"Authorization": f"Bearer {UPSTREAM_KEY}"})) as r:
            upstream = json.load(r)
        deliveries = receiver.snapshot()
        events = collections.defaultdict(set)      # (task, type) -> webhook-ids
        receipts = collections.Counter()            # webhook-id -> deliveries
        outcome_unknown = collections.defaultdict(set)  # cause -> tasks
        unverified = 0
        for webhook_id, kind, task, error, verified in deliveries:
            events[(task, kind)].add(webhook_id)
            receipts[webhook_id] += 1
            unverified += 0 if verified else 1
            if error and error.startswith("outcome_unknown_"):
                outcome_unknown[error].add(task)
        stopped_mid_submission = outcome_unknown["outcome_unknown_relay"]
        stopped = len(stopped_mid_submission)
        terminal = {task for (task, kind) in events if kind in TERMINAL}
        failed_tasks = {task for (task, kind) in events if kind == "task.failed"}
        lost = ids - terminal
        two_terminals = {task for task in ids if sum(1 for kind in TERMINAL if (task, kind) in events) > 1}
        duplicates = sum(1 for ids_ in events.values() if len(ids_) > 1) + len(two_terminals)
        paid_twice = sum(1 for count_ in upstream["by_prompt"].values() if count_ > 1)
        redelivered = sum(count_ - 1 for count_ in receipts.values() if count_ > 1)
        # Usage against the upstream's bill, per model: every generation the ledger counts was paid for
        # exactly once, except those whose submission the relay reports as outcome-unknown and that the
        # upstream never received (the relay died before its request left): counted, since the relay
        # could not know, and visible here.
        generations = usage_by_model(args.binary, relays.database)
        index_of = {task: index for index, task in accepted.items()}
        unsent = collections.Counter(model_of(index_of[task]) for task in stopped_mid_submission
                                     if f"chaos task {index_of[task]}" not in upstream["by_prompt"])
        accepted_by_model = collections.Counter(model_of(index) for index in accepted)
        unreconciled = sum(1 for model in set(generations) | set(upstream["by_model"]) | set(accepted_by_model)
                           if not (generations[model] == accepted_by_model[model]
                                   == upstream["by_model"].get(model, 0) + unsent[model]))
        for model in sorted(accepted_by_model):
            print(f"chaos: {model}: accepted {accepted_by_model[model]}, usage ledger {generations[model]}, "
                  f"paid upstream {upstream['by_model'].get(model, 0)}, outcome-unknown and never sent {unsent[model]}")
        videos = {}
        if args.store_videos:
            stored, store_errors, broken, partials = audit_stored_videos(video_directory, receiver.videos, simulator_port)
            videos = collections.OrderedDict([
                ("stored videos: whole, as announced", stored),
                ("stored videos: announced with a store_error", dict(store_errors) or 0),
                ("stored videos: missing or corrupt", len(broken)),
                ("stored videos: partial downloads left behind", len(partials)),
                ("stored videos: downloads cut by a kill (partials removed at restart)", interrupted_downloads(work)),
            ])
        callback_terminals = {key: value for key, value in events.items() if key[1] in TERMINAL}
        endpoint_audit = collections.OrderedDict()
        endpoint_failures = 0
        for endpoint_id, all_events, endpoint_receiver in endpoints:
            lost_, duplicates_, unverified_, disordered, mismatched, received = audit_endpoint(endpoint_receiver, all_events, ids, callback_terminals)
            endpoint_failures += lost_ + duplicates_ + unverified_ + disordered + mismatched
            name = f"endpoint {endpoint_id} ({'every task event, v1' if all_events else 'terminal events, v1+v1a'})"
            endpoint_audit[name] = (f"{received} received, {lost_} lost, {duplicates_} duplicate events, {unverified_} unverified, "
                                    f"{disordered} out of order, {mismatched} terminal webhook-ids unlike the callback's")
        in_flight = submissions_in_flight(work)
        report = collections.OrderedDict([
            ("mode", f"{args.mode}, {count} relay(s)"), ("seed", args.seed), ("tasks", args.tasks),
            ("kills" if args.stop_signal == "kill" else "graceful stops (SIGTERM)", args.kills),
            ("partitions", f"{args.partitions} of {args.partition_seconds} s" if args.partitions else "none"),
            ("clocks", (f"relays {', '.join(f'{clocks.offset(i):+d} s' for i in range(count))}" if args.skew else "the host's")
                       + (f"; all stepped {args.clock_step:+d} s and back" if args.clock_step else "") if clocks else "the host's"),
            ("accepted", len(ids)), ("submission attempts by clients", attempts),
            ("lost (no terminal webhook)", len(lost)), ("tasks that ended failed", len(failed_tasks)), ("paid twice (upstream submissions of one request > 1)", paid_twice),
            ("duplicate events (one task and type under two webhook-ids)", duplicates),
            ("unverified signatures", unverified),
            ("outcome-unknown: the upstream's answer lost or unreadable", len(outcome_unknown["outcome_unknown_upstream"])),
            ("outcome-unknown: the relay stopped mid-submission", stopped),
            ("  ... per kill", round(stopped / args.kills, 2) if args.kills else "-"),
            ("  ... beside the submissions a relay keeps in flight at most", in_flight),
            ("upstream submissions", upstream["total"]), ("webhooks received", len(deliveries)),
            ("same webhook-id received again (receivers dedupe)", redelivered),
            ("models whose usage does not reconcile with the upstream's bill", unreconciled),
            ("seconds to accept all", round(submitted_at - started, 1)),
            ("seconds until the last terminal webhook", round(finished_at - started, 1)),
        ] + list(videos.items()) + list(endpoint_audit.items()))
        width = max(len(key) for key in report)
        for key, value in report.items():
            print(f"chaos: {key:<{width}}  {value}")
        if lost:
            print(f"chaos: lost tasks: {sorted(lost)[:10]} (logs in {work})")
            for task in sorted(lost)[:10]:
                print(f"chaos:   {task}: {task_as_relay_tells(relays.urls()[0], task)}")
        failed = len(lost) + paid_twice + duplicates + unverified + unreconciled + endpoint_failures
        if isinstance(in_flight, int) and stopped > in_flight * args.kills:
            print(f"chaos: {stopped} submissions stopped mid-way by {args.kills} kills: more than {in_flight} a kill, which cannot be")
            failed += 1
        if args.stop_signal == "term" and stopped:
            print(f"chaos: {stopped} submissions stopped mid-way by graceful stops, which drain every submission in flight")
            failed += 1
        if args.store_videos:
            failed += len(broken) + len(partials) + sum(store_errors.values())
        if args.require_no_failures and failed_tasks:
            print(f"chaos: {len(failed_tasks)} tasks ended failed, none should: {sorted(failed_tasks)[:10]} (logs in {work})")
            failed += len(failed_tasks)
        return 1 if failed else 0
    finally:
        if relays:
            relays.stop_all()
        simulator.send_signal(signal.SIGTERM)
        try:
            simulator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            simulator.kill()
        receiver.server.shutdown()
        for _, _, endpoint_receiver in endpoints:
            endpoint_receiver.server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
