"""The side-by-side report: per scenario, rumor on the real network, rumor in the
simulator (the same faults, several seeds), their ratio, and Serf on the real network."""

from collections import defaultdict
from math import comb
from statistics import median

from . import dns
from .analyze import pct

TOLERANCE = 0.20  # the target: real / simulated latency within ±20 %


def fmt_ms(v):
    return "–" if v is None else f"{v:.0f}"


def span(values):
    vs = [v for v in values if v is not None]
    if not vs:
        return "–"
    if len(vs) == 1:
        return f"{vs[0]:.0f}"
    return f"{pct(vs, 0.5):.0f} [{min(vs):.0f}–{max(vs):.0f}]"


def ratio(real, sim):
    if real is None or sim is None or sim <= 0:
        return None
    return real / sim


def fmt_ratio(r, interval=None, sim=None):
    """The ratio, flagged **out** beyond ±20 %. With `interval`, the distribution-free
    interval of the real median (see `median_interval`): an out ratio whose simulated
    value lies inside it is one the real run's own sampling explains, and says so."""
    if r is None:
        return "–"
    if abs(r - 1.0) <= TOLERANCE:
        return f"{r:.2f}"
    if interval and sim is not None and interval[0] <= sim <= interval[1]:
        lo, hi, cover = interval
        return f"{r:.2f} **out**, sim inside the real median's {cover:.0%} interval [{lo:.0f}–{hi:.0f}]"
    return f"{r:.2f} **out**"


