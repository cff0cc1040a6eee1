"""The scenarios: one list of faults per scenario, from which both the real timeline
and the simulator's scenario file are made, so the two cannot drift apart.

Hosts are numbered 1..K; the simulator's node i is host i+1 (node 0, the first to
start, is host 1, which no fault targets).

Fault kinds and their simulator counterparts:

| kind          | real                                             | simulator                        |
|---------------|--------------------------------------------------|----------------------------------|
| pause         | SIGSTOP the host's processes, SIGCONT `length` later | `pause`, fixed length        |
| process-crash | SIGKILL (the host still answers: ICMP port unreachable); restart `length` later (0: never) | `restart` (`crash` if never) |
| host-crash    | the host's switch port goes down, then SIGKILL; port up and restart `length` later | `restart` / `crash` |
| partition     | nftables drops between `hosts` and the rest      | `[[partitions]]`                 |
| oneway        | nftables drops from `hosts` to the rest only     | `[[partitions]]`, `one_way`      |
| loss-burst    | `loss` % loss both ways at `hosts` for `length`  | `[[partitions]]` with `loss` (a partial cut) |

Two scenarios have no fault list and no simulator counterpart (`runner = "dns"`,
harness/dns.py): `dns-start` and `identity`, nodes seeded by a DNS name that a real DNS
server answers and the harness changes during the run; their times are in `params`.

Until the simulator distinguishes crash kinds (issue 7), both crash kinds map to the
same silent crash there; `--sim-crash-field NAME` adds `NAME = "process"` / `"host"` to
each crash fault of the generated scenarios once it does.
"""

import random
from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class Fault:
    kind: str
    at: float  # seconds after the cluster starts
    hosts: List[int]  # targets (the cut-off side for partitions)
    length: float  # pause, down time, cut or burst length (s); 0 = no restart
    loss: float = 0.0  # loss-burst: percent, both directions


@dataclass
class Scenario:
    name: str
    title: str
    duration: float
    faults: List[Fault]
    loss: float = None  # network-wide loss override (percent per host per direction)
    sim: bool = True
    expect_heal: bool = True  # views must have converged at the end (--check)
    opt_in: bool = False  # run only when named in --only (too long for the default run)
    notes: List[str] = field(default_factory=list)
    runner: Optional[str] = None  # "dns": harness/dns.py runs it (no faults, no simulator)
    params: dict = field(default_factory=dict)  # the runner's times and targets


CRASHES = ("process-crash", "host-crash")


