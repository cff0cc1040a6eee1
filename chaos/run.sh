#!/usr/bin/env bash
# Real-network chaos for rumor on this machine, checked against rumor-sim, with Serf
# beside it. One command:
#
#   chaos/run.sh [--hosts 8] [--quick] [--serf] [--loss PCT] [--reps 3] [--seeds 5]
#                [--only NAME,...] [--set field=value]... [--out DIR] [--check] [--list]
#                [--debug]   (use the debug binaries .ci/run already built)
#   chaos/run.sh --cleanup      # remove what an interrupted run left (namespaces only)
#
# Needs root (network namespaces), iproute2, nftables and python3; installs the Debian
# packages that are missing (nftables, iproute2, dnsmasq-base for the DNS scenarios,
# and serf with --serf). Where that is impossible (not root, not Linux, no apt,
# namespaces refused) it prints why and exits 0: a skip, not a failure; without
# dnsmasq only the DNS scenarios are skipped. Everything it creates is named rchaos-*:
# network namespaces, and /etc/netns/rchaos-*/resolv.conf for the DNS scenarios (which
# `ip netns exec` bind-mounts in those namespaces only); the trap below deletes them on
# any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=rchaos-

skip() {
    echo "chaos: SKIPPED: $*"
    exit 0
}

# Whether /etc/netns held anything but ours before this run (the DNS scenarios create
# it if missing; then it goes again).
netns_etc_existed=0
if [ -d /etc/netns ] && ls -A /etc/netns | grep -qv "^$PREFIX"; then netns_etc_existed=1; fi

cleanup() {
    # Only our own namespaces: kill the processes inside them (by pid), delete them.
    # Deleting a namespace deletes its veth ends, addresses and nftables tables.
    local ns pid d
    for ns in $(ip netns list 2>/dev/null | awk -v p="$PREFIX" 'index($1, p) == 1 {print $1}'); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -CONT "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        done
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
            sleep 0.2
        done
        ip netns del "$ns" 2>/dev/null || true
    done
    # The DNS scenarios' per-namespace resolv.conf files (/etc/netns/rchaos-*/), and
    # /etc/netns if this run made it and it is empty now.
    for d in /etc/netns/"$PREFIX"*; do
        [ -d "$d" ] && rm -rf -- "$d"
    done
    if [ "$netns_etc_existed" = 0 ] && [ -d /etc/netns ]; then
        rmdir /etc/netns 2>/dev/null || true
    fi
}

# The command as typed, for the report.
export CHAOS_COMMAND="chaos/run.sh $*"
want_serf=0
quick=0
debug=0
args=()
for arg in "$@"; do
    case "$arg" in
        --serf) want_serf=1 ;;
        --quick) quick=1 ;;
        --debug) debug=1; continue ;;
        -h | --help | --list) exec python3 chaos/chaos.py "$@" ;;
    esac
    args+=("$arg")
done
set -- "${args[@]+"${args[@]}"}"

