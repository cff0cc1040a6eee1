#!/usr/bin/env bash
# Validates the Kubernetes manifests offline: against the Kubernetes OpenAPI schemas
# (kubernetes-validate from PyPI, pinned in scripts/k8s/requirements.txt, installed in
# a venv under target/), strict (an unknown or misspelled field fails), against the
# timing rules of scripts/k8s/timing_rules.py, and with `rumor-node doctor`
# (docs/doctor.md). Checks first that each checker does fail on a broken manifest, so
# a checker that passes everything cannot go unnoticed.
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=1.33.0
venv=target/k8s-validate-venv
if ! "$venv/bin/python" -c 'import kubernetes_validate' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/k8s/requirements.txt
fi
validate() {
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$@"
    "$venv/bin/python" scripts/k8s/timing_rules.py "$@"
}
broken=$(mktemp --suffix=.yaml)
trap 'rm -f "$broken"' EXIT
# A misspelled field for the schema, a CPU limit for the rules.
sed -e 's/periodSeconds: 15/periodSecond: 15/' examples/k8s/statefulset.yaml >"$broken"
if "$venv/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$broken" >/dev/null 2>&1; then
    echo "validate-k8s: the schema check passed a misspelled field" >&2
    exit 1
fi
sed -e 's/limits: {memory: 128Mi}/limits: {memory: 128Mi, cpu: 500m}/' \
    -e 's/--drain=10s/--drain=3s/' examples/k8s/statefulset.yaml >"$broken"
if "$venv/bin/python" scripts/k8s/timing_rules.py "$broken" >/dev/null; then
    echo "validate-k8s: the timing rules passed a CPU limit and a short drain" >&2
    exit 1
fi
# The doctor, from the debug build CI's tests have made already (then this build does
# nothing). The guidance's broken manifest (liveness on /readyz, no startup probe, a
# CPU limit, ...) must fail with exit 1: 0 would be a doctor that passes everything,
# 2 one that cannot read a manifest.
cargo build -q --workspace --all-features --bin rumor-node
doctor=target/debug/rumor-node
status=0
"$doctor" doctor --manifest node/tests/fixtures/doctor/broken.yaml >/dev/null || status=$?
if [ "$status" -ne 1 ]; then
    echo "validate-k8s: rumor-node doctor exited $status on node/tests/fixtures/doctor/broken.yaml, not 1" >&2
    exit 1
fi
validate examples/k8s/*.yaml
"$doctor" doctor --manifest examples/k8s/statefulset.yaml
echo "validate-k8s: examples/k8s/*.yaml valid (Kubernetes $K8S_VERSION, strict), within the timing rules, and clean for rumor-node doctor"
