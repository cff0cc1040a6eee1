"""Seeds by DNS name, against a real DNS server (issue 22): the `dns-start` and
`identity` scenarios (plan.dns_scenarios), their runs, their analysis and their rows.

The server is dnsmasq (Debian's `dnsmasq-base`, which run.sh installs when missing) in
its own namespace, rchaos-dns at 198.18.100.253 on the same bridge as the hosts, and
the only server in every host's resolv.conf (/etc/netns/rchaos-*/resolv.conf, which
`ip netns exec` bind-mounts; see net.py). It is authoritative for `chaos.test` and
forwards nothing (`--no-resolv --local=/chaos.test/`): a name it has no record for is
NXDOMAIN, as a headless Service with no endpoints is. It reads its records from one file
in a directory (`--hostsdir`), which it re-reads on every change through inotify and
whose removed lines it forgets: the harness rewrites the file (atomically, by rename)
to change what `rumor.chaos.test` answers, and the change is served within
milliseconds. The nodes resolve through glibc's getaddrinfo with no cache (no nscd), so
every lookup reaches the server, which logs it (`--log-queries`): the analysis knows
when each node looked and what it was told.

Truth for these scenarios is by process name and address (a recreated member keeps its
name on a new address; a reused address gets another name), so the analysis here works
on names and addresses, from the nodes' own event lines: an observer's view of a member
is the last event it printed about it (state and address), as analyze.replay does by
host number for the other scenarios.
"""

import json
import os
import re
import shutil
import subprocess
import time

from .net import DNS_HOST
from .procs import RUMOR_PORT, Aux, Cluster, Ev, Sink, wait_until

DOMAIN = "chaos.test"
NAME = f"rumor.{DOMAIN}"
HTTP_PORT = 8080
LIVE = ("alive", "suspect")
STATE_OF = {"alive": "alive", "suspect": "suspect", "dead": "dead", "left": "left",
            "updated": "alive"}


def find_dnsmasq():
    """The dnsmasq binary, or None (it lives in /usr/sbin, not always on PATH)."""
    return shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if os.access(p, os.X_OK)), None)


def hostport(net, h):
    return f"{net.addr(h)}:{RUMOR_PORT}"


def host_key(net, spec):
    """"hK" -> host K, "sJ" -> spare J."""
    n = int(spec[1:])
    return net.spare_hosts()[n - 1] if spec[0] == "s" else n


class DnsServer:
    """dnsmasq in the DNS namespace, answering NAME from a file the harness rewrites."""

    def __init__(self, net, dnsmasq, log_dir, t0):
        self.net = net
        self.dir = os.path.join(log_dir, "dns-hosts")
        os.makedirs(self.dir, exist_ok=True)
        self.file = os.path.join(self.dir, "pods")
        self.changes = []  # (t, [addresses]) as set
        self.t0 = t0
        self._write([])
        argv = net.exec_argv(DNS_HOST, [
            dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", "--no-poll", f"--hostsdir={self.dir}", f"--local=/{DOMAIN}/",
            f"--listen-address={net.addr(DNS_HOST)}", "--bind-interfaces", "--port=53",
            "--user=root", "--pid-file=", "--local-ttl=0", "--log-queries",
            "--log-facility=-"])
        self.aux = Aux("dnsmasq", argv, os.path.join(log_dir, "dnsmasq.log"), t0)

    def _write(self, hosts):
        # A dotfile, then a rename: dnsmasq ignores dotfiles and reads `pods` once, whole.
        tmp = os.path.join(self.dir, ".pods.tmp")
        with open(tmp, "w") as fh:
            for h in hosts:
                fh.write(f"{self.net.addr(h)} {NAME}\n")
        os.rename(tmp, self.file)

    def set(self, hosts):
        """From now on NAME answers the addresses of `hosts` (none: NXDOMAIN)."""
        hosts = sorted(hosts)
        self._write(hosts)
        t = time.monotonic() - self.t0
        self.changes.append((t, [self.net.addr(h) for h in hosts]))
        return t

    def lookup(self, h):
        """What NAME resolves to from host h's namespace, as a node would see it."""
        code = ("import socket\ntry:\n print(' '.join(sorted({a[4][0] for a in socket.getaddrinfo("
                f"'{NAME}', {RUMOR_PORT}, socket.AF_INET, socket.SOCK_DGRAM)}})))\n"
                "except socket.gaierror as e:\n print('ERR', e)\n")
        r = subprocess.run(self.net.exec_argv(h, ["python3", "-c", code]), capture_output=True,
                           text=True, timeout=20)
        return r.stdout.strip()

    def self_test(self, h, hosts):
        """Waits for the server, then checks that records appear and vanish as written:
        raises if NAME does not follow the file within 3 s."""
        want = " ".join(sorted(self.net.addr(x) for x in hosts))
        for expect, recs in ((want, hosts), ("ERR", [])):
            self._write(recs)
            deadline = time.monotonic() + 3.0
            got = None
            while time.monotonic() < deadline:
                if not self.aux.alive():
                    raise RuntimeError(f"dnsmasq exited: {self.aux.snapshot()[-5:]}")
                got = self.lookup(h)
                if got.startswith(expect) if expect == "ERR" else got == expect:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"DNS self-test: {NAME} from {self.net.ns(h)} gave {got!r}, "
                                   f"expected {expect!r} (log: {self.aux.log.name})")

    def stop(self):
        self.aux.stop()


