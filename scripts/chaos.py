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
  scripts/chaos --broke-seconds 8 ...                     the upstream account refuses work (402) for 8 s mid-run:
                                                          tasks wait and go on after the top-up, none fails

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
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from harness import audit
from harness.cluster import Clocks, PartitionProxy, Relays, free_port, wait_http
from harness.traffic import API_KEY, TERMINAL, UPSTREAM_KEY, Receiver, register_endpoints, submit


def parse_args():
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
    parser.add_argument("--broke-seconds", type=float, default=0,
                        help="the upstream account refuses every submission (402) for this long, once, mid-run: tasks must wait, not fail")
    parser.add_argument("--store-videos", action="store_true", help="relays store every video (one directory, shared); audit the files")
    parser.add_argument("--endpoints", type=int, default=0, help="endpoints the client registers besides each task's callback")
    parser.add_argument("--relays", type=int, default=2, help="postgres mode: relays sharing the database")
    parser.add_argument("--skew", type=int, default=0, help="seconds each relay's wall clock is off in turn: 0, +skew, -skew")
    parser.add_argument("--clock-step", type=int, default=0,
                        help="every relay's wall clock steps this many seconds forward a third into the run, and back two thirds in")
    parser.add_argument("--require-no-failures", action="store_true",
                        help="fail on any task that ended failed (with --fault-rate 0 the upstream fails none on purpose)")
    return parser.parse_args()


