"""The processes on the hosts: a rumor node (the rumor-node binary, node/) and, with --serf, a
HashiCorp Serf agent per host. Every output line is stamped on arrival with the
harness's monotonic clock (CLOCK_MONOTONIC is one clock for every namespace), so the
events of all processes share one time axis with the faults.

Events are normalised to (t, system, observer, kind, subject, incarnation) with kind in
suspect | dead | alive | left | refuted | started. Rumor reports incarnations; Serf's log
does not, so for Serf the analysis counts lives and refutations instead. Rumor's events
also carry the member's address and state, and a few kinds only the DNS scenarios read
(harness/dns.py): updated (Alive -> Alive, e.g. a new address), boot (the node's own
`started` line: its incarnation and address), cluster_joined, synced.
"""

import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Optional

RUMOR_PORT = 7946
SERF_PORT = 7947


@dataclass
class Ev:
    t: float  # seconds since the scenario's t0
    system: str  # "rumor" | "serf"
    observer: str  # host name, e.g. "h3"
    kind: str
    subject: str
    inc: Optional[int] = None
    cause: Optional[str] = None  # rumor's suspect/dead cause: silence, refused, ...
    addr: Optional[str] = None  # rumor: the member's address, "IP:PORT"
    state: Optional[str] = None  # rumor: the member's state after the event


class Sink:
    """Thread-safe list of events."""

    def __init__(self, t0):
        self.t0 = t0
        self.lock = threading.Lock()
        self.events = []

    def add(self, ev):
        with self.lock:
            self.events.append(ev)

    def snapshot(self):
        with self.lock:
            return sorted(self.events, key=lambda e: e.t)


RUMOR_KINDS = {
    "suspected": "suspect",
    "dead": "dead",
    "joined": "alive",
    "alive": "alive",
    "left": "left",
}


# Read by the DNS scenarios only; the other analyses ignore these kinds.
RUMOR_EXTRA = {"updated": "updated", "cluster_joined": "cluster_joined", "synced": "synced"}


def parse_rumor(observer, line):
    """(kind, subject, incarnation, cause, addr, state), or None."""
    try:
        j = json.loads(line)
    except ValueError:
        return None
    if not isinstance(j, dict):
        return None
    ev = j.get("event")
    if ev in RUMOR_KINDS or ev in RUMOR_EXTRA:
        kind = RUMOR_KINDS.get(ev) or RUMOR_EXTRA[ev]
        return (kind, j.get("member") or observer, j.get("incarnation"), j.get("cause"),
                j.get("addr"), j.get("state"))
    if ev == "started":
        return ("boot", observer, j.get("incarnation"), None, j.get("addr"), None)
    if ev == "refuted":
        return ("refuted", observer, j.get("incarnation"), None, None, None)
    return None


SERF_PATTERNS = [
    (re.compile(r"memberlist: Suspect (\S+) has failed"), "suspect"),
    (re.compile(r"serf: EventMemberFailed: (\S+)"), "dead"),
    (re.compile(r"serf: EventMemberJoin: (\S+)"), "alive"),
    (re.compile(r"serf: EventMemberLeave: (\S+)"), "left"),
    (re.compile(r"memberlist: Refuting an? (?:suspect|dead) message"), "refuted"),
]


def parse_serf(observer, line):
    for rx, kind in SERF_PATTERNS:
        m = rx.search(line)
        if m:
            subject = m.group(1) if m.groups() else observer
            return (kind, subject, None, None, None, None)
    return None


class Proc:
    """One process in one host's namespace, with a reader thread stamping its lines."""

    def __init__(self, system, host, argv, log_dir, sink, life, name=None):
        self.system = system
        self.host = host
        self.name = name or f"h{host}"
        self.sink = sink
        self.stopped = False
        path = os.path.join(log_dir, f"{system}-{self.name}-{life}.log")
        self.log = open(path, "w", buffering=1)
        # A new session: a Ctrl-C at the terminal reaches the harness only, which then
        # kills every process itself (a rumor node would otherwise start a 5 s drain).
        self.p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
            bufsize=1,
        )
        self.pid = self.p.pid
        sink.add(Ev(time.monotonic() - sink.t0, system, self.name, "started", self.name))
        self.parse = parse_rumor if system == "rumor" else parse_serf
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.p.stdout:
            t = time.monotonic() - self.sink.t0
            self.log.write(f"{t:10.4f} {line}")
            got = self.parse(self.name, line)
            if got:
                kind, subject, inc, cause, addr, state = got
                if subject:
                    self.sink.add(Ev(t, self.system, self.name, kind, subject, inc, cause,
                                     addr, state))

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def pause(self):
        self.signal(signal.SIGSTOP)
        self.stopped = True

    def resume(self):
        self.signal(signal.SIGCONT)
        self.stopped = False

    def kill(self):
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        self.reap()

    def reap(self, timeout=5):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.thread.join(timeout=2)
        if not self.log.closed:
            self.log.close()


