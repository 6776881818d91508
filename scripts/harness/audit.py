"""The audit of a run: every accepted task's terminal event delivered once and verified, nothing paid
twice, the usage ledger against the upstream's bill, stored videos whole, each endpoint's deliveries."""
import collections
import hashlib
import json
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field

from harness.cluster import interrupted_downloads, submissions_in_flight
from harness.traffic import TERMINAL, UPSTREAM_KEY, model_of, task_as_relay_tells


@dataclass
class Run:
    """What a run did, for its audit."""
    args: object
    receiver: object
    relays: object
    simulator_port: int
    work: str
    video_directory: str
    count: int
    clocks: object
    endpoints: list = field(default_factory=list)
    accepted: dict = field(default_factory=dict)
    attempts: int = 0
    started: float = 0
    submitted_at: float = 0
    finished_at: float = 0

    @property
    def ids(self):
        return set(self.accepted.values())


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


def report(run):
    """Prints the run's audit; 0 when every promise held, 1 otherwise."""
    args, receiver, relays, endpoints, accepted, ids = run.args, run.receiver, run.relays, run.endpoints, run.accepted, run.ids
    simulator_port, work, video_directory, count, clocks = run.simulator_port, run.work, run.video_directory, run.count, run.clocks
    attempts, started, submitted_at, finished_at = run.attempts, run.started, run.submitted_at, run.finished_at
    with urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{simulator_port}/_simulator/submissions", headers={"Authorization": f"Bearer {UPSTREAM_KEY}"})) as r:
        upstream = json.load(r)
    deliveries = receiver.snapshot()
    events = collections.defaultdict(set)      # (task, type) -> webhook-ids
    receipts = collections.Counter()            # webhook-id -> deliveries
    outcome_unknown = collections.defaultdict(set)  # cause -> tasks
    refused = set()                                 # tasks failed by an upstream refusal (none: the simulator refuses only the account)
    unverified = 0
    for webhook_id, kind, task, error, verified in deliveries:
        events[(task, kind)].add(webhook_id)
        receipts[webhook_id] += 1
        unverified += 0 if verified else 1
        if error and error.startswith("outcome_unknown_"):
            outcome_unknown[error].add(task)
        if error in ("upstream_rejected", "upstream_account_unavailable"):
            refused.add(task)
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
        ("upstream account", f"refused work for {args.broke_seconds} s mid-run" if args.broke_seconds else "in order"),
        ("clocks", (f"relays {', '.join(f'{clocks.offset(i):+d} s' for i in range(count))}" if args.skew else "the host's")
                   + (f"; all stepped {args.clock_step:+d} s and back" if args.clock_step else "") if clocks else "the host's"),
        ("accepted", len(ids)), ("submission attempts by clients", attempts),
        ("lost (no terminal webhook)", len(lost)), ("tasks that ended failed", len(failed_tasks)), ("paid twice (upstream submissions of one request > 1)", paid_twice),
        ("duplicate events (one task and type under two webhook-ids)", duplicates),
        ("failed by an upstream refusal (the account's refusals hold, never fail)", len(refused)),
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
    failed = len(lost) + paid_twice + duplicates + len(refused) + unverified + unreconciled + endpoint_failures
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