def relay_environment(secret, simulator_port, video_directory):
    """The relays' settings: short leases and timeouts, so that a killed relay's work is taken over within seconds."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "VEO_RELAY_API_KEYS": API_KEY, "VEO_RELAY_WEBHOOK_SECRET": secret,
        "VEO_RELAY_UPSTREAM_URL": f"http://127.0.0.1:{simulator_port}", "VEO_RELAY_UPSTREAM_API_KEY": UPSTREAM_KEY,
        "VEO_RELAY_CALLBACK_ALLOW_HTTP": "true", "VEO_RELAY_CALLBACK_ALLOW_CIDRS": "127.0.0.0/8",
        "VEO_RELAY_RATE_LIMIT": "100000", "VEO_RELAY_UPSTREAM_RATE": "500", "VEO_RELAY_UPSTREAM_BURST": "500",
        "VEO_RELAY_POLL_FLOOR": "0.1s", "VEO_RELAY_POLL_CEILING": "1s",
        "VEO_RELAY_LEASE_DURATION": "4s", "VEO_RELAY_UPSTREAM_TIMEOUT": "3s", "VEO_RELAY_DELIVERY_TIMEOUT": "3s",
        "VEO_RELAY_RETRY_SCHEDULE": "0,0.5s,1s,2s,4s,8s,15s,30s", "LOG_LEVEL": "notice",
    }
    if video_directory:
        environment["VEO_RELAY_STORE_VIDEOS"] = video_directory
    return environment


class FaultThreads:
    """The fault threads of a run. A fault that cannot be made (a relay that does not start again) fails
    the run, instead of ending its thread quietly and leaving fewer faults than the report says."""

    def __init__(self, targets):
        self.errors = []
        self.threads = [threading.Thread(target=self.guarded, args=(target,)) for target in targets]
        for thread in self.threads:
            thread.start()

    def guarded(self, target):
        try:
            target()
        except BaseException as error:  # noqa: BLE001 - SystemExit from wait_http included
            self.errors.append(f"{target.__name__}: {error}")

    def join(self):
        for thread in self.threads:
            thread.join()
        return self.errors


def fault_threads(args, rng, relays, count, proxy, clocks, started, simulator_port):
    """Kills (or graceful stops), partitions, clock steps and a broke upstream account at random moments
    over the submission window and a few seconds after it, each on a thread of its own (started here)."""
    window = args.tasks / args.rate
    stopped_how = "kill" if args.stop_signal == "kill" else "graceful stop"

    def at(moment):
        time.sleep(max(0, started + moment - time.monotonic()))

    def killer():
        for kill, moment in enumerate(sorted(rng.uniform(0.2, window + 5) for _ in range(args.kills))):
            at(moment)
            index = rng.randrange(count)
            relays.stop(index, args.stop_signal)
            time.sleep(rng.uniform(0.1, 0.6))  # down for a moment: clients keep retrying
            relays.start(index)
            print(f"chaos: {stopped_how} {kill + 1}/{args.kills}: relay {index} stopped and restarted", flush=True)

    def partitioner():
        for partition, moment in enumerate(sorted(rng.uniform(0.2, window + 5) for _ in range(args.partitions))):
            at(moment)
            proxy.partition(args.partition_seconds)
            print(f"chaos: partition {partition + 1}/{args.partitions}: the database answered nothing for {args.partition_seconds} s",
                  flush=True)

    def stepper():
        for moment, seconds in ((window / 3, args.clock_step), (2 * window / 3, 0)):
            at(moment)
            clocks.step(seconds)
            print(f"chaos: every relay's wall clock now {seconds:+d} s from where it was", flush=True)

    def broke():
        at(rng.uniform(0.2, window))
        set_account(simulator_port, "balance")
        print(f"chaos: the upstream account refuses work (402) for {args.broke_seconds} s", flush=True)
        time.sleep(args.broke_seconds)
        set_account(simulator_port, None)
        print("chaos: the upstream account is topped up", flush=True)

    return FaultThreads([killer] + ([broke] if args.broke_seconds else []) + ([partitioner] if proxy else [])
                        + ([stepper] if args.clock_step else []))


def set_account(simulator_port, refusal):
    """Makes the simulator's account refuse work (`balance`, `revokedKey`) or take it again (None)."""
    request = urllib.request.Request(f"http://127.0.0.1:{simulator_port}/_simulator/account", method="POST",
                                     data=json.dumps({"refuse": refusal}).encode(),
                                     headers={"Authorization": f"Bearer {UPSTREAM_KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def drain(run):
    """Waits until every accepted task has a terminal webhook everywhere, or nothing new arrives for a while."""
    last_progress, seen = time.monotonic(), 0
    while time.monotonic() - last_progress < run.args.drain_limit:
        deliveries = run.receiver.snapshot()
        finished = {task for (_, kind, task, _, _) in deliveries if kind in TERMINAL}
        for _, _, endpoint_receiver in run.endpoints:
            finished &= {task for (_, kind, task, _, _) in endpoint_receiver.snapshot() if kind in TERMINAL}
        if run.ids <= finished:
            break
        received = len(deliveries) + sum(len(endpoint_receiver.snapshot()) for _, _, endpoint_receiver in run.endpoints)
        if received != seen:
            seen, last_progress = received, time.monotonic()
        time.sleep(0.2)


def main():
    args = parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="veo-relay-chaos-")
    secret = subprocess.run([args.binary, "secret"], capture_output=True, text=True, check=True).stdout.strip()
    receiver = Receiver(secret)
    callback_url = f"http://127.0.0.1:{receiver.port}/hooks/chaos"
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
        video_directory = os.path.join(work, "videos")
        environment = relay_environment(secret, simulator_port, video_directory if args.store_videos else None)
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
        run = audit.Run(args=args, receiver=receiver, relays=relays, simulator_port=simulator_port, work=work,
                        video_directory=video_directory, count=count, clocks=clocks, endpoints=endpoints, started=time.monotonic())

        faults = fault_threads(args, rng, relays, count, proxy, clocks, run.started, simulator_port)
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(submit, relays.urls(), callback_url, index, args.seed * 100_003 + index,
                                   run.started + index / args.rate, run.started + 600)
                       for index in range(args.tasks)]
            for index, future in enumerate(futures):
                run.accepted[index], tries = future.result()
                run.attempts += tries
        fault_errors = faults.join()
        run.submitted_at = time.monotonic()
        drain(run)
        run.finished_at = time.monotonic()
        outcome = audit.report(run)
        for error in fault_errors:
            print(f"chaos: a fault could not be made, so the run did not test what it says: {error}")
        return 1 if fault_errors else outcome
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