class Prober:
    """GET /startupz on one node every 100 ms from inside its namespace (Python's
    urllib), printing a line whenever the status changes (0: no answer yet)."""

    CODE = r"""
import json, sys, time, urllib.request, urllib.error
url = sys.argv[1]
last = None
while True:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            code, body = r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        code, body = e.code, e.read().decode(errors="replace")
    except Exception as e:
        code, body = 0, str(e)
    if code != last:
        print(json.dumps({"status": code, "body": body.strip()[:600]}), flush=True)
        last = code
    time.sleep(0.1)
"""

    def __init__(self, net, h, log_dir, t0):
        url = f"http://{net.addr(h)}:{HTTP_PORT}/startupz?verbose"
        self.aux = Aux("startupz", net.exec_argv(h, ["python3", "-u", "-c", self.CODE, url]),
                       os.path.join(log_dir, f"startupz-h{h}.log"), t0)

    def stop(self):
        self.aux.stop()


def read_stamped(path):
    """(t, line) from an Aux log (`%10.4f line`)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as fh:
        for raw in fh:
            parts = raw.rstrip("\n").lstrip().split(" ", 1)
            try:
                out.append((float(parts[0]), parts[1] if len(parts) > 1 else ""))
            except ValueError:
                continue
    return out


# -- the runs ---------------------------------------------------------------------------


def run(sc, a, net, out_dir, dnsmasq):
    """Runs one DNS scenario; returns {"dns": analysis, "t_end", "machine"}. The logs
    (events.jsonl, actions.json, dnsmasq.log, startupz-*.log) let `analyze_dir` redo
    the analysis later (chaos.py --reanalyze)."""
    log_dir = os.path.join(out_dir, "logs", sc.name)
    os.makedirs(log_dir, exist_ok=True)
    net.reset(a.loss)
    t0 = time.monotonic()
    sink = Sink(t0)
    cluster = Cluster(net, sink, log_dir, a.node_bin, None, a.sets)
    dns = DnsServer(net, dnsmasq, log_dir, t0)
    prober = None
    actions = []
    seeds = f"{NAME}:{RUMOR_PORT}"
    p = sc.params

    def now():
        return time.monotonic() - t0

    def set_dns(hosts):
        t = dns.set(hosts)
        actions.append({"t": t, "what": "dns", "addrs": [net.addr(h) for h in sorted(hosts)]})

    def start(h, name, extra=()):
        cluster.start(h, name=name, seeds=seeds, extra=extra)
        actions.append({"t": now(), "what": "start", "name": name, "host": h,
                        "addr": hostport(net, h)})

    def kill(h):
        name = cluster.procs[h][0].name
        cluster.kill(h)
        actions.append({"t": now(), "what": "kill", "name": name, "host": h,
                        "addr": hostport(net, h)})

    steps = []  # (t, fn)
    broken = []
    try:
        if sc.name == "dns-start":
            dns.self_test(1, [1])
            set_dns([])
            for h in net.all_hosts():
                extra = (["--http", f"{net.addr(h)}:{HTTP_PORT}"] if h == p["http_host"] else [])
                start(h, f"h{h}", extra)
            prober = Prober(net, p["http_host"], log_dir, t0)
            steps.append((p["answer_at"], lambda: set_dns(p["first"])))
            steps.append((p["all_at"], lambda: set_dns(net.all_hosts())))
        elif sc.name == "identity":
            listed = set(net.all_hosts())
            dns.self_test(1, sorted(listed))
            set_dns(sorted(listed))
            for h in net.all_hosts():
                start(h, f"h{h}")

            def kill_step(st):
                def fn():
                    h = next(h for h, ps in cluster.procs.items() if ps[0].name == st["kill"])
                    kill(h)
                    listed.discard(h)
                    set_dns(sorted(listed))
                return fn

            def start_step(st):
                def fn():
                    h = host_key(net, st["host"])
                    listed.add(h)
                    set_dns(sorted(listed))
                    start(h, st["name"])
                return fn

            for st in p["steps"]:
                steps += [(st["at"], kill_step(st)), (st["at"] + st["gap"], start_step(st))]
        else:
            raise ValueError(f"no DNS runner for {sc.name}")
        for (t, fn) in sorted(steps, key=lambda s: s[0]):
            wait_until(t0 + t)
            fn()
        wait_until(t0 + sc.duration)
        t_end = now()
        broken = cluster.dead_unexpectedly()
        if prober:
            prober.stop()
        cluster.stop_all()
    finally:
        cluster.kill_all()
        if prober:
            prober.stop()
        dns.stop()
    if broken:
        raise RuntimeError(f"processes exited by themselves during {sc.name}: {broken} "
                           f"(logs in {log_dir})")
    with open(os.path.join(log_dir, "events.jsonl"), "w") as fh:
        for e in sink.snapshot():
            fh.write(json.dumps(e.__dict__) + "\n")
    with open(os.path.join(log_dir, "actions.json"), "w") as fh:
        json.dump({"t_end": t_end, "actions": actions}, fh, indent=1)
    return {"dns": analyze_dir(sc, log_dir), "t_end": t_end}


# -- the analysis -----------------------------------------------------------------------


def load(log_dir):
    with open(os.path.join(log_dir, "events.jsonl")) as fh:
        events = [Ev(**json.loads(line)) for line in fh]
    with open(os.path.join(log_dir, "actions.json")) as fh:
        acts = json.load(fh)
    return [e for e in events if e.system == "rumor"], acts["actions"], acts["t_end"]


def analyze_dir(sc, log_dir):
    events, actions, t_end = load(log_dir)
    lookups = parse_dnsmasq(read_stamped(os.path.join(log_dir, "dnsmasq.log")))
    if sc.name == "dns-start":
        probe = []
        for fn in sorted(os.listdir(log_dir)):
            if fn.startswith("startupz-"):
                for t, line in read_stamped(os.path.join(log_dir, fn)):
                    try:
                        j = json.loads(line)
                    except ValueError:
                        continue
                    probe.append((t, j.get("status"), j.get("body", "")))
        return analyze_start(events, actions, lookups, probe, t_end)
    return analyze_identity(sc, events, actions, lookups, t_end)


def parse_dnsmasq(lines):
    """The A lookups dnsmasq logged: [{t, from, addrs, nx}] in order (dnsmasq serves one
    query at a time, so each answer line follows its query line)."""
    out, cur = [], None
    for t, line in lines:
        m = re.search(r"query\[(\w+)\] (\S+) from (\S+)", line)
        if m:
            cur = None
            if m.group(1) == "A" and m.group(2) == NAME:
                cur = {"t": t, "from": m.group(3), "addrs": [], "nx": False}
                out.append(cur)
            continue
        if cur is None:
            continue
        m = re.search(r" is (\d+\.\d+\.\d+\.\d+)\s*$", line)
        if m:
            cur["addrs"].append(m.group(1))
        elif "NXDOMAIN" in line:
            cur["nx"] = True
    return out


class Views:
    """Every process's view, replayed from the event lines: name -> member -> (state,
    addr, incarnation). A process that starts again (same name) starts empty."""

    def __init__(self):
        self.v = {}

    def apply(self, e):
        if e.kind == "started" and e.observer == e.subject:
            self.v[e.observer] = {}
            return True
        if e.kind not in STATE_OF or e.subject == e.observer:
            return False
        view = self.v.setdefault(e.observer, {})
        state = e.state or STATE_OF[e.kind]
        prev = view.get(e.subject)
        addr = e.addr or (prev[1] if prev else None)
        view[e.subject] = (state, addr, e.inc)
        return True

    def live(self, o):
        return {n: s for n, s in self.v.get(o, {}).items() if s[0] in LIVE}


def running_at(actions, t):
    """name -> address of the processes running at t (started, not killed), from the
    harness's own actions."""
    run = {}
    for act in actions:
        if act["t"] > t:
            break
        if act["what"] == "start":
            run[act["name"]] = act["addr"]
        elif act["what"] == "kill":
            run.pop(act["name"], None)
    return run


