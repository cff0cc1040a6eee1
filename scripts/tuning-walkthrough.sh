#!/usr/bin/env bash
# One operator's tuning loop, end to end, on 127.0.0.1 (docs/tuning.md, "The tuning
# loop, end to end"): record the pauses of a real node under a synthetic GC load, fit
# their tail and tune, deploy the printed file as is, and check it under the same load.
#
#   scripts/tuning-walkthrough.sh [OUT_DIR] [RECORD_SECONDS]
#
# Everything it writes (event lines, logs, pauses, scrapes, tune's report, tuned.toml,
# the tail plot) goes to OUT_DIR (default target/tuning-walkthrough). It takes about
# RECORD_SECONDS × 1.5 plus two tune searches (a few minutes at the default 150 s).
#
# The "GC" is SIGSTOP/SIGCONT on a schedule: a gap of 0.5-1.1 s between pauses, most
# pauses of 10-90 ms, one in 20 of 0.2-1 s, one in 150 of 1.5-2.5 s (a heavy tail, as
# stop-the-world collectors have). GC_SEED (default 1) seeds the schedule; the pauses
# actually injected are logged to OUT_DIR/injected-*.txt (ms).
#
# Environment: PORT_BASE (UDP PORT_BASE..+2, HTTP PORT_BASE+100..+102; default: the
# first free set from 27940), NODES (the cluster size to tune for, default 100).
# Needs: the Rust toolchain, bash 5, curl, ss (iproute2) for the port check.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-target/tuning-walkthrough}
RECORD=${2:-150}
NODES=${NODES:-100}
GC_SEED=${GC_SEED:-1}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.events "$OUT"/*.log "$OUT"/injected-*.txt "$OUT"/pauses.txt \
    "$OUT"/*.metrics "$OUT"/tune*.txt "$OUT"/tuned*.toml "$OUT"/tail*.svg

cargo build --release -q -p rumor-node -p rumor-sim
NODE=$PWD/target/release/rumor-node
SIM=$PWD/target/release/rumor-sim

# Every process this script starts; on exit (normal, error or Ctrl-C) each is resumed
# (a member left SIGSTOPped would outlive us) and killed, the whole group bounded.
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -CONT "$p" 2>/dev/null || true
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do wait_exit "$p" 15 || kill -KILL "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n### %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
die() { echo "tuning-walkthrough: $*" >&2; exit 1; }
now_us() { echo "${EPOCHREALTIME/./}"; }

wait_exit() { # pid seconds: 0 once the process is gone, 1 if still running after
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# Ports: the given PORT_BASE, else the first base from 27940 whose three UDP and three
# TCP ports are all free (another walkthrough or demo on this host keeps its own).
ports_free() { # base
    local p
    command -v ss >/dev/null || return 0
    for p in $1 $(($1 + 1)) $(($1 + 2)); do
        [ -z "$(ss -Hlnu "sport = :$p")" ] || return 1
    done
    for p in $(($1 + 100)) $(($1 + 101)) $(($1 + 102)); do
        [ -z "$(ss -Hlnt "sport = :$p")" ] || return 1
    done
}
if [ -n "${PORT_BASE:-}" ]; then
    ports_free "$PORT_BASE" || die "PORT_BASE=$PORT_BASE: a port of $PORT_BASE..+2 (UDP) or +100..+102 (TCP) is taken"
else
    for ((PORT_BASE = 27940; PORT_BASE < 28440; PORT_BASE += 10)); do
        ports_free "$PORT_BASE" && break
    done
    ((PORT_BASE < 28440)) || die "no free port set between 27940 and 28440; set PORT_BASE"
fi

# Three members, a b c; b is the one whose process pauses. a is the seed.
declare -A PID_OF
start() { # name extra-args...
    local name=$1 i
    shift
    case $name in a) i=0 ;; b) i=1 ;; c) i=2 ;; esac
    "$NODE" --name "$name" --bind "127.0.0.1:$((PORT_BASE + i))" \
        --http "127.0.0.1:$((PORT_BASE + 100 + i))" \
        --seeds "127.0.0.1:$PORT_BASE" --bootstrap yes "$@" \
        >"$OUT/$name.events" 2>"$OUT/$name.log" &
    PIDS+=($!)
    PID_OF[$name]=$!
}
http_of() { case $1 in a) echo $((PORT_BASE + 100)) ;; b) echo $((PORT_BASE + 101)) ;; c) echo $((PORT_BASE + 102)) ;; esac; }

wait_ready() { # name: /readyz answers 200 within 20 s, or the node's log is shown
    local i
    for ((i = 0; i < 200; i++)); do
        curl -fs --max-time 1 "http://127.0.0.1:$(http_of "$1")/readyz" >/dev/null 2>&1 && return 0
        kill -0 "${PID_OF[$1]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "member $1 never became ready; its stderr:" >&2
    cat "$OUT/$1.log" >&2
    exit 1
}

# Every member sees both others: each one's events name the two others as joined.
wait_full() {
    local i n ok
    for ((i = 0; i < 200; i++)); do
        ok=1
        for n in a b c; do
            [ "$(grep '"event":"joined"' "$OUT/$n.events" | grep -o '"member":"[abc]"' | sort -u | wc -l)" -ge 2 ] || ok=0
        done
        ((ok)) && return 0
        sleep 0.1
    done
    die "the three members did not all see each other within 20 s"
}

# The synthetic collector: pauses PID for SECONDS, logging each pause's real length
# (ms) to FILE. Stops early, with a message, if the process is gone.
gc_load() { # pid seconds file
    local pid=$1 until=$((SECONDS + $2)) log=$3 n=0 r ms gap t0 t1
    RANDOM=$GC_SEED
    : >"$log"
    while ((SECONDS < until)); do
        gap=$((500 + RANDOM % 601))
        sleep "$(printf '%d.%03d' $((gap / 1000)) $((gap % 1000)))"
        r=$((RANDOM % 3000))
        if ((r < 20)); then ms=$((1500 + RANDOM % 1001))
        elif ((r < 170)); then ms=$((200 + RANDOM % 801))
        else ms=$((10 + RANDOM % 81)); fi
        t0=$(now_us)
        kill -STOP "$pid" 2>/dev/null || { echo "gc_load: process $pid is gone after $n pauses" >&2; return 1; }
        sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
        kill -CONT "$pid"
        t1=$(now_us)
        echo $(((t1 - t0) / 1000)) >>"$log"
        n=$((n + 1))
    done
    sort -n "$log" | awk '{ v[NR] = $1 } END {
        printf "%d pauses injected in %ds: median %d ms, %d of 0.2 s or more, %d of 1.5 s or more, longest %d ms\n",
            NR, '"$2"', v[int((NR + 1) / 2)], c1, c2, v[NR] }
        $1 >= 200 { c1++ } $1 >= 1500 { c2++ }'
}

# Convictions of b as each peer saw them (each peer prints its own `dead` line).
deaths() { # events-file
    grep -h '"event":"dead"' "$1" 2>/dev/null | grep -c '"member":"b"' || true
}
suspicions() { # events-file
    grep -h '"event":"suspected"' "$1" 2>/dev/null | grep -c '"member":"b"' || true
}
verdicts() { # label
    echo "$1: b convicted $(deaths "$OUT/a.events") time(s) at a, $(deaths "$OUT/c.events") at c;" \
        "suspected $(suspicions "$OUT/a.events") time(s) at a, $(suspicions "$OUT/c.events") at c"
}

lateness() { # metrics file: the stall histogram's buckets from 5 ms up, and the window
    grep -E '^rumor_timer_lateness_seconds_(bucket\{le="(0.005|0.01|0.02|0.05|0.1|0.2|0.5|1|2|5|\+Inf)"\}|count)|^rumor_observed_seconds_total' "$1" ||
        die "$1 has no rumor_timer_lateness_seconds histogram"
}

echo "ports: UDP 127.0.0.1:$PORT_BASE..$((PORT_BASE + 2)), HTTP 127.0.0.1:$((PORT_BASE + 100))..$((PORT_BASE + 102)); output in $OUT"

step "1. Record: three members, b under a synthetic GC load for ${RECORD}s (default config)"
start a
start b --pauses "$OUT/pauses.txt"
start c
for n in a b c; do wait_ready $n; done
wait_full
gc_load "${PID_OF[b]}" "$RECORD" "$OUT/injected-record.txt"
curl -fs --max-time 5 "http://127.0.0.1:$(http_of b)/metrics" >"$OUT/b.metrics" || die "scraping b's /metrics failed"
printf '$ curl -s 127.0.0.1:%s/metrics > b.metrics; grep ... b.metrics\n' "$(http_of b)"
lateness "$OUT/b.metrics"
# SIGTERM: b drains (5 s), leaves and writes its pauses file on the way out.
kill -TERM "${PID_OF[b]}"
wait_exit "${PID_OF[b]}" 30 || die "b did not exit within 30 s of SIGTERM"
[ -s "$OUT/pauses.txt" ] || die "b wrote no pauses file; its stderr: $(cat "$OUT/b.log")"
verdicts "default config, during the recording"
show head -8 "$OUT/pauses.txt"
echo "... $(grep -vc '^#' "$OUT/pauses.txt") pauses in the file"
echo "longest 5 recorded (ms): $(grep -v '^#' "$OUT/pauses.txt" | sort -n | tail -5 | tr '\n' ' ')"
echo "longest 5 injected (ms): $(sort -n "$OUT/injected-record.txt" | tail -5 | tr '\n' ' ')"
cleanup

step "2. Fit and tune for a ${NODES}-member cluster"
printf '$ rumor-sim tune --pauses pauses.txt --nodes %s --tail-plot tail.svg --no-compare\n' "$NODES"
rc=0
"$SIM" tune --pauses "$OUT/pauses.txt" --nodes "$NODES" --tail-plot "$OUT/tail.svg" \
    --no-compare >"$OUT/tune.txt" 2>&1 || rc=$?
cat "$OUT/tune.txt"
echo "(exit status $rc)"
# Exit status 3: no setting met the target (the risk, or the runs); nothing to deploy.
((rc != 3)) || die "no setting met the target (exit status 3): nothing to deploy; record for longer, or state the risk you accept with --max-risk"
((rc == 0)) || die "tune failed (exit status $rc)"
# The report's TOML block (from the line `TOML:` to the next blank line) is the file
# to deploy.
sed -n '/^TOML:$/,/^$/p' "$OUT/tune.txt" | sed '1d;/^$/d' >"$OUT/tuned.toml"
grep -q '^\[config\]$' "$OUT/tuned.toml" || die "no TOML block in tune's report ($OUT/tune.txt)"
show cat "$OUT/tuned.toml"

step "2b. The same from the /metrics scrape: a Prometheus histogram is tune input too"
printf '$ rumor-sim tune --pauses b.metrics --nodes %s --no-compare\n' "$NODES"
rc=0
"$SIM" tune --pauses "$OUT/b.metrics" --nodes "$NODES" --no-compare \
    >"$OUT/tune-metrics.txt" 2>&1 || rc=$?
grep -E '^# .*(pauses per|pause model|tail:)|^(tail|risk|chosen|closest)|^  (margin|risk)|^acceptable_pause|^phi_convict|warning|WARNING|error' \
    "$OUT/tune-metrics.txt" || cat "$OUT/tune-metrics.txt"
echo "(exit status $rc)"

step "3. Deploy it as is: the node loads and validates the file"
printf '$ rumor-node --config tuned.toml --check-config --name b > tuned-full.toml\n'
"$NODE" --config "$OUT/tuned.toml" --check-config --name b >"$OUT/tuned-full.toml"
grep -E '^(probe_interval|acceptable_pause|phi_convict|min_std_dev|monitors) ' "$OUT/tuned-full.toml"
echo "... (the whole config: $OUT/tuned-full.toml)"
# What --check-config prints loads back as is, and prints the same again.
"$NODE" --config "$OUT/tuned-full.toml" --check-config >"$OUT/tuned-full-2.toml"
if diff -q "$OUT/tuned-full.toml" "$OUT/tuned-full-2.toml" >/dev/null; then
    echo "--check-config's output loads back and prints identically"
else
    diff "$OUT/tuned-full.toml" "$OUT/tuned-full-2.toml" || true
fi

step "3b. The doctor: the manifest, the file and the measured pauses together"
rc=0
show "$NODE" doctor --manifest examples/k8s/statefulset.yaml --config "$OUT/tuned.toml" \
    --pauses "$OUT/pauses.txt" || rc=$?
echo "(exit status $rc)"
echo "(flags win over the file: the example's --set=acceptable_pause=3s is what it checked)"
echo '$ rumor-node --config tuned.toml --set acceptable_pause=3s --check-config | grep ^acceptable_pause'
"$NODE" --config "$OUT/tuned.toml" --set acceptable_pause=3s --check-config | grep '^acceptable_pause'
# The example pins acceptable_pause with --set, which wins over any --config file. The
# manifest to deploy a tuned file with drops that pin and loads the file instead.
sed -e '/--set=acceptable_pause=/d' \
    -e 's|^\( *\)- --preset=lan$|&\n\1- --config=/etc/rumor/rumor.toml|' \
    examples/k8s/statefulset.yaml >"$OUT/statefulset-tuned.yaml"
rc=0
show "$NODE" doctor --manifest "$OUT/statefulset-tuned.yaml" --config "$OUT/tuned.toml" \
    --pauses "$OUT/pauses.txt" || rc=$?
echo "(exit status $rc)"

CHECK=$((RECORD / 2))
step "4. Check: the same load against members running the tuned file, for ${CHECK}s"
start a --config "$OUT/tuned.toml"
start b --config "$OUT/tuned.toml"
start c --config "$OUT/tuned.toml"
for n in a b c; do wait_ready $n; done
wait_full
gc_load "${PID_OF[b]}" "$CHECK" "$OUT/injected-check.txt"
curl -fs --max-time 5 "http://127.0.0.1:$(http_of b)/metrics" >"$OUT/b-check.metrics" || true
verdicts "tuned config, under the same load"

step "5. The crash is still detected: SIGKILL b"
# Any false conviction of step 4 is already in the event files: count beyond it.
before_a=$(deaths "$OUT/a.events") before_c=$(deaths "$OUT/c.events")
disown "${PID_OF[b]}" # no "Killed" notice from bash
t0=$(now_us)
kill -KILL "${PID_OF[b]}"
at_a="" at_c=""
for ((i = 1; i <= 1500; i++)); do   # 30 s at most
    t=$(now_us)
    [ -z "$at_a" ] && [ "$(deaths "$OUT/a.events")" -gt "$before_a" ] && at_a=$(((t - t0) / 1000))
    [ -z "$at_c" ] && [ "$(deaths "$OUT/c.events")" -gt "$before_c" ] && at_c=$(((t - t0) / 1000))
    [ -n "$at_a" ] && [ -n "$at_c" ] && break
    sleep 0.02
done
poll=$((($(now_us) - t0) / 1000 / i))
for n in a c; do
    v=at_$n
    if [ -n "${!v}" ]; then
        echo "b dead at $n ${!v} ms after SIGKILL (event files polled every ~$poll ms), cause" \
            "$(grep -h '"event":"dead"' "$OUT/$n.events" | grep '"member":"b"' | tail -1 | sed -n 's/.*"cause":"\([a-z_]*\)".*/\1/p')"
    else
        echo "b NOT declared dead at $n within 30 s of SIGKILL"
    fi
done
