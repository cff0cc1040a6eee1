#!/usr/bin/env bash
# Regenerates BENCHMARKS.md from real runs: every divan bench in benches/ (medians, with
# the loopback floor beside them), the allocation and memory test, callgrind instruction
# counts (scripts/callgrind.sh, if valgrind is installed), the simulator's steady state
# at 1,000 nodes, rumor beside foca and kinship-core (benches/peers), the real-socket
# scale bench, and the profiles behind any missed budget.
#
#   scripts/benchmarks.sh            # ~35 min on an idle 2-core machine once built, the
#                                    # peers' 3 seeds most of it (a cold target adds the
#                                    # builds: several minutes)
#   PEERS_SEEDS=1 scripts/benchmarks.sh   # one seed of the peers: ~20 min
#   scripts/benchmarks.sh --reuse    # rewrite BENCHMARKS.md from the last run's outputs
#
# Raw outputs stay in target/benchmarks/. Timing on a shared 2-core machine is noisy:
# run it when nothing else is building; the instruction counts do not care.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
out=target/benchmarks
mkdir -p "$out"
started=$(date +%s)

step() { echo "== $*" >&2; }

reuse=0
if [ "${1:-}" = "--reuse" ]; then reuse=1; fi
have_callgrind=0
if [ -s target/callgrind/probe_phi_1000.inclusive.txt ]; then have_callgrind=1; fi

# ----- runs --------------------------------------------------------------------------
if [ "$reuse" = 0 ]; then
cut -d' ' -f1-3 /proc/loadavg >"$out/load.txt"

step "building benches"
cargo bench --workspace --all-features --no-run >"$out/build.log" 2>&1

for b in floor probe_loop codec phi dissemination seal; do
    step "cargo bench --bench $b"
    cargo bench -q --features internals --bench "$b" >"$out/$b.txt" 2>"$out/$b.err"
done

step "rumor-sim divan bench"
cargo bench -q -p rumor-sim --bench steady >"$out/sim_steady.txt" 2>"$out/sim_steady.err"

step "tests/alloc_budget.rs"
# The steady-state test is ignored while it fails; run it anyway for its figures.
cargo test -q --all-features --test alloc_budget -- --nocapture \
    --test-threads=1 >"$out/alloc.txt" 2>&1 || true

step "resident memory per member"
probe_bin=$(cargo bench --bench probe_count --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | tail -1 | sed 's/"executable":"//; s/"$//')
: >"$out/rss.txt"
for n in 4096 16384; do "$probe_bin" --rss "$n" >>"$out/rss.txt"; done

if command -v valgrind >/dev/null; then
    step "scripts/callgrind.sh"
    if scripts/callgrind.sh >"$out/callgrind.txt" 2>&1; then
        have_callgrind=1
    else
        echo "(scripts/callgrind.sh failed; see above)" >>"$out/callgrind.txt"
        have_callgrind=0
    fi
else
    echo "valgrind is not installed: no instruction counts" >"$out/callgrind.txt"
    have_callgrind=0
fi

step "real sockets: benches/scale.rs at 20, 100, 1,000 and 2,000 nodes (several minutes)"
cargo bench -q --bench scale -- --nodes 20,100,1000,2000 >"$out/scale.txt" 2>"$out/scale.err" || true
cargo bench -q --bench scale -- --nodes 2000 --workers 0 >"$out/scale_current_thread.txt" 2>>"$out/scale.err" || true

step "peers: rumor beside foca and kinship-core (benches/peers; about 7 min per seed at 1,000)"
cargo run -q --release --manifest-path benches/peers/Cargo.toml -- --n 100,1000 --seeds "${PEERS_SEEDS:-3}" --markdown \
    >"$out/peers.md" 2>"$out/peers.err" || true

step "simulator, 1,000 nodes, 30 s and 1230 s"
cargo build -q --release -p rumor-sim
for d in 30 1230; do
    target/release/rumor-sim run --scenario sim/scenarios/steady.toml --nodes 1000 \
        --duration "${d}s" --set join_spread=10s --json >"$out/sim_${d}.json" 2>"$out/sim_${d}.err"
done
fi

# ----- parsing -----------------------------------------------------------------------