def targets(hosts, reps):
    """Spread `reps` targets over hosts 2..K (host 1 is never a target)."""
    pool = list(range(2, hosts + 1))
    step = max(1, len(pool) // max(1, reps))
    out = [pool[(1 + i * step) % len(pool)] for i in range(reps)]
    return out


def build(hosts, quick, reps, acceptable_pause, seed=1):
    """The scenario list. `quick`: the trimmed CI set (one pause, one kill, one
    partition), one repetition each, short windows.

    Every fault time gets a random offset in [0, 1) s (seeded): the nodes' probe
    timers all start with the cluster, so faults at whole seconds would always hit the
    same phase of the probe period; the simulator samples phases across its seeds, the
    real run samples them through these offsets. The simulator gets the same times."""
    rng = random.Random(seed)
    out = _build(hosts, quick, reps, acceptable_pause)
    for sc in out:
        for f in sc.faults:
            f.at = round(f.at + rng.random(), 3)
    return out


def _build(hosts, quick, reps, acceptable_pause):
    ap = acceptable_pause
    settle = 15.0 if quick else 20.0
    r = 1 if quick else reps
    tg = targets(hosts, r)
    out = []

    # Pauses are cheap and their verdict is the target most at risk: two more of them.
    tg_pause = targets(hosts, r + 2 if not quick else 1)

    def spaced(kind, length, gap, end_after, hosts_=None, **kw):
        hs = hosts_ or tg
        faults = [Fault(kind, settle + i * gap, [h], length, **kw) for i, h in enumerate(hs)]
        return faults, settle + (len(hs) - 1) * gap + end_after

    # Pauses at 0.5x and 1.5x acceptable_pause: the verdicts must match.
    if quick:
        # One cluster for the pause and the kill (a settle saved): the pause first, the
        # kill of another host once the paused one has long resumed.
        p = tg[0]
        k = p + 1 if p < hosts else 2
        out.append(Scenario(
            "pause-kill", f"pause h{p} {0.5 * ap:g} s (0.5x acceptable_pause), then SIGKILL h{k}",
            settle + 10.0 + 25.0,
            [Fault("pause", settle, [p], 0.5 * ap), Fault("process-crash", settle + 10.0, [k], 0.0)]))
    else:
        f, d = spaced("pause", 0.5 * ap, 15.0, 15.0, tg_pause)
        out.append(Scenario("pause-short", f"pause {0.5 * ap:g} s (0.5x acceptable_pause)", d, f))
        f, d = spaced("pause", 1.5 * ap, 20.0, 20.0, tg_pause)
        out.append(Scenario("pause-long", f"pause {1.5 * ap:g} s (1.5x acceptable_pause)", d, f))
        # Crashes: restart after `down` so the next one hits a full cluster.
        down = 25.0
        # A process crash is detected by refusal, whose first suspicion is the next
        # datagram to the dead port: 0-1 s by the crash's phase against the monitors'
        # pings, min of three phases, whose median of n samples has a standard error of
        # about 1.3/sqrt(n) of itself: ±75 % at 3 (docs/chaos.md). Three times the
        # repetitions, each down only long enough to be convicted everywhere (about
        # 1.3 s) and rejoin, in about the same wall time.
        quick_down = 8.0
        f, d = spaced("process-crash", quick_down, quick_down + 5.0, down + 10.0,
                      targets(hosts, 3 * r))
        out.append(Scenario("process-crash",
                            f"process crash (SIGKILL), restart after {quick_down:g} s", d, f))
        f, d = spaced("host-crash", down, down + 15.0, down + 10.0)
        out.append(Scenario("host-crash", f"host crash (link down), back after {down:g} s", d, f))
    # Partitions.
    n_side = max(1, int(hosts * 3 / 8 + 0.5))
    side = list(range(hosts - n_side + 1, hosts + 1))
    # A healed partition converges through reconnect (a push-pull with a member held
    # dead by silence, every reconnect_interval = 5 s on lan, then quick ones): within
    # about 1.5 s at 8 hosts, real and simulated. The trimmed run checks it too.
    cut = 20.0
    after = 20.0 if quick else 75.0
    out.append(Scenario(
        "partition", f"partition {{{','.join(map(str, side))}}} | rest for {cut:g} s, then heal",
        settle + cut + after, [Fault("partition", settle, side, cut)]))
    if not quick:
        # Longer than dead_retention (5 min): each side forgets the other before the
        # heal, and only reconnect candidates (reconnect_timeout) bring them together.
        long_cut = 360.0
        out.append(Scenario(
            "partition-long",
            f"partition {{{','.join(map(str, side))}}} | rest for {long_cut:g} s "
            "(longer than dead_retention), then heal",
            settle + long_cut + 60.0, [Fault("partition", settle, side, long_cut)], opt_in=True))
        # The refusal path's first suspicion is the next datagram to the dead port, the
        # minimum of three monitors' phases (0-1 s): 21 samples pin its median to about
        # ±28 % (one standard error), where the 3-9 of the scenarios above give ±75-43 %
        # (the simulator's own per-seed medians of 7 crashes range 92-521 ms).
        f, d = spaced("process-crash", 8.0, 15.0, 25.0,
                      [2 + i % (hosts - 1) for i in range(21)])
        out.append(Scenario("refusal-sampling",
                            "21 process crashes (SIGKILL) 15 s apart, each back after 8 s",
                            d, f, opt_in=True))
        side1 = side[-2:] if len(side) >= 2 else side
        out.append(Scenario(
            "oneway", f"one-way cut: {{{','.join(map(str, side1))}}} -> rest dropped for 15 s",
            settle + 15.0 + 75.0, [Fault("oneway", settle, side1, 15.0)]))
        f, d = spaced("process-crash", 25.0, 40.0, 35.0)
        out.append(Scenario("lossy", "5 % loss per host and direction, process crashes", d, f,
                            loss=5.0))
        h = tg[len(tg) // 2]
        out.append(Scenario("loss-burst", f"40 % loss both ways at h{h} for 30 s",
                            settle + 30.0 + 20.0, [Fault("loss-burst", settle, [h], 30.0, loss=40.0)]))
        rolling = [Fault("process-crash", settle + i * 15.0, [h], 8.0)
                   for i, h in enumerate(range(2, hosts + 1))]
        out.append(Scenario("rolling-restart", "rolling restart: each host but h1 killed, back after 8 s, 15 s apart",
                            settle + (hosts - 2) * 15.0 + 25.0, rolling))
    out += dns_scenarios(hosts)
    return out


def dns_scenarios(hosts):
    """Seeds by DNS name (issue 22), the same in the trimmed and the full run: every
    node gets `--seeds NAME:7946` only, NAME being answered by dnsmasq in the rchaos-dns
    namespace from records the harness rewrites (harness/dns.py).

    dns-start: the name answers nothing (NXDOMAIN) at first, then the first half of the
    hosts, then all. No node has --bootstrap: the name is the only way in, as for a
    Deployment behind a headless Service, where no pod can be told apart as the first;
    a node that formed a cluster alone would be the split this scenario looks for (and
    with `--bootstrap yes` on one node the others would merely join it). The nodes
    resolve at start, then 2, 6, 14 s after it (--seed-retry 2 s, doubling), so the
    name starting to answer at 4 s is found at 6 s.

    identity: the name lists every host, then three steps, each SIGKILLing one process
    and starting another (the name's records follow: the killed address goes, the new
    one comes with the new process):
      1. recreated pod, quickly: h(K-1) killed, a process named h(K-1) started on the
         spare host s1 (a new address) 0.5 s later, before the old one is convicted;
      2. reused address: hK killed, a process named h(2K+1) started on hK's host 0.5 s
         later (a new pod given the old one's IP), before hK is convicted;
      3. recreated pod, slowly: h(K-1) (now on s1) killed, started again on its first
         host 3 s later, after its conviction, at the address its first life had."""
    out = []
    some = list(range(1, max(1, hosts // 2) + 1))
    out.append(Scenario(
        "dns-start",
        f"seeds by DNS name only: NXDOMAIN until 4 s, then h{some[0]}..h{some[-1]}, all from 9 s",
        16.0, [], sim=False, runner="dns",
        params={"answer_at": 4.0, "first": some, "all_at": 9.0, "http_host": 1}))
    if hosts >= 3:
        old, reused, new = hosts - 1, hosts, 2 * hosts + 1
        out.append(Scenario(
            "identity",
            f"h{old} recreated on a new address (0.5 s), h{reused}'s address reused by "
            f"h{new} (0.5 s), h{old} recreated again (3 s)",
            33.0, [], sim=False, runner="dns",
            params={"steps": [
                {"label": "recreated pod, before conviction", "kill": f"h{old}", "at": 6.0,
                 "gap": 0.5, "name": f"h{old}", "host": "s1"},
                {"label": "reused address, before conviction", "kill": f"h{reused}",
                 "at": 14.0, "gap": 0.5, "name": f"h{new}", "host": f"h{reused}"},
                {"label": "recreated pod, after conviction", "kill": f"h{old}", "at": 23.0,
                 "gap": 3.0, "name": f"h{old}", "host": f"h{old}"},
            ]}))
    return out


# -- the simulator's scenario file ---------------------------------------------------


def _dur(s):
    return f"{int(round(s * 1000))}ms"


def sim_toml(sc, hosts, sets, loss_pct, latency_us, crash_field=None):
    """The simulator's scenario for `sc`. `loss_pct` is the real per-host, per-direction
    loss: a datagram crosses two such filters (the sender's egress and the receiver's
    ingress), so the simulator's per-datagram loss is 1 - (1 - p)^2."""
    p = (sc.loss if sc.loss is not None else loss_pct) / 100.0
    e2e = 1.0 - (1.0 - p) ** 2
    lines = [
        f"# Generated by chaos/run.sh from the scenario {sc.name!r}: {sc.title}.",
        "# Host hK of the real run is node K-1 here.",
        f'name = "chaos-{sc.name}"',
        f'description = "{sc.title}"',
        f"nodes = {hosts}",
        f'duration = "{_dur(sc.duration)}"',
        "seed = 1",
        'warmup = "10s"',
        'join_spread = "300ms"',
        'preset = "lan"',
        "",
        "[config]",
    ]
    for k, v in sets:
        lines.append(f'{k} = "{v}"')
    lines += [
        "",
        "[network]",
        f'latency = {{ dist = "lognormal", median = "{max(1, int(latency_us))}us", sigma = 0.3 }}',
        'link_jitter = "0us"',
        f"loss = {e2e:.6f}",
        "recv_buffer = 8388608",
    ]
    for f in sc.faults:
        nodes = [h - 1 for h in f.hosts]
        if f.kind == "pause":
            lines += ["", "[[faults]]", 'kind = "pause"', f'at = "{_dur(f.at)}"',
                      f"targets = {{ nodes = {nodes} }}",
                      f'pause = {{ dist = "fixed", value = "{_dur(f.length)}" }}']
        elif f.kind in CRASHES:
            lines += ["", "[[faults]]"]
            if f.length > 0:
                lines += ['kind = "restart"', f'down = "{_dur(f.length)}"']
            else:
                lines += ['kind = "crash"']
            if crash_field:
                lines.append(f'{crash_field} = "{f.kind.split("-")[0]}"')
            lines += [f'at = "{_dur(f.at)}"', f"targets = {{ nodes = {nodes} }}"]
        elif f.kind in ("partition", "oneway", "loss-burst"):
            lines += ["", "[[partitions]]", f'start = "{_dur(f.at)}"',
                      f'end = "{_dur(f.at + f.length)}"', f"side = {{ nodes = {nodes} }}"]
            if f.kind == "oneway":
                lines.append("one_way = true")
            if f.kind == "loss-burst":
                # The burst's rule sits at the host's port, one filter per direction, on
                # top of the base loss the network model already applies end to end.
                lines.append(f"loss = {f.loss / 100.0:.6f}")
        else:
            raise ValueError(f"no simulator counterpart for {f.kind}")
    return "\n".join(lines) + "\n"