def median_interval(values, confidence=0.95):
    """A distribution-free confidence interval for the median of `values`: the order
    statistics x(k) and x(n+1-k) with the largest k whose coverage,
    1 - 2 P(Binomial(n, 1/2) < k), reaches `confidence` (k = 1, min and max, when none
    does: then the coverage says how little 3 samples pin down). Returns (lo, hi,
    coverage), or None for fewer than 2 values."""
    xs = sorted(v for v in values if v is not None)
    n = len(xs)
    if n < 2:
        return None
    below = 0.0  # P(B <= k - 1), accumulated as k grows
    choice = (xs[0], xs[-1], 1.0 - 2.0 * comb(n, 0) / 2.0 ** n)
    for k in range(1, n // 2 + 1):
        below += comb(n, k - 1) / 2.0 ** n
        cover = 1.0 - 2.0 * below
        if cover < confidence:
            break
        choice = (xs[k - 1], xs[n - k], cover)
    return choice


def sim_stat(reports, path):
    """Per-run values of a report field (dotted path), None where missing."""
    out = []
    for rep in reports:
        v = rep
        for p in path.split("."):
            v = v.get(p) if isinstance(v, dict) else None
        out.append(v)
    return out


def frac_verdict(real_k, real_n, sim_k, sim_n):
    """Compares how often a verdict (convicted, detected) was reached. The same when
    the fractions agree; when the simulator itself is split across seeds the verdict is
    borderline and any real outcome is consistent with it."""
    if not sim_n or not real_n:
        return None, "–"
    fr, fs = real_k / real_n, sim_k / sim_n
    if fr == fs:
        return True, "same"
    if 0 < fs < 1:
        return True, "same (sim split)"
    return False, "**differs**"


def count_verdict(real, values):
    """A count (false convictions) agrees when the real one lies within the seeds' range."""
    vs = [v for v in values if v is not None]
    if not vs:
        return None, "–"
    if min(vs) <= real <= max(vs):
        return True, "same" if min(vs) == max(vs) else "within"
    return False, "**differs**"


def count_span(values):
    vs = [v for v in values if v is not None]
    if not vs:
        return "–"
    mean = sum(vs) / len(vs)
    m = f"{mean:.1f}".rstrip("0").rstrip(".")
    return m if min(vs) == max(vs) else f"{m} [{min(vs)}–{max(vs)}]"


def scenario_rows(sc, real, sim):
    """Rows (measure, rumor real, rumor sim, real/sim, Serf real, check) for one
    scenario. `real` maps system -> analysis; `sim` is the list of simulator reports
    (None without a counterpart). `check` is None or (kind, value) for --check."""
    rows = []
    rr = real.get("rumor")
    sr = real.get("serf")
    kinds = {f.kind for f in sc.faults}

    def add(measure, rv, sv, rt, serf, check=None):
        rows.append((measure, rv, sv, rt, serf, check))

    def serf(fn):
        return fn(sr) if sr else "–"

    if "pause" in kinds:
        n = len(rr["pauses"])
        conv_r = sum(p["convicted"] for p in rr["pauses"])
        susp_r = sum(p["suspected"] for p in rr["pauses"])
        if sim:
            conv_s = sum(r["paused_convictions"] for r in sim)
            ok, txt = frac_verdict(conv_r, n, conv_s, n * len(sim))
            simv = f"{conv_s}/{n * len(sim)}"
        else:
            ok, txt, simv = None, "–", "–"
        add("pauses convicted", f"{conv_r}/{n}", simv, txt,
            serf(lambda x: f"{sum(p['convicted'] for p in x['pauses'])}/{n}"),
            ("verdict", ok) if ok is not None else None)
        add("pauses suspected", f"{susp_r}/{n}", "not reported", "–",
            serf(lambda x: f"{sum(p['suspected'] for p in x['pauses'])}/{n}"))
        add("pause -> first suspicion ms", span([p["first_suspicion_ms"] for p in rr["pauses"]]),
            "not reported", "–", serf(lambda x: span([p["first_suspicion_ms"] for p in x["pauses"]])))
        if conv_r or (sr and any(p["convicted"] for p in sr["pauses"])):
            add("pause -> first conviction ms", span([p["conviction_ms"] for p in rr["pauses"]]),
                "not reported", "–", serf(lambda x: span([p["conviction_ms"] for p in x["pauses"]])))

    if kinds & {"process-crash", "host-crash"}:
        cr = rr["crashes"]
        n = len(cr)
        for label, key in (("crash -> first suspicion ms", "first_suspicion_ms"),
                           ("crash -> dead at every survivor ms", "detection_ms")):
            real_vals = [c[key] for c in cr if c[key] is not None]
            real_p50 = pct(real_vals, 0.5)
            sim_p50s = sim_stat(sim, key + ".p50") if sim else []
            got = [v for v in sim_p50s if v is not None]
            sim_p50 = median(got) if got else None
            rt = ratio(real_p50, sim_p50)
            shown = fmt_ratio(rt, median_interval(real_vals), sim_p50)
            add(label, span([c[key] for c in cr]), span(sim_p50s) if sim else "–", shown,
                serf(lambda x: span([c[key] for c in x["crashes"]])),
                ("latency", rt) if rt is not None else None)
        def causes(x):
            tot = defaultdict(int)
            for c in x["crashes"]:
                for k, v in c.get("dead_causes", {}).items():
                    tot[k] += v
            return ", ".join(f"{k} {v}" for k, v in sorted(tot.items())) or "–"

        add("dead verdicts by cause", causes(rr), "not reported", "–", "–")
        det_r = sum(c["detected"] for c in cr)
        if sim:
            det_s, n_s = sum(r["detected"] for r in sim), sum(r["crashes"] for r in sim)
            ok, txt = frac_verdict(det_r, n, det_s, n_s)
            simv = f"{det_s}/{n_s}"
        else:
            ok, txt, simv = None, "–", "–"
        add("crashes detected by every survivor", f"{det_r}/{n}", simv, txt,
            serf(lambda x: f"{sum(c['detected'] for c in x['crashes'])}/{n}"),
            ("verdict", ok) if ok is not None else None)

    for j, cut in enumerate(rr["cuts"]):
        sc_cut = sr["cuts"][j] if sr else None
        label = "cut" if cut["what"] == "cut" else "burst"
        add(f"{label} -> first suspicion across it ms", fmt_ms(cut["first_suspicion_ms"]),
            "not reported", "–", fmt_ms(sc_cut["first_suspicion_ms"]) if sc_cut else "–")
        add(f"{label}: pairs convicted (of {cut['pairs']})", str(cut["pairs_convicted"]),
            "not reported", "–", str(sc_cut["pairs_convicted"]) if sc_cut else "–")
        if cut["all_convicted_ms"] is not None or (sc_cut and sc_cut["all_convicted_ms"] is not None):
            add(f"{label} -> every pair convicted ms", fmt_ms(cut["all_convicted_ms"]),
                "not reported", "–", fmt_ms(sc_cut["all_convicted_ms"]) if sc_cut else "–")

        def healed(c):
            return "not by the end" if c["heal_ms"] is None else fmt_ms(c["heal_ms"])

        # The simulator reports one heal sample per partition (`heal_ms`, and
        # `unhealed_partitions` for those not healed by the next fault); it matches this
        # row only when the run has a single cut. Loss bursts are not partitions there.
        n_cuts = sum(1 for c in rr["cuts"] if c["what"] == "cut")
        sim_heal, heal_ratio = "not reported", "–"
        if sim and label == "cut" and n_cuts == 1 and all("heal_ms" in r for r in sim):
            vals = sim_stat(sim, "heal_ms.p50")
            unhealed = sum(r.get("unhealed_partitions", 0) for r in sim)
            sim_heal = span(vals) + (f" ({unhealed} of {len(sim)} not healed)" if unhealed else "")
            got = [v for v in vals if v is not None]
            heal_ratio = fmt_ratio(ratio(cut["heal_ms"], median(got) if got else None))
        add("heal -> every view live ms", healed(cut), sim_heal, heal_ratio,
            healed(sc_cut) if sc_cut else "–")

    # The oracle's counts, every scenario.
    if sim:
        ok, txt = count_verdict(rr["false_convictions"], [r["false_convictions"] for r in sim])
    else:
        ok, txt = None, "–"
    add("false convictions (member·life)",
        f"{rr['false_convictions']} ({rr['paused_convictions']} paused)",
        f"{count_span([r['false_convictions'] for r in sim])} "
        f"({count_span([r['paused_convictions'] for r in sim])} paused)" if sim else "–",
        txt, serf(lambda x: f"{x['false_convictions']} ({x['paused_convictions']} paused)"),
        ("verdict", ok) if ok is not None else None)
    add("false suspicions after 2 s (at start)",
        f"{rr['false_suspicions']} ({rr.get('startup_suspicions', 0)})",
        count_span([r["false_suspicions"] for r in sim]) if sim else "–", "–",
        serf(lambda x: f"{x['false_suspicions']} ({x.get('startup_suspicions', 0)})"))
    add("stale views at end", str(rr["stale_views_at_end"]),
        count_span([r["stale_views_at_end"] for r in sim]) if sim else "–", "–",
        serf(lambda x: str(x["stale_views_at_end"])),
        ("converged", rr["stale_views_at_end"] == 0) if sc.expect_heal else None)
    return rows


def markdown(meta, scenarios, results):
    out = []
    out.append(f"Command: `{meta['command']}`  ")
    out.append(f"Hosts: {meta['hosts']} network namespaces on one bridge; rumor `lan` preset"
               f"{' with ' + ', '.join(f'{k}={v}' for k, v in meta['sets']) if meta['sets'] else ''}"
               f" (acceptable_pause {meta['acceptable_pause']:g} s); base loss {meta['loss']:g} % per host and direction; "
               f"measured one-way delay {meta['latency_us']:.0f} µs (median UDP RTT / 2) fed to the simulator; "
               f"simulator seeds {meta['seeds']}; Serf {'(' + meta['serf_version'] + ') on the same hosts' if meta['serf'] else 'not run'}.")
    out.append(f"Wall time {meta['wall_s']:.0f} s. Binaries built from commit {meta['commit']}"
               + (f" plus uncommitted changes to {', '.join(meta['dirty'])}" if meta['dirty'] else "")
               + "; simulator crash kinds: "
               + (f"`{meta['sim_crash_field']} = \"process\" | \"host\"`" if meta['sim_crash_field']
                  else "none (every simulated crash is silent)") + ".")
    if meta.get("dns_skipped"):
        out.append(f"DNS scenarios skipped ({', '.join(meta['dns_skipped'])}): no dnsmasq "
                   "(Debian package dnsmasq-base).")
    out.append("")
    out.append("Values are p50 [min–max] over the fault's repetitions (real) or over the seeds' "
               "per-run p50s (sim); ratio = real / sim, **out** marks a ratio outside ±20 %, "
               "and says when the simulated p50 lies inside the distribution-free confidence "
               "interval of the real median (order statistics; with few repetitions that "
               "interval is wide, and its coverage is given).")
    for sc in scenarios:
        res = results[sc.name]
        out.append("")
        out.append(f"### {sc.name}: {sc.title}")
        out.append("")
        if sc.loss is not None:
            out.append(f"Network-wide loss {sc.loss:g} % per host and direction.  ")
        if not sc.sim:
            out.append("No simulator counterpart (see docs/chaos.md).  ")
        m = res.get("machine") or {}
        lt = m.get("lateness") or {}
        if lt:
            out.append(f"Machine: load {m.get('loadavg_before')} → {m.get('loadavg_after')}; "
                       f"rumor timer lateness above 250 ms (stall_threshold) at unpaused nodes: "
                       f"{lt.get('over_threshold')} (max {fmt_ms(lt.get('max_ms'))} ms).  ")
        if res.get("sim_scenario"):
            out.append(f"Simulator: `{res['sim_scenario']}`, seeds {meta['seeds']}.  ")
        if sc.runner == "dns":
            out.append(f"Seeds by DNS name: every node has `--seeds {dns.NAME}:7946` only, "
                       "answered by dnsmasq in rchaos-dns from records the harness rewrites; "
                       "rumor only (no Serf), logs in `logs/" + sc.name + "/` (events.jsonl, "
                       "actions.json, dnsmasq.log).  ")
            out.append("")
            out.append("| measure | rumor real |")
            out.append("|---|---|")
            for (m, v, _c) in res["rows"]:
                out.append(f"| {m} | {v} |")
            out += dns.observer_table(res["dns"])
            continue
        out.append("")
        out.append("| measure | rumor real | rumor sim | real/sim | Serf real |")
        out.append("|---|---|---|---|---|")
        for (m, rv, sv, rt, serf, _c) in res["rows"]:
            out.append(f"| {m} | {rv} | {sv} | {rt} | {serf} |")
    return "\n".join(out) + "\n"