[ "$(uname -s)" = Linux ] || skip "network namespaces need Linux (this is $(uname -s))"
[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces (run as root)"
command -v python3 >/dev/null || skip "python3 is not installed"

if [ "${1:-}" = "--cleanup" ]; then
    command -v ip >/dev/null || exit 0
    cleanup
    echo "chaos: removed every ${PREFIX}* namespace"
    exit 0
fi

# -- packages -------------------------------------------------------------------------
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v nft >/dev/null || missing+=(nftables)
if [ "$want_serf" = 1 ] && ! command -v serf >/dev/null; then missing+=(serf); fi
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || skip "missing ${missing[*]} and no apt-get to install them"
    echo "chaos: installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq >/dev/null || skip "apt-get update failed (offline?)"
    if ! timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        # Serf is optional: without it the run goes on, and the report says so.
        if [ "$want_serf" = 1 ] && command -v ip >/dev/null && command -v nft >/dev/null; then
            echo "chaos: could not install serf; running without it"
        else
            skip "apt-get install ${missing[*]} failed"
        fi
    fi
fi
# The DNS scenarios' server: optional, like Serf (chaos.py skips those scenarios, and
# says so, when there is no dnsmasq).
have_dnsmasq() { command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ]; }
if ! have_dnsmasq; then
    if command -v apt-get >/dev/null; then
        echo "chaos: installing dnsmasq-base from Debian (the DNS scenarios' server)"
        export DEBIAN_FRONTEND=noninteractive
        if [ ${#missing[@]} -gt 0 ] || timeout 300 apt-get update -qq >/dev/null; then
            timeout 600 apt-get install -y -qq --no-install-recommends dnsmasq-base >/dev/null 2>&1 || true
        fi
    fi
    have_dnsmasq || echo "chaos: could not install dnsmasq-base: the DNS scenarios will be skipped"
fi
drop_serf=0
if [ "$want_serf" = 1 ] && ! command -v serf >/dev/null; then
    echo "chaos: Debian package serf unavailable: the report has no Serf column"
    drop_serf=1
fi

# -- can we make namespaces here? ---------------------------------------------------------
probe="${PREFIX}probe-$$"
if ! ip netns add "$probe" 2>/dev/null; then
    skip "cannot create network namespaces here (ip netns add failed: a container without CAP_SYS_ADMIN?)"
fi
if ! ip -n "$probe" link add eth0 type veth peer name p0 2>/dev/null; then
    ip netns del "$probe" 2>/dev/null || true
    skip "cannot create veth pairs inside a network namespace"
fi
if ! ip netns exec "$probe" nft add table bridge rchaos 2>/dev/null; then
    ip netns del "$probe" 2>/dev/null || true
    skip "nftables does not work inside a network namespace here"
fi
ip netns del "$probe"

# -- one run at a time; what a killed run left is ours to remove ---------------------------
mkdir -p /run/lock
exec 9>/run/lock/rumor-chaos.lock
if ! flock -n 9; then
    echo "chaos: another chaos run holds /run/lock/rumor-chaos.lock" >&2
    exit 1
fi
cleanup
trap cleanup EXIT

# -- binaries -----------------------------------------------------------------------------
if [ "$debug" = 1 ]; then
    # What .ci/run has already built (cargo test and cargo build, debug, all features):
    # this build is then a no-op. The node's timing does not depend on the
    # profile at this load (a few datagrams per second per node).
    echo "chaos: using the debug build (--debug)"
    cargo build --workspace --bins --examples --all-features 2>&1 | tail -n 3
    extra=(--node-bin target/debug/rumor-node --sim-bin target/debug/rumor-sim)
else
    echo "chaos: building rumor-node and rumor-sim (release)"
    cargo build --release -p rumor-node 2>&1 | tail -n 3
    cargo build --release -p rumor-sim 2>&1 | tail -n 3
    extra=()
fi

if [ "$drop_serf" = 1 ]; then
    # Drop --serf: the binary is not there.
    args=()
    for arg in "$@"; do [ "$arg" = --serf ] || args+=("$arg"); done
    set -- "${args[@]+"${args[@]}"}"
fi
[ "$quick" = 1 ] && echo "chaos: trimmed run (--quick)"
# In the background, so a signal to this script is handled at once: it is passed on
# (the harness then stops its processes and deletes its namespaces itself), and the
# EXIT trap removes whatever is left.
python3 chaos/chaos.py "${extra[@]+"${extra[@]}"}" "$@" &
child=$!
stop() {
    kill -TERM "$child" 2>/dev/null || true
    # Bounded: the harness needs a few seconds to stop its processes.
    for _ in $(seq 1 100); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$child" 2>/dev/null || true
    exit "$1"
}
trap 'stop 130' INT
trap 'stop 143' TERM
trap 'stop 129' HUP
status=0
wait "$child" || status=$?
exit "$status"
