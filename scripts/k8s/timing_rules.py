"""The rules of examples/k8s/*.yaml that a schema cannot check: probe timings and the
graceful stop. Run by scripts/validate-k8s.sh with the venv's PyYAML.

usage: python3 timing_rules.py MANIFEST...   (exit 1 and one line per broken rule)
"""

import re
import sys

import yaml

# What the runtime needs beyond the drain: its leave_timeout (2 s by default) and the
# process's exit.
LEAVE_S = 2
EXIT_SLACK_S = 3


def seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    scale = {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]
    return float(m.group(1)) * scale


def flag(args, name):
    for a in args:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def check_pod(where, spec):
    errors = []
    grace = spec.get("terminationGracePeriodSeconds", 30)
    for c in spec.get("containers", []):
        at = f"{where} container {c.get('name')}"
        probes = {k: c.get(k) for k in ("startupProbe", "livenessProbe", "readinessProbe")}
        paths = {}
        for kind, p in probes.items():
            if p is None:
                errors.append(f"{at}: no {kind}")
                continue
            if "timeoutSeconds" not in p:
                errors.append(f"{at}: {kind} has no timeoutSeconds (the default 1 s is too tight)")
            paths[kind] = p.get("httpGet", {}).get("path")
        if len(set(paths.values())) != len(paths):
            errors.append(f"{at}: probes share a path {paths} (liveness must never be readiness)")
        live, ready = probes.get("livenessProbe"), probes.get("readinessProbe")
        if live and ready and live.get("periodSeconds", 10) * live.get("failureThreshold", 3) <= \
                ready.get("periodSeconds", 10) * ready.get("failureThreshold", 3):
            errors.append(f"{at}: liveness gives up no later than readiness")
        drain = flag(c.get("args", []), "drain")
        if ready and drain is not None:
            d = seconds(drain)
            need = ready.get("periodSeconds", 10) * ready.get("failureThreshold", 3)
            if d < need:
                errors.append(f"{at}: --drain={drain} is shorter than readiness "
                              f"periodSeconds x failureThreshold = {need} s")
            if grace < d + LEAVE_S + EXIT_SLACK_S:
                errors.append(f"{at}: terminationGracePeriodSeconds {grace} < drain {d:g} s "
                              f"+ leave {LEAVE_S} s + exit {EXIT_SLACK_S} s")
        limits = c.get("resources", {}).get("limits", {})
        if "cpu" in limits:
            errors.append(f"{at}: a CPU limit (throttling stalls the process: peers see pauses)")
    return errors


def main(paths):
    errors = []
    for path in paths:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc:
                    continue
                tmpl = doc.get("spec", {}).get("template", {}).get("spec")
                if tmpl:
                    where = f"{path}: {doc['kind']}/{doc['metadata']['name']}"
                    errors += check_pod(where, tmpl)
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
