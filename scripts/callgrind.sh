#!/usr/bin/env bash
# Instruction counts under callgrind: a repeatable figure for regressions that timing
# noise hides (instruction counts do not depend on the machine's load).
#
#   scripts/callgrind.sh            # probe loop at 16, 256, 1000, 4096 members + decode
#   scripts/callgrind.sh 1000       # probe loop at the given sizes only
#
# Probe loop: benches/probe_count.rs runs the steady probe loop of benches/probe_loop.rs
# with callgrind collecting only inside `Steady::period`. It is run for P1 and P2
# periods; (Ir(P2) - Ir(P1)) / (P2 - P1) is the instructions one protocol period costs,
# the warm-up cancelled out. That includes the emulated peers' few instructions per
# datagram (the `benches/common` share is printed beside it).
#
# Decode: the codec bench's decode benches under callgrind collecting only inside
# `rumor::wire::read_datagram` (the node's reader); instructions per call from the
# calls the bench made.
#
# Profiles (callgrind_annotate, inclusive and self) go to target/callgrind/.
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

sizes=("$@")
decode=1
if [ ${#sizes[@]} -eq 0 ]; then
    sizes=(16 256 1000 4096)
else
    decode=0
fi
out=target/callgrind
mkdir -p "$out"

# The path of a bench target's executable, built if needed.
bench_bin() {
    cargo bench --features internals --bench "$1" --no-run --message-format=json 2>/dev/null \
        | grep -o '"executable":"[^"]*"' | tail -1 | sed 's/"executable":"//; s/"$//'
}

# Shortens callgrind_annotate's lines: registry and toolchain paths, object names, and
# this checkout's absolute path (to ./, so it stays apart from the relative paths).
tidy() {
    sed -E "s#/root/\.cargo/registry/src/[^/]+/##g; s#/rustc/[0-9a-f]+/library/#std:#g; s# \[[^]]*\]\$##; s#$PWD/#./#g" | cut -c1-200
}

# Self instructions of the harness's functions (`probe_count::common::*`).
harness_ir() {
    callgrind_annotate --auto=no "$1" 2>/dev/null | grep -E ':probe_count::common::' \
        | awk '{gsub(",","",$1); s+=$1} END {print s+0}'
}

# Total instructions collected in a callgrind output file.
total_ir() {
    grep -E '^(summary|totals):' "$1" | sed -n 1p | awk '{print $2}'
}

probe_bin=$(bench_bin probe_count)
p1=100
p2=1100
echo "instructions per protocol period (callgrind, collected in Steady::period; P = $p1 and $p2 periods)"
printf '%-13s %8s %14s %14s %18s\n' strategy members "Ir/period" "harness Ir" "Ir/datagram"
for strategy in phi swim; do
    for n in "${sizes[@]}"; do
        for p in $p1 $p2; do
            valgrind --tool=callgrind --callgrind-out-file="$out/probe_${strategy}_${n}_${p}.out" \
                '--toggle-collect=*Steady::period' \
                "$probe_bin" --members "$n" --periods "$p" --strategy "$strategy" \
                >"$out/probe_${strategy}_${n}_${p}.log" 2>&1
        done
        a=$(total_ir "$out/probe_${strategy}_${n}_${p1}.out")
        b=$(total_ir "$out/probe_${strategy}_${n}_${p2}.out")
        # Self cost of the harness's functions (benches/common, with whatever is inlined
        # into them), same difference.
        ha=$(harness_ir "$out/probe_${strategy}_${n}_${p1}.out")
        hb=$(harness_ir "$out/probe_${strategy}_${n}_${p2}.out")
        # Datagrams through the node per period: 12 under phi-monitors (3 monitored
        # members, 3 monitors), 4 under SWIM.
        if [ "$strategy" = phi ]; then d=12; else d=4; fi
        awk -v a="$a" -v b="$b" -v ha="$ha" -v hb="$hb" -v n="$n" -v s="$strategy" -v dp=$((p2 - p1)) -v d=$d \
            'BEGIN { ir = (b - a) / dp; h = (hb - ha) / dp; printf "%-13s %8d %14.0f %14.0f %18.0f\n", (s == "phi" ? "phi-monitors" : "swim"), n, ir, h, ir / d }'
        callgrind_annotate --auto=no --inclusive=yes "$out/probe_${strategy}_${n}_${p2}.out" 2>/dev/null | tidy >"$out/probe_${strategy}_${n}.inclusive.txt"
        callgrind_annotate --auto=no "$out/probe_${strategy}_${n}_${p2}.out" 2>/dev/null | tidy >"$out/probe_${strategy}_${n}.self.txt"
    done
done

if [ "$decode" = 1 ]; then
    codec_bin=$(bench_bin codec)
    echo
    echo "instructions per datagram read (callgrind, collected in rumor::wire::read_datagram)"
    for b in decode_ping decode_compound_1400; do
        valgrind --tool=callgrind --callgrind-out-file="$out/$b.out" \
            '--toggle-collect=rumor::wire::read_datagram' \
            "$codec_bin" --bench "$b" --sample-count 3 --sample-size 1000 >"$out/$b.log" 2>&1
        # The calls made by the bench itself (not by the setup's nodes), and their cost.
        # In the caller tree, the block of read_datagram lists its callers above it; the
        # bench loop is the caller inside divan (`TaskShared...::call`).
        line=$(callgrind_annotate --auto=no --inclusive=yes --tree=caller "$out/$b.out" 2>/dev/null \
            | awk '/^$/ { block = ""; next } { block = block $0 "\n" } !done && /\*  .*:rumor::wire::read_datagram$/ { printf "%s", block; done = 1 }' \
            | grep -E '< .*TaskShared.*\(([0-9,]+)x\)' | sed -n 1p)
        calls=$(echo "$line" | sed -E 's/.*\(([0-9,]+)x\).*/\1/; s/,//g')
        ir=$(echo "$line" | awk '{gsub(",","",$1); print $1}')
        awk -v ir="$ir" -v c="$calls" -v b="$b" 'BEGIN { printf "%-22s %8.0f Ir/call (%d calls)\n", b, ir / c, c }'
        callgrind_annotate --auto=no --inclusive=yes "$out/$b.out" 2>/dev/null | tidy >"$out/$b.inclusive.txt"
        callgrind_annotate --auto=no "$out/$b.out" 2>/dev/null | tidy >"$out/$b.self.txt"
    done
fi
echo
echo "profiles: $out/*.inclusive.txt, $out/*.self.txt"