def judge(views, truth):
    """Per running observer: members missing or at a wrong address (stale), ghosts
    (shown live where no process of that name runs at that address) and duplicates
    (one address held live by two names)."""
    out = {}
    for o in truth:
        live = views.live(o)
        stale = sorted(n for n, a in truth.items() if n != o and live.get(n, (None, None))[1] != a)
        ghosts = sorted(f"{n}@{s[1]}" for n, s in live.items() if truth.get(n) != s[1])
        by_addr = {}
        for n, s in live.items():
            by_addr.setdefault(s[1], []).append(n)
        own = truth[o]
        dups = sorted(f"{a}: {', '.join(sorted(ns + ([o] if a == own else [])))}"
                      for a, ns in by_addr.items() if len(ns) + (a == own) > 1)
        out[o] = {"addr": truth[o], "stale": stale, "ghosts": ghosts, "duplicates": dups}
    return out


def settled_since(events, actions, start, end, ok):
    """The first time in [start, end) from which `ok(views, truth)` holds until `end`
    (events and process starts/kills both change it; `end` is the next step's first
    action, or the end of the run); None if it does not hold just before `end`."""
    views = Views()
    marks = sorted([(e.t, 0, e) for e in events if e.t < end]
                   + [(act["t"], 1, act) for act in actions
                      if act["what"] in ("start", "kill") and act["t"] < end],
                   key=lambda x: (x[0], x[1]))
    i = 0
    while i < len(marks) and marks[i][0] < start:
        if marks[i][1] == 0:
            views.apply(marks[i][2])
        i += 1
    since = start if ok(views, running_at(actions, start)) else None
    for (t, kind, x) in marks[i:]:
        if kind == 0:
            views.apply(x)
        if ok(views, running_at(actions, t)):
            if since is None:
                since = t
        else:
            since = None
    return since


