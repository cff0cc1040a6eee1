"""Measurements from the real runs, with the simulator oracle's definitions
(sim/src/oracle.rs, sim/src/world.rs) so the two sides are comparable:

- false conviction: a distinct (member, life) declared dead by a live member while
  that process was running (up or paused), a life being one process of the member
  (the simulator's oracle counts the same way); `paused` counts those
  declared dead while paused. A false suspicion likewise.
- crash detection: crash -> dead at every observer that ran from the crash to the
  end of the crash's window (the restart, or the end of the run); first suspicion:
  crash -> first suspicion by anyone.
- stale views at end: (observer, subject) pairs of running observers whose view
  contradicts the truth at the end (a running subject held dead/left/unknown, a crashed
  one held alive or suspect).

Serf's log carries no incarnation: for Serf, a member's "incarnation" is the number of
its process starts plus the refutations it logged, which is what bumps memberlist's
incarnation.
"""

import math
from collections import defaultdict

LIVE = ("alive", "suspect")
STARTUP = 2.0  # s: suspicions before this are counted apart (see analyze)


def hnum(name):
    return int(name[1:])


def pct(values, q):
    """Nearest-rank percentile, as the simulator computes it; None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = min(max(int(math.ceil(q * len(s))), 1), len(s))
    return s[k - 1]


class Truth:
    """What each host really was, from the actions the harness took and their times."""

    def __init__(self, hosts):
        self.changes = {h: [(0.0, "up")] for h in hosts}

    @classmethod
    def from_actions(cls, hosts, actions):
        t = cls(hosts)
        for a in actions:
            if a["what"] in ("pause", "crash") and "t" in a:
                t.set(a["host"], a["t"], "paused" if a["what"] == "pause" else "crashed")
                if "until" in a:
                    t.set(a["host"], a["until"], "up")
        for h in t.changes:
            t.changes[h].sort(key=lambda c: c[0])
        return t

    def set(self, h, t, state):
        self.changes[h].append((t, state))

    def at(self, h, t):
        state = "up"
        for (ts, st) in self.changes[h]:
            if ts <= t:
                state = st
        return state

    def running(self, h, t):
        return self.at(h, t) in ("up", "paused")

    def life(self, h, t):
        """Which process of host `h` runs at `t`: 1, then one more after each crash the
        host came back from (the simulator's oracle counts false convictions by life)."""
        life, down = 1, False
        for (ts, st) in self.changes[h]:
            if ts > t:
                break
            if st == "crashed":
                down = True
            elif down and st == "up":
                life, down = life + 1, False
        return life

    def running_throughout(self, h, a, b):
        if not self.running(h, a):
            return False
        return all(st != "crashed" for (ts, st) in self.changes[h] if a <= ts <= b)


def keyed(events, system):
    """Attaches an incarnation key to every event (Serf: lives + refutations)."""
    if system != "serf":
        return [(e, e.inc) for e in events]
    count = defaultdict(int)
    out = []
    for e in events:
        if e.kind in ("started", "refuted") and e.observer == e.subject:
            count[e.subject] += 1
        out.append((e, count[e.subject]))
    return out


def analyze(system, events, truth, actions, hosts, t_end):
    """Everything measured for one system in one scenario run."""
    evs = [e for e in events if e.system == system and e.t <= t_end]
    kev = keyed(evs, system)
    res = {"system": system}

    # -- false convictions and suspicions, the oracle's way ------------------------
    fc, pc, fs, early = set(), set(), set(), set()
    for e, key in kev:
        if e.observer == e.subject or e.kind not in ("dead", "suspect"):
            continue
        if e.kind == "suspect" and e.t < STARTUP:
            # Real only: the processes start over ~60 ms, and a join sent to a seed not
            # yet bound is refused; that refusal can reach a node after it has learned
            # the member (from someone else) and read as evidence against it.
            early.add((hnum(e.subject), key))
            continue
        s = hnum(e.subject)
        st = truth.at(s, e.t)
        if st not in ("up", "paused"):
            continue
        # By (member, life), as the simulator's oracle counts them: one life convicted
        # twice (at two incarnations) is one false conviction.
        life = truth.life(s, e.t)
        if e.kind == "dead":
            fc.add((s, life))
            if st == "paused":
                pc.add((s, life))
        else:
            fs.add((s, life))
    res["false_convictions"] = len(fc)
    res["paused_convictions"] = len(pc)
    res["false_suspicions"] = len(fs)
    res["startup_suspicions"] = len(early)

    def first(kind, subject, a, b, observers=None):
        ts = [e.t for e in evs if e.kind == kind and e.subject == subject
              and a <= e.t <= b and e.observer != subject
              and (observers is None or e.observer in observers)]
        return min(ts) if ts else None

    # -- crashes ---------------------------------------------------------------------
    crashes = []
    for act in actions:
        if act["what"] != "crash":
            continue
        s, a = act["host"], act["t"]
        e = act.get("until", t_end)
        name = f"h{s}"
        eligible = [o for o in hosts if o != s and truth.running_throughout(o, a, e)]
        seen = {o: first("dead", name, a, e, {f"h{o}"}) for o in eligible}
        causes = defaultdict(int)
        for o, t in seen.items():
            if t is not None:
                c = next((x.cause for x in evs if x.t == t and x.kind == "dead"
                          and x.subject == name and x.observer == f"h{o}"), None)
                causes[c or "unknown"] += 1
        fs_t = first("suspect", name, a, e)
        detected = all(v is not None for v in seen.values())
        crashes.append({
            "host": s, "kind": act["kind"], "at": a,
            "first_suspicion_ms": None if fs_t is None else (fs_t - a) * 1e3,
            "detected": detected,
            "detection_ms": (max(seen.values()) - a) * 1e3 if detected and seen else None,
            "seen_by": sum(v is not None for v in seen.values()), "eligible": len(eligible),
            "dead_causes": dict(causes),
        })
    res["crashes"] = crashes

    # -- pauses ----------------------------------------------------------------------
    pauses = []
    for act in actions:
        if act["what"] != "pause":
            continue
        s, a, b = act["host"], act["t"], act["until"]
        name = f"h{s}"
        # A verdict can land just after the resume (the backlog of acks is read then):
        # look 3 s past it, as the oracle does by counting every dead verdict while
        # the member runs.
        fs_t = first("suspect", name, a, b + 3.0)
        dead_t = first("dead", name, a, b + 3.0)
        pauses.append({
            "host": s, "at": a, "length_ms": (b - a) * 1e3,
            "suspected": fs_t is not None, "convicted": dead_t is not None,
            "first_suspicion_ms": None if fs_t is None else (fs_t - a) * 1e3,
            "conviction_ms": None if dead_t is None else (dead_t - a) * 1e3,
        })
    res["pauses"] = pauses

    # -- partitions and loss bursts ----------------------------------------------------
    cuts = []
    for act in actions:
        if act["what"] not in ("cut", "burst"):
            continue
        a, b = act["t"], act["until"]
        side = set(act["hosts"])
        rest = set(hosts) - side
        if act["what"] == "cut":
            # Both directions of a one-way cut lose the round trip (pings one way, acks
            # the other), so every cross pair counts.
            pairs = [(o, s) for o in rest for s in side] + [(o, s) for o in side for s in rest]
        else:
            pairs = [(o, s) for o in rest for s in side]
        susp = [first("suspect", f"h{s}", a, b + 3.0, {f"h{o}"}) for o, s in pairs]
        dead = [first("dead", f"h{s}", a, b + 3.0, {f"h{o}"}) for o, s in pairs]
        got = [t for t in susp if t is not None]
        dd = [t for t in dead if t is not None]
        cuts.append({
            "what": act["what"], "one_way": act.get("one_way", False), "at": a,
            "length_ms": (b - a) * 1e3, "pairs": len(pairs),
            "first_suspicion_ms": (min(got) - a) * 1e3 if got else None,
            "pairs_convicted": len(dd),
            "all_convicted_ms": (max(dd) - a) * 1e3 if len(dd) == len(pairs) else None,
            "heal_ms": heal_time(evs, truth, hosts, b, t_end),
        })
    res["cuts"] = cuts
    res["stale_views_at_end"] = stale_at(evs, truth, hosts, t_end)
    return res


def apply(view, s, kind):
    """A suspicion never revives a member held dead or departed: SWIM precedence in
    rumor, and in Serf a failed probe of a member already failed is only a log line."""
    if kind == "suspect" and view.get(s) in ("dead", "left"):
        return
    view[s] = kind


def replay(evs, hosts, until):
    """Every observer's view of every member at `until`: last state heard (a restart
    of the observer forgets everything)."""
    view = {o: {} for o in hosts}
    for e in evs:
        if e.t > until:
            break
        o = hnum(e.observer)
        if e.kind == "started" and e.observer == e.subject:
            view[o] = {}
        elif e.kind in ("alive", "suspect", "dead", "left") and e.subject != e.observer:
            apply(view[o], hnum(e.subject), e.kind)
    return view


def stale_count(view, truth, hosts, t):
    n = 0
    for o in hosts:
        if not truth.running(o, t):
            continue
        for s in hosts:
            if s == o:
                continue
            live = view[o].get(s) in LIVE
            if live != truth.running(s, t):
                n += 1
    return n


def stale_at(evs, truth, hosts, t):
    return stale_count(replay(evs, hosts, t), truth, hosts, t)


def heal_time(evs, truth, hosts, healed_at, t_end):
    """Heal -> the moment from which every running observer holds every running member
    live (and does until the end); None if views still disagree at the end."""
    view = replay(evs, hosts, healed_at)
    agreed_since = None if stale_count(view, truth, hosts, healed_at) else healed_at
    for e in evs:
        if e.t <= healed_at or e.t > t_end:
            continue
        o = hnum(e.observer)
        if e.kind == "started" and e.observer == e.subject:
            view[o] = {}
        elif e.kind in ("alive", "suspect", "dead", "left") and e.subject != e.observer:
            apply(view[o], hnum(e.subject), e.kind)
        else:
            continue
        if stale_count(view, truth, hosts, e.t):
            agreed_since = None
        elif agreed_since is None:
            agreed_since = e.t
    if agreed_since is None or stale_count(view, truth, hosts, t_end):
        return None
    return (agreed_since - healed_at) * 1e3


def lateness(log_dir, skip_hosts, threshold_ms=250.0):
    """Timer lateness the nodes recorded (`--pauses` files, ms, samples above 5 ms),
    hosts in `skip_hosts` (paused on purpose) left out: how much the machine itself
    stalled the nodes. A sample above `stall_threshold` (250 ms on lan) makes a node
    treat itself as stalled and defer its convictions by `stall_guard`."""
    import os
    import re

    samples = []
    files = 0
    for fn in sorted(os.listdir(log_dir)):
        m = re.match(r"pauses-h(\d+)-\d+\.txt$", fn)
        if not m or int(m.group(1)) in skip_hosts:
            continue
        files += 1
        with open(os.path.join(log_dir, fn)) as fh:
            for line in fh:
                line = line.strip()
                if line and not line.startswith("#"):
                    try:
                        samples.append(float(line))
                    except ValueError:
                        pass
    return {"files": files, "samples_over_5ms": len(samples),
            "over_threshold": sum(x > threshold_ms for x in samples),
            "max_ms": max(samples) if samples else None}