# divan's table as rows: path<TAB>fastest<TAB>median<TAB>mean<TAB>samples<TAB>iters.
rows() {
    awk '
    function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
    {
        p = index($0, "├─"); if (p == 0) p = index($0, "╰─")
        if (p == 0) next
        rest = substr($0, p + length("├─ "))
        split(rest, f, "│")
        nt = split(trim(f[1]), t, /[ \t]+/)
        if (nt == 1) { if (p == 1) group = t[1]; next }
        path = (p == 1) ? t[1] : group "/" t[1]
        printf "%s\t%s %s\t%s\t%s\t%s\t%s\n", path, t[2], t[3], trim(f[3]), trim(f[4]), trim(f[5]), trim(f[6])
    }' "$out/$1.txt"
}

# Median of bench $1, case $2, as printed.
med() { rows "$1" | awk -F'\t' -v p="$2" '$1 == p { print $3 }'; }

# A divan time ("3.28 µs") in nanoseconds.
ns() {
    echo "$1" | awk '{ v = $1; u = $2; m = 1
        if (u == "µs" || u == "us") m = 1e3; else if (u == "ms") m = 1e6; else if (u == "s") m = 1e9
        printf "%.1f", v * m }'
}

# Nanoseconds as a short human figure.
human() {
    awk -v n="$1" 'BEGIN { if (n < 1000) printf "%.0f ns", n; else if (n < 1e6) printf "%.2f µs", n / 1e3; else printf "%.2f ms", n / 1e6 }'
}

yes_no() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? "**met**" : "**missed**" }'; }

# The test's figure lines ("ALLOC <kind> key=value ..."), whatever precedes them.
alloc_lines() { grep -o "ALLOC $1 .*" "$out/alloc.txt" | sed "s/^ALLOC $1 //" || true; }
alloc_line() { alloc_lines "$1" | grep -- "$2" | sed -n 1p || true; }
field() { echo "$1" | tr ' ' '\n' | { grep "^$2=" || true; } | sed -n 1p | cut -d= -f2; }

floor37=$(ns "$(med floor loopback_send_recv/37)")
floor1400=$(ns "$(med floor loopback_send_recv/1400)")

phi1000=$(ns "$(med probe_loop phi_monitors/1000)")
swim1000=$(ns "$(med probe_loop swim/1000)")
phi_per_member=$(awk -v a="$phi1000" 'BEGIN { printf "%.1f", a / 3 }')
ping_dec=$(ns "$(med codec decode_ping)")
seal150=$(ns "$(med seal seal_1_key/150)")
open150=$(ns "$(med seal open_3_keys_last/150)")
comp_dec=$(ns "$(med codec decode_compound_1400)")

steady_phi=$(alloc_line steady "strategy=phi-monitors members=1000")
steady_swim=$(alloc_line steady "strategy=swim members=1000")
allocs_phi=$(field "$steady_phi" per_period)
allocs_swim=$(field "$steady_swim" per_period)
mem1000=$(alloc_line memory "members=1000 ")
mem4096=$(alloc_line memory "members=4096 ")
marginal=$(alloc_line memory marginal)
bpm1000=$(field "$mem1000" bytes_per_member)
bpm4096=$(field "$mem4096" bytes_per_member)
apm4096=$(field "$mem4096" allocations_per_member)
bpm_marginal=$(field "$marginal" marginal_bytes_per_member)
rss4096=$(grep "members=4096 " "$out/rss.txt" | tr ' ' '\n' | grep rss_bytes_per_member | cut -d= -f2)
rss16384=$(grep "members=16384 " "$out/rss.txt" | tr ' ' '\n' | grep rss_bytes_per_member | cut -d= -f2)
rss_marginal=$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[NR, kv[1]] = kv[2] } }
    END { printf "%.0f", (v[2, "rss_growth_bytes"] - v[1, "rss_growth_bytes"]) / (v[2, "members"] - v[1, "members"]) }' "$out/rss.txt")