def transients(events, actions, start, end):
    """Ghosts and duplicates shown at any time in [start, end): {"ghost"|"duplicate":
    {item: {"observers": [...], "max_ms": longest stretch at one observer}}}."""
    views = Views()
    marks = sorted([(e.t, 0, e) for e in events if e.t < end]
                   + [(act["t"], 1, act) for act in actions
                      if act["what"] in ("start", "kill") and act["t"] < end],
                   key=lambda x: (x[0], x[1]))
    opened, out = {}, {"ghost": {}, "duplicate": {}}

    def close(key, t):
        kind, o, item = key
        rec = out[kind].setdefault(item, {"observers": [], "max_ms": 0.0})
        if o not in rec["observers"]:
            rec["observers"].append(o)
        rec["max_ms"] = max(rec["max_ms"], (t - opened.pop(key)) * 1e3)

    def look(t):
        cur = set()
        for o, j in judge(views, running_at(actions, t)).items():
            cur |= {("ghost", o, g) for g in j["ghosts"]}
            cur |= {("duplicate", o, d) for d in j["duplicates"]}
        for key in cur - opened.keys():
            opened[key] = t
        for key in list(opened.keys() - cur):
            close(key, t)

    i = 0
    while i < len(marks) and marks[i][0] < start:
        if marks[i][1] == 0:
            views.apply(marks[i][2])
        i += 1
    look(start)
    for (t, kind, x) in marks[i:]:
        if kind == 0:
            views.apply(x)
        look(t)
    for key in list(opened):
        close(key, end)
    return out


def all_true(views, truth):
    return all(not (j["stale"] or j["ghosts"] or j["duplicates"])
               for j in judge(views, truth).values())


def final_views(events, t_end):
    views = Views()
    for e in events:
        if e.t <= t_end:
            views.apply(e)
    return views