def rumor_argv(net, node_bin, h, sets, pauses_file, name=None, seeds=None, extra=()):
    """The node on host `h`: named `name` (default hK), joining through `seeds` (default
    every other host's address, literally), with `extra` flags (--http, --bootstrap)."""
    if seeds is None:
        seeds = ",".join(f"{net.addr(j)}:{RUMOR_PORT}" for j in net.all_hosts() if j != h)
    # --pauses: on a graceful exit (SIGTERM at the end of the scenario) the node writes
    # its timer-lateness samples, which show whether the machine itself stalled it.
    argv = [node_bin, "--bind", f"{net.addr(h)}:{RUMOR_PORT}", "--name", name or f"h{h}",
            "--seeds", seeds, "--preset", "lan", "--drain", "0s", "--pauses", pauses_file]
    argv += list(extra)
    for k, v in sets:
        argv += ["--set", f"{k}={v}"]
    return net.exec_argv(h, argv)


def serf_argv(net, serf_bin, h):
    argv = [serf_bin, "agent", f"-node=h{h}", f"-bind={net.addr(h)}:{SERF_PORT}",
            "-rpc-addr=127.0.0.1:7373", "-profile=lan", "-log-level=info",
            "-retry-interval=1s", "-retry-max=60"]
    for j in net.all_hosts():
        if j != h:
            argv.append(f"-retry-join={net.addr(j)}:{SERF_PORT}")
    return net.exec_argv(h, argv)


class Cluster:
    """The processes of one scenario, host by host."""

    def __init__(self, net, sink, log_dir, node_bin, serf_bin, sets):
        self.net = net
        self.sink = sink
        self.log_dir = log_dir
        self.node_bin = node_bin
        self.serf_bin = serf_bin
        self.sets = sets
        self.procs = {}  # host -> [Proc]
        self.lives = {}  # process name -> number of starts

    def start(self, h, name=None, seeds=None, extra=()):
        """Starts the node (and Serf) on host `h`; `name`, `seeds`, `extra`: see
        rumor_argv (the DNS scenarios start other names on other hosts)."""
        name = name or f"h{h}"
        life = self.lives.get(name, 0) + 1
        self.lives[name] = life
        pauses = os.path.join(self.log_dir, f"pauses-{name}-{life}.txt")
        argv = rumor_argv(self.net, self.node_bin, h, self.sets, pauses, name, seeds, extra)
        ps = [Proc("rumor", h, argv, self.log_dir, self.sink, life, name)]
        if self.serf_bin:
            ps.append(Proc("serf", h, serf_argv(self.net, self.serf_bin, h),
                           self.log_dir, self.sink, life))
        self.procs[h] = ps

    def start_all(self):
        for h in self.net.all_hosts():
            self.start(h)

    def pause(self, h):
        for p in self.procs.get(h, []):
            p.pause()

    def resume(self, h):
        for p in self.procs.get(h, []):
            p.resume()

    def kill(self, h):
        for p in self.procs.pop(h, []):
            p.kill()

    def kill_all(self):
        for h in list(self.procs):
            self.kill(h)

    def stop_all(self):
        """The end of a scenario: SIGTERM to every rumor node (it leaves at once and
        writes its lateness samples), SIGKILL to the rest; bounded to a few seconds."""
        for ps in self.procs.values():
            for p in ps:
                if p.system == "rumor":
                    p.resume()
                    p.signal(signal.SIGTERM)
                else:
                    p.signal(signal.SIGCONT)
                    p.signal(signal.SIGKILL)
        for ps in self.procs.values():
            for p in ps:
                p.reap(timeout=5)
        self.procs = {}

    def dead_unexpectedly(self):
        """Processes that exited without being killed (a crash of the node itself)."""
        return [(p.system, p.name, p.p.returncode)
                for ps in self.procs.values() for p in ps if not p.alive()]


class Aux:
    """A helper process in a namespace (the DNS server, a health prober): its output
    lines stamped on arrival into a log file and kept as (t, line) for the analysis."""

    def __init__(self, name, argv, log_path, t0):
        self.name = name
        self.t0 = t0
        self.lines = []
        self.lock = threading.Lock()
        self.log = open(log_path, "w", buffering=1)
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True,
                                  text=True, bufsize=1)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.p.stdout:
            t = time.monotonic() - self.t0
            self.log.write(f"{t:10.4f} {line}")
            with self.lock:
                self.lines.append((t, line.rstrip("\n")))

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.alive():
            try:
                os.kill(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.thread.join(timeout=2)
        if not self.log.closed:
            self.log.close()


def wait_until(deadline):
    """Sleeps until the monotonic clock reaches `deadline`, in steps of at most 50 ms.
    Bounded by construction: at most the time to the deadline."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))