json_num() { grep -o "\"$2\": [0-9.]*" "$1" | sed -n 1p | awk '{print $2}'; }
ev30=$(json_num "$out/sim_30.json" events)
ev1230=$(json_num "$out/sim_1230.json" events)
ms30=$(json_num "$out/sim_30.json" wall_ms)
ms1230=$(json_num "$out/sim_1230.json" wall_ms)
sim_events_per_s=$(awk -v a="$ev30" -v b="$ev1230" -v x="$ms30" -v y="$ms1230" 'BEGIN { printf "%.0f", (b - a) / ((y - x) / 1000) }')
sim_mp_per_s=$(awk -v x="$ms30" -v y="$ms1230" 'BEGIN { printf "%.0f", 1000 * 1200 / ((y - x) / 1000) }')
sim_ev_per_mp=$(awk -v a="$ev30" -v b="$ev1230" 'BEGIN { printf "%.1f", (b - a) / (1000 * 1200) }')

load_before=$(cat "$out/load.txt" 2>/dev/null || echo unknown)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "(not a git checkout)")
dirty=$({ git status --porcelain --untracked-files=no 2>/dev/null || true; } | wc -l)
if [ "$dirty" -gt 0 ]; then commit="$commit + uncommitted changes"; fi
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
rustc_v=$(rustc --version)
if [ "$reuse" = 1 ]; then
    run_note="rewritten from the outputs of an earlier run"
else
    run_note="this run took $(($(date +%s) - started)) s"
fi

# ----- BENCHMARKS.md -----------------------------------------------------------------