def analyze_start(events, actions, lookups, probe, t_end):
    answers = [a for a in actions if a["what"] == "dns" and a["addrs"]]
    t_ans = answers[0]["t"] if answers else None
    names = sorted({a["name"] for a in actions if a["what"] == "start"}, key=lambda n: int(n[1:]))
    addr_of = {a["name"]: a["addr"] for a in actions if a["what"] == "start"}
    joined = {n: [e.t for e in events if e.kind == "cluster_joined" and e.observer == n]
              for n in names}
    synced = {n: next((e.t for e in events if e.kind == "synced" and e.observer == n), None)
              for n in names}
    # A split: two clusters of two or more nodes at once. Replayed after every event:
    # components of the graph "o holds s live" (either way) among the nodes.
    views = Views()
    worst, split_at, split_groups = 0, None, None
    for e in events:
        if e.t > t_end or not views.apply(e):
            continue
        parent = {n: n for n in names}

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for o in names:
            for s in views.live(o):
                if s in parent:
                    parent[find(o)] = find(s)
        groups = {}
        for n in names:
            groups.setdefault(find(n), []).append(n)
        multi = [sorted(g) for g in groups.values() if len(g) >= 2]
        if len(multi) > worst:
            worst = len(multi)
            if worst >= 2:
                split_at, split_groups = e.t, multi
    conv = settled_since(events, actions, t_ans, t_end, all_true) if t_ans is not None else None
    fin = judge(final_views(events, t_end), running_at(actions, t_end))
    # Lookups: each node's first answer with addresses, and how many it made.
    per = {}
    started = {a["name"]: a["t"] for a in actions if a["what"] == "start"}
    for n in names:
        ip = addr_of[n].split(":")[0]
        # From the node's start: the harness's own self-test asked from h1 before.
        mine = [lk for lk in lookups if lk["from"] == ip and lk["t"] >= started[n]]
        ok = next((lk for lk in mine if lk["addrs"]), None)
        per[n] = {"lookups": len(mine),
                  "nx_lookups": sum(1 for lk in mine if lk["nx"]),
                  "first_answer_t": ok["t"] if ok else None,
                  "first_answer": ok["addrs"] if ok else None,
                  "cluster_joined_t": joined[n][0] if joined[n] else None,
                  "cluster_joined_count": len(joined[n]),
                  "synced_t": synced[n]}
    probe = [x for x in probe if x[0] <= t_end]
    before = [(t, s, b) for (t, s, b) in probe if t_ans is not None and t < t_ans]
    after = [(t, s, b) for (t, s, b) in probe if t_ans is not None and t >= t_ans]
    first_ok = next((t for (t, s, _b) in probe if s == 200), None)
    reason = next((b for (_t, s, b) in before if s == 503), None)
    return {
        "scenario": "dns-start",
        "answer_t": t_ans,
        "dns_changes": [(a["t"], a["addrs"]) for a in actions if a["what"] == "dns"],
        "nodes": per,
        "joined_before_answer": sorted(n for n in names if joined[n] and t_ans is not None
                                       and joined[n][0] < t_ans),
        "formed": all(joined[n] for n in names),
        "split_groups_max": worst,
        "split_at": split_at, "split_groups": split_groups,
        "converged_ms": None if conv is None else (conv - t_ans) * 1e3,
        "final": fin,
        "startupz": {
            "before_answer": sorted({s for (_t, s, _b) in before}),
            "reason_before": reason,
            "first_200_ms": None if first_ok is None or t_ans is None else (first_ok - t_ans) * 1e3,
            "final": probe[-1][1] if probe else None,
            "changes": [(t, s) for (t, s, _b) in probe],
            "observed": bool(probe),
        } if probe or after else None,
    }


