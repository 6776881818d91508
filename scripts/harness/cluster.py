"""The relay processes of a run and the faults put on them: kills and restarts, a database partition,
clocks off and stepped. Every process started here is stopped by its PID; all traffic stays on 127.0.0.1."""
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

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