{
cat <<EOF
# Benchmarks

Generated by \`scripts/benchmarks.sh\` (${run_note}) — edit the script, not this file. Commit ${commit}; ${rustc_v}; ${cpu}, $(nproc) cores; load average before
the run ${load_before}. Times are divan medians in the \`bench\` profile (release with
debug info) on a shared 2-core VM, so expect ±10–20 % between runs; the callgrind
instruction counts are exact and do not depend on load.
$(awk -v l="${load_before%% *}" 'BEGIN { if (l + 0 > 1.5) print "\n**This run shared the machine with other work (load above 1.5): its times are inflated,\nsome of them several-fold; the instruction counts are not.**" }')

**The floor** is one UDP datagram sent and received on 127.0.0.1 with std's blocking
\`UdpSocket\` (\`send_to\` + \`recv_from\`, \`cargo bench --bench floor\`):
$(human "$floor37") at 37 bytes (a ping), $(human "$floor1400") at 1,400 bytes. Every datagram
rumor sends costs at least that in syscalls on top of the node's own work, which is what
the other benches measure.

## Budgets

| budget | measured (median) | floor beside it | command | |
|---|---|---|---|---|
| non-syscall CPU per probe round ≤ 1 µs at 1,000 members — \`phi-monitors\` (default): one period = 3 pings out + 3 acks in + 3 pings in + 3 acks out | $(human "$phi1000") per period; $(human "$phi_per_member") per monitored member (period / 3) | 6 datagrams each way: 6 × $(human "$floor37") = $(human "$(awk -v f="$floor37" 'BEGIN{print 6*f}')") | \`cargo bench --bench probe_loop\` | $(yes_no "$phi1000" 1000) per period, $(yes_no "$phi_per_member" 1000) per member |
| same — \`swim\`: one period = 1 ping out + 1 ack in + 1 ping in + 1 ack out | $(human "$swim1000") per period | 2 × $(human "$floor37") = $(human "$(awk -v f="$floor37" 'BEGIN{print 2*f}')") | \`cargo bench --bench probe_loop\` | $(yes_no "$swim1000" 1000) |
| ping decode ≤ 100 ns | $(human "$ping_dec") | $(human "$floor37") | \`cargo bench --features internals --bench codec\` | $(yes_no "$ping_dec" 100) |
| 1,400-byte compound decode ≤ 300 ns | $(human "$comp_dec") | $(human "$floor1400") | \`cargo bench --features internals --bench codec\` | $(yes_no "$comp_dec" 300) |
| zero allocations per steady-state period | ${allocs_phi:-?} per period (\`phi-monitors\`), ${allocs_swim:-?} (\`swim\`) | — | \`cargo test --all-features --test alloc_budget -- --nocapture\` | $(yes_no "${allocs_phi:-1}" 0) |
| heap per known member ≤ 100 B (issue 26) | ${bpm1000:-?} B at 1,000 members, ${bpm4096:-?} B at 4,096 (${apm4096:-?} allocations per member), ${bpm_marginal:-?} B marginal; resident set ${rss4096:-?} B at 4,096, ${rss16384:-?} B at 16,384, ${rss_marginal:-?} B marginal | — | same test; \`cargo bench --bench probe_count -- --rss N\` | $(yes_no "${bpm1000:-2000}" 100) |
| sealing ≤ 0.5 µs per datagram of 100–200 bytes (issue 26) | seal $(human "$seal150"), open $(human "$open150") at 150 B (3-key ring, sealed with the last key) | $(human "$floor37") | \`cargo bench --features internals --bench seal\` | $(yes_no "$seal150" 500), $(yes_no "$open150" 500) |

"Per probe round": under \`phi-monitors\` every member is probed by 3 monitors each period, so
one member's period holds 3 probe exchanges it starts and 3 it answers; under \`swim\` one
of each. The period figure is the whole cost a member pays per period; "per monitored
member" divides it by the 3 members it monitors. Both readings are reported. The probe
loop does not grow with the cluster (each member does constant work per period); the
reap sweep every 37.5 s, which walks the member table, is amortized into the means.

## Every bench

The floor column is the 1,400-byte loopback datagram, for scale.

| bench | case | median | mean | floor | command |
|---|---|---|---|---|---|
EOF
for b in probe_loop codec phi dissemination seal floor; do
    case $b in
        codec | seal) cmd="cargo bench --features internals --bench $b" ;;
        *) cmd="cargo bench --bench $b" ;;
    esac
    rows "$b" | while IFS=$'\t' read -r path fastest median mean samples iters; do
        echo "| $b | $path | $median | $mean | $(human "$floor1400") | \`$cmd\` |"
    done
done
cat <<EOF

What each measures (the module doc of each bench says more):

- \`probe_loop\`: one protocol period of one \`Node\` in a converged cluster of N members,
  driven in-process by emulated peers (\`benches/common/mod.rs\`; hand-written datagrams,
  about 6 % of the instructions, see below). \`push_pull_interval\` is set to 1 h so that
  push-pull (which needs peers that answer digests) stays out; everything else is
  \`Config::lan()\`.
- \`codec\`: \`read_datagram\` (the reader \`handle_packet\` uses, \`src/wire/reader.rs\`: every
  check, then every message read, borrowed) and \`write_packet\`
  (the writer \`poll_transmit\` uses, \`src/wire/writer.rs\`; prost's \`encode_packet\`
  writes the same bytes) of a real 37-byte ping and of a real 1,377-byte ack carrying 41
  piggybacked \`Alive\`s, both taken from a node's \`poll_transmit\`.
- \`phi\`: \`PhiDetector::heartbeat\` with a full 100-sample window, \`phi\`, and the
  conviction \`deadline\` the node recomputes on every ack.
- \`dissemination\`: \`poll_transmit\` of an ack from a node whose queue holds an update
  for every member (\`full_queue\`): select the least-sent updates, read each member's
  state, pack ~1,400 bytes and encode. \`empty_queue\` is the same ack with nothing to
  piggyback; the difference is selecting and packing.
- \`seal\`: sealing and opening one frame (XChaCha20-Poly1305, \`src/keyring.rs\`) of
  37, 150 and 1,400 bytes, opening with a 1-key ring and a 3-key ring mid-rotation, and
  one protocol period of a node with and without a keyring (\`period_*\`; the emulated
  peers seal and open too). Issue 26's budget: at most 0.5 µs per datagram of
  100–200 bytes.
- \`floor\`: the loopback datagram above.

## Instructions (callgrind)

\`scripts/callgrind.sh\`: instructions per protocol period, by the difference of two runs
(100 and 1,100 periods) so the setup cancels out, and per \`read_datagram\` call. "harness
Ir" is the emulated peers' share (their own functions, self cost). Profiles land in
\`target/callgrind/\`.

\`\`\`
$(cat "$out/callgrind.txt")
\`\`\`

## Allocations in the steady state

\`tests/alloc_budget.rs\` counts every heap allocation (per thread, \`allocation-counter\`)
in 100 steady periods after 50 of warm-up, per API call:

\`\`\`
$(alloc_lines steady)
\`\`\`

$(if [ "${allocs_phi:-1}" != "0.00" ]; then cat <<'EOT'
Every allocation is in `handle_packet` → `wire::decode_packet`, three per datagram
received, whatever the cluster size; `handle_timeout`, `poll_transmit` (including the
piggyback path), `poll_event` and `poll_timeout` allocate nothing. The three (from
backtraces taken in a counting allocator; lines as of commit 3d490a6):

1. `src/wire/mod.rs:237` `Bytes::copy_from_slice(buf)`: the copy of the datagram that
   the decoded `bytes` fields slice (28 bytes for an ack).
2. The same line, inside `Packet::decode`: prost decodes `Packet.cluster` with
   `Bytes::split_to`, and the first slice of a `Vec`-backed `Bytes` promotes it to a
   shared one, allocating its 24-byte `Shared` header (`bytes::bytes::shallow_clone_vec`).
   Every packet has a cluster label, so every packet pays it.
3. `Packet.messages`: prost's `merge_repeated` pushes into a fresh `Vec<Message>`, first
   capacity 4 × 120 bytes = 480 bytes (and it regrows for longer packets).

What would remove them (a change to `src/`, not made here): decode into a `Packet` the
node keeps (`scratch_in`, cleared with `Message::clear`, which keeps the `Vec`'s
capacity, then `Message::merge`), iterate its messages with `drain(..)` instead of
`into_iter()` (`src/node.rs:584`), and copy the datagram into a node-owned
`BytesMut` (`recv.clear(); recv.extend_from_slice(data); recv.split().freeze()`)
instead of `Bytes::copy_from_slice`. Once the packet is dropped the `BytesMut` is the
buffer's only owner again and `extend_from_slice` reuses it. Checked in a scratch crate
with the same prost and bytes versions: 3 allocations for the first datagram, 0 for
every one after. A decoded field the node keeps past the packet (it already copies
what it keeps; a relayed `PingReq` address is the exception) only costs one fresh
buffer for the next datagram. The test is `#[ignore]`d until then. Removing the three
allocations saves their allocator calls (~150 of a ping decode's ~1,500 instructions,
plus the frees when the packet is dropped); most of a ping's decode is prost's generic
field loop, which only a hand-written reader removes (below).
EOT
fi)