def analyze_identity(sc, events, actions, lookups, t_end):
    """Per step: the time until the killed process's identity (name at its address) is
    live nowhere, and from the new process's start until every view is true; at the end,
    per observer: ghosts, duplicates, members missing or at a wrong address."""
    kills = [a for a in actions if a["what"] == "kill"]
    steps = []
    for i, st in enumerate(sc.params["steps"]):
        k = kills[i]
        s_ = next(a for a in actions if a["what"] == "start" and a["name"] == st["name"]
                  and a["t"] >= k["t"])
        end = kills[i + 1]["t"] if i + 1 < len(kills) else t_end
        steps.append((st, k, s_, end))
    boots = {}
    for e in events:
        if e.kind == "boot":
            boots.setdefault(e.observer, []).append({"t": e.t, "inc": e.inc, "addr": e.addr})

    def gone_everywhere(name, addr):
        # `name` not live at `addr` at any running observer (other than a process of
        # that name at that address itself).
        def ok(views, truth):
            return all(views.live(o).get(name, (None, None))[1] != addr
                       for o in truth if not (o == name and truth[o] == addr))
        return ok

    def step(st, kill, start, end):
        conv = settled_since(events, actions, start["t"], end, all_true)
        gone = settled_since(events, actions, kill["t"], end,
                             gone_everywhere(kill["name"], kill["addr"]))
        # The first thing each observer said about the killed name after the kill.
        causes = {}
        for e in events:
            if (kill["t"] <= e.t < end and e.subject == kill["name"] and e.observer != e.subject
                    and e.kind in ("suspect", "dead", "left", "alive", "updated")
                    and e.observer not in causes):
                causes[e.observer] = f"{e.kind}{' (' + e.cause + ')' if e.cause else ''} " \
                                     f"{e.addr} at +{(e.t - kill['t']) * 1e3:.0f} ms"
        return {
            "label": st["label"],
            "killed": kill["name"], "killed_addr": kill["addr"], "kill_t": kill["t"],
            "started": start["name"], "started_addr": start["addr"], "start_t": start["t"],
            "old_gone_ms": None if gone is None else (gone - kill["t"]) * 1e3,
            "converged_ms": None if conv is None else (conv - start["t"]) * 1e3,
            "first_word": causes,
            "transients": transients(events, actions, kill["t"], end),
        }

    fin_views = final_views(events, t_end)
    truth = running_at(actions, t_end)
    fin = judge(fin_views, truth)
    changed = sorted({st["kill"] for st in sc.params["steps"]}
                     | {st["name"] for st in sc.params["steps"]}, key=lambda n: int(n[1:]))
    last = {o: {n: fin_views.v.get(o, {}).get(n) for n in changed if n != o} for o in truth}
    return {
        "scenario": "identity",
        "steps": [step(*x) for x in steps],
        "final": fin,
        "final_members": last,
        "boots": boots,
        "dns_changes": [(a["t"], a["addrs"]) for a in actions if a["what"] == "dns"],
        "lookups": len(lookups),
    }


# -- the report rows --------------------------------------------------------------------


def _ms(v):
    return "–" if v is None else f"{v:.0f}"