## Memory per known member

Measured, not estimated. The counting allocator gives the heap bytes a node holds
(requested sizes, plus \`size_of::<Node>()\`) after it learned N members by state sync,
divided by N − 1. The resident-set figure (\`probe_count --rss N\`, from
\`/proc/self/statm\` around building one node in a fresh process) includes the
allocator's own overhead and leaves out capacity that was reserved but never touched.

\`\`\`
$(alloc_lines memory)
$(cat "$out/rss.txt")
\`\`\`

## Simulator

Member-periods per second. The divan bench in \`sim/\` (\`cargo bench -p rumor-sim
--bench steady\`): \`member_periods\` times whole 60 s runs of 100 and 300 nodes, join
included; \`steady_state\` runs a cluster of 100 or 1,000 nodes through its join
untimed, then times twelve 10-simulated-second windows of the same world (items are
member-periods):

\`\`\`
$(cat "$out/sim_steady.txt")
\`\`\`

At 1,000 nodes the join dominates a short run, so the steady rate is the difference
between a 1,230 s and a 30 s run (\`target/release/rumor-sim run --scenario
sim/scenarios/steady.toml --nodes 1000 --duration 30s|1230s --set join_spread=10s
--json\`, as in sim/README.md): ${ev30} → ${ev1230} events, ${ms30} → ${ms1230} ms of
wall time, so
**${sim_events_per_s} events/s** in the steady state, ${sim_ev_per_mp} events per member-period,
**${sim_mp_per_s} member-periods/s**. A single pair of runs: the join's wall time varies
by seconds between identical runs (and with the machine's load), which moves this figure
by ±20 % or more.

## Where the time goes

EOF
if [ "$have_callgrind" = 1 ]; then
cat <<EOF
### The probe loop (\`phi-monitors\`, 1,000 members, callgrind, inclusive)

Instructions inside \`Steady::period\` over 1,150 periods (50 warm-up + 1,100), heaviest
first, callers including their callees. After inlining, callgrind lists a function once
per source file its instructions are attributed to (\`./src/...\` and \`src/...\` apart),
so read a function's largest entry as its inclusive cost.

\`\`\`
$(awk 'f && n < 45 { print; n++ } /probe_count::common::Steady::period$/ && !f { f = 1; print }' target/callgrind/probe_phi_1000.inclusive.txt)
\`\`\`

### \`read_datagram\` of the 1,400-byte compound packet (callgrind, self)

\`\`\`
$(sed -n '/^Ir  *file:function/,$p' target/callgrind/decode_compound_1400.self.txt | sed -n '3,27p')
\`\`\`

### \`read_datagram\` of a ping (callgrind, self)

\`\`\`
$(sed -n '/^Ir  *file:function/,$p' target/callgrind/decode_ping.self.txt | sed -n '3,22p')
\`\`\`

EOF
fi
cat <<'EOF'
### What would close the gaps

Written against the profiles at commit 3d490a6. Done since: the keyed foldhash hasher
(7ae9d93), timer cancels by probe kind, and direct encoding (1e40d98, 8fade8e: the
envelope, pings, acks, verdicts and \`Alive\`s are written without prost, an \`Alive\`
from borrowed slices of the member table), and the borrowing reader the first bullet
below describes (\`src/wire/reader.rs\`, 2026-12-04). The shares quoted are of the probe loop's ~36,600 instructions per period at 1,000 members
(12 datagrams, ~3,050 instructions each), of which ~2,100 are the emulated peers'.

- **Decoding is a quarter of the probe loop, and all of the decode budgets.**
  `decode_packet` costs ~1,450 instructions per datagram: prost's generic field loop,
  a `Bytes` refcount per `bytes` field, three allocations and frees. The 1,377-byte
  compound packet costs ~42,000 (≈ 1,000 per `Alive`: three `bytes` fields each cloned
  out of the shared buffer by `copy_to_bytes`, `Vec<Message>` regrowing from 4 to 64
  entries of 120 bytes). httparse's approach closes it: a hand-written reader that
  borrows the datagram (`&[u8]` fields, no `Bytes`, no `Vec` of messages: an iterator
  over messages, validated in the same pass) and keeps prost for encoding and for
  sync digests. A ping or ack is then a few dozen varint reads (~100–150
  instructions, well under 100 ns) and an `Alive` a handful of slices (~60–100),
  ≈ 3,000–4,000 instructions for the compound packet, around the 300 ns budget. Short
  of that, the reuse described under Allocations removes the allocations but not prost's
  field loop.
- **Hashing: ~11 %** (`BuildHasher::hash_one`, SipHash-1-3 from std's `RandomState`,
  behind `IndexMap::get_index_of`). Every member, monitor, probe and queue lookup hashes
  a `NodeId` or a `u32` seq with SipHash; each datagram received now also looks its
  sender up to record when it was heard (`Members::heard_from`, `src/node.rs:569`).
  A fixed-seed fast hasher for these maps (FxHash-style multiply, or foldhash with a
  fixed seed) keeps `IndexMap`'s
  deterministic iteration order (it is insertion order, not hash order) and cuts most of
  it. `poll_transmit` alone looks up the node's own entry on every datagram
  (`self.incarnation()` → `Members::local()`, `src/node.rs:624`), which the simulator's
  profile (sim/README.md) also found: caching the local incarnation in `Node` removes
  that lookup.
- **Timers: ~11 %** (`BTreeMap::insert`/`remove` on `Timers::oneshot` and
  `Timers::keyed`). Per ping: schedule `ProbeTimeout` (two B-tree inserts); per ack:
  `finish_probe` cancels three keys (`ProbeTimeout`, `IndirectEnd`, `RelayNack`;
  `src/probe.rs:359`), though a monitor's ping only ever has the first, and
  `schedule_convict` moves the `Convict` timer (two removes, two inserts) on every ack.
  Cancelling only what the probe kind armed removes two of the three lookups per ack.
  The `Convict` move could become lazy: leave the timer where it is when an ack only
  pushes the deadline later, and have `on_convict_deadline` (`src/probe.rs:475`, which
  today re-checks and returns, trusting that a later timer exists) re-arm itself at the
  current deadline: one timer operation per ~4.5 s per target instead of four per ack.
- **Encoding: ~9 %** of the loop (prost `Message::encode`, plus `encoded_len` computed
  once by the packer and again by `encode`). A ping or ack with no piggyback is a fixed
  37–40-byte layout that could be written directly.
- **The clock check: ~4 %** (`observe_time` → `Timers::next`, a scan of the periodic
  table plus the first B-tree entry, on every input and every `poll_transmit`).
- **malloc/free: ~8 %**, gone with the allocations.

Estimated from the shares above (not measured): the decoder saves ~7,800 instructions
per period, the hasher ~3,000, the timer changes ~2,700, direct ping/ack encoding ~2,800,
the frees ~1,600, a cheaper clock check ~800. That leaves ~18,000 (~16,000 without the
emulated peers), about 1.5 µs at the ~11 instructions/ns measured here: within budget per
monitored member (~0.5 µs), still over it per period. The rest is the bookkeeping spread
thin over `handle_packet` and `poll_transmit` (probe table, outbox moves of
`Outgoing`, per-datagram stats and checks); the period budget needs that trimmed too.
`swim` (~11,400 instructions per period) sits at about 1 µs, met or missed by a few
percent from one run to the next; the decoder alone (2 datagrams received) would put it
clearly under. For scale, the syscalls of the same period cost 6 × the loopback floor,
an order of magnitude more than the node's own work even today.

- **Dissemination** (no budget): packing a full piggyback costs ~4.4 µs per datagram,
  mostly the per-message `encoded_len` and `encode` of ~40 `Alive`s (each cloning three
  `Bytes`), a member-table lookup per candidate, and the walk of the queue's B-tree.

## Beside the peers

\`cargo run --release --manifest-path benches/peers/Cargo.toml -- --n 100,1000 --seeds 3
--markdown\` (\`benches/peers/\`, outside the workspace so the library's dependencies
stay its own): rumor, foca 2.0.0 and kinship-core 0.5.0 on one seeded in-memory loop
(1 s probe period, 500 ms probe timeout, LAN presets, 500 µs one-way delay), CPU inside
each library's calls per member per period (corrected for the time the thread did not
run), bytes on the wire per member per period (kinship's TCP push-pull included), heap
per known member, and the time until every survivor declares a crashed member dead.
See benches/peers/README.md for the method. Issue 26's targets: CPU at or below the
cheapest peer (plaintext foca, encrypted kinship) from 100 to 4,000 members; bytes
within 1.5× of the leanest peer at equal or better detection.

$(cat "$out/peers.md" 2>/dev/null)

## Real sockets

\`cargo bench --bench scale -- --nodes 20,100,1000,2000\` (\`benches/scale.rs\`): N
runtime nodes on 127.0.0.1 in one process, a multi-thread tokio runtime with 2
workers, \`Config::lan()\`, every node joining through the first as the demo does.
\`join_s\` runs from the first start until every node sees all N alive;
\`cpu_us_per_node_s\` is the whole process's CPU (every thread) over a 10 s window
after convergence, per node per second; \`idle_us_per_node_s\` and
\`fixed_kb_per_node\` are N nodes that know nobody, in a child process;
\`rss_b_per_member\` is the resident memory after convergence less that fixed cost,
per known member (N × (N − 1)); \`rcvbuf_errors\` counts UDP receive-buffer overflows
in the window (the whole network namespace's). Targets (issue 26): CPU ≤ 100 µs per node
per second, join ≤ 0.3 s at 20, ≤ 0.7 s at 100, ≤ 10 s at 2,000; ≤ 150 B resident per
known member; no overflows.

\`\`\`
$(cat "$out/scale.txt" 2>/dev/null)
\`\`\`

The same at 2,000 nodes on a current-thread runtime (\`--workers 0\`):

\`\`\`
$(cat "$out/scale_current_thread.txt" 2>/dev/null)
\`\`\`
EOF
} >BENCHMARKS.md

step "BENCHMARKS.md written ($(($(date +%s) - started)) s)"