def rows(sc, res):
    """(measure, value, check) rows; check is None or a bool for --check."""
    r = res
    out = []
    if r["scenario"] == "dns-start":
        nodes = r["nodes"]
        n = len(nodes)
        out.append(("nodes (all `--seeds " + NAME + ":7946`, none `--bootstrap`)", str(n), None))
        out.append(("the name answers from (s after the nodes start)",
                    f"{r['answer_t']:.1f}" if r["answer_t"] is not None else "never", None))
        fa = [(v["first_answer_t"] - r["answer_t"]) * 1e3 for v in nodes.values()
              if v["first_answer_t"] is not None and r["answer_t"] is not None]
        out.append((f"name answers → first lookup that got addresses ms ({len(fa)} of {n} "
                    "nodes looked; the rest were reached by them first)" if len(fa) < n else
                    "name answers → each node's first lookup that got addresses ms",
                    _span(fa), None))
        cj = [(v["cluster_joined_t"] - r["answer_t"]) * 1e3 for v in nodes.values()
              if v["cluster_joined_t"] is not None and r["answer_t"] is not None]
        out.append(("name answers → cluster_joined ms (per node)", _span(cj), None))
        out.append(("lookups per node before joining (NXDOMAIN)",
                    ", ".join(f"{k} {v['nx_lookups']}" for k, v in nodes.items()), None))
        out.append(("name answers → every node holds every other alive ms",
                    _ms(r["converged_ms"]) if r["converged_ms"] is not None else "not by the end",
                    None))
        once = (r["formed"] and not r["joined_before_answer"] and r["split_groups_max"] <= 1
                and all(v["cluster_joined_count"] == 1 for v in nodes.values()))
        out.append(("cluster formed once: every node joined once, none before the name "
                    "answered, never two clusters of 2+",
                    "yes" if once else
                    f"**no**: joined {sum(1 for v in nodes.values() if v['cluster_joined_count'])}/{n}, "
                    f"cluster_joined counts {[v['cluster_joined_count'] for v in nodes.values()]}, "
                    f"before the answer {r['joined_before_answer']}, "
                    f"most clusters at once {r['split_groups_max']}"
                    + (f" ({r['split_groups']} at {r['split_at']:.2f} s)" if r["split_groups"] else ""),
                    once))
        bad = {o: j for o, j in r["final"].items() if j["stale"] or j["ghosts"] or j["duplicates"]}
        out.append(("views at the end: every node alive at its address everywhere",
                    "yes" if not bad else f"**no**: {bad}", not bad))
        su = r.get("startupz")
        if su:
            ok = (503 in su["before_answer"] and 200 not in su["before_answer"]
                  and su["final"] == 200)
            reason = (su["reason_before"] or "").splitlines()
            reason = next((x for x in reason if "joined" in x), reason[0] if reason else "")
            out.append(("h1 `/startupz` before the name answers / at the end",
                        f"{'/'.join(map(str, su['before_answer'])) or 'no answer'} / {su['final']}",
                        ok))
            out.append(("h1 `/startupz` 503 reason", f"`{reason.strip()}`" if reason else "–", None))
            out.append(("name answers → h1 `/startupz` 200 ms", _ms(su["first_200_ms"]), None))
        return out
    # identity
    for s_ in r["steps"]:
        label = s_["label"]
        out.append((f"{label}: what", f"{s_['killed']}@{s_['killed_addr']} SIGKILLed at "
                    f"{s_['kill_t']:.1f} s; {s_['started']}@{s_['started_addr']} started at "
                    f"{s_['start_t']:.1f} s", None))
        out.append((f"{label}: kill → {s_['killed']}@{s_['killed_addr']} live nowhere ms",
                    _ms(s_["old_gone_ms"]) if s_["old_gone_ms"] is not None else "not in the step",
                    None))
        out.append((f"{label}: first word on {s_['killed']} after the kill, per observer",
                    "; ".join(f"{o}: {w}" for o, w in sorted(s_["first_word"].items())) or "–",
                    None))
        tr = s_.get("transients") or {}
        for kind in ("ghost", "duplicate"):
            items = tr.get(kind) or {}
            out.append((f"{label}: {kind}s shown after the kill (observers, longest ms)",
                        "; ".join(f"{k} at {', '.join(sorted(v['observers']))}, up to {v['max_ms']:.0f}"
                                  for k, v in sorted(items.items())) or "none", None))
        out.append((f"{label}: {s_['started']} started → every view true ms",
                    _ms(s_["converged_ms"]) if s_["converged_ms"] is not None else "**not in the step**",
                    None))
    ghosts = {o: j["ghosts"] for o, j in r["final"].items() if j["ghosts"]}
    dups = {o: j["duplicates"] for o, j in r["final"].items() if j["duplicates"]}
    stale = {o: j["stale"] for o, j in r["final"].items() if j["stale"]}
    out.append(("ghosts at the end (member shown live where no such process runs)",
                "0" if not ghosts else f"**{ghosts}**", not ghosts))
    out.append(("duplicates at the end (an address held live by two names)",
                "0" if not dups else f"**{dups}**", not dups))
    out.append(("every view true at the end", "yes" if not stale else f"**no**: missing/wrong {stale}",
                not stale))
    inc = []
    for name, bs in r["boots"].items():
        if len(bs) > 1:
            inc.append(f"{name}: " + " → ".join(f"{b['inc']} at {b['addr']}" for b in bs))
    if inc:
        out.append(("incarnations of the recreated member", "; ".join(inc), None))
    return out


def _span(vals):
    vs = sorted(v for v in vals if v is not None)
    if not vs:
        return "–"
    if len(vs) == 1:
        return f"{vs[0]:.0f}"
    return f"{vs[len(vs) // 2]:.0f} [{vs[0]:.0f}–{vs[-1]:.0f}]"


def observer_table(res):
    """Markdown lines: the identity scenario's per-survivor end state."""
    if res["scenario"] != "identity":
        return []
    out = ["", "| observer | address | ghosts | duplicates | missing or wrong | "
               "last word on the members that changed |", "|---|---|---|---|---|---|"]
    for o, j in sorted(res["final"].items(), key=lambda kv: int(kv[0][1:])):
        words = []
        for n, s in res["final_members"].get(o, {}).items():
            words.append(f"{n}: {'–' if s is None else f'{s[0]} {s[1]} inc {s[2]}'}")
        out.append(f"| {o} | {j['addr']} | {', '.join(j['ghosts']) or 0} | "
                   f"{', '.join(j['duplicates']) or 0} | {', '.join(j['stale']) or 0} | "
                   f"{'; '.join(words)} |")
    return out
