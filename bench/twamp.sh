#!/usr/bin/env bash
# lreflect --twamp against stamp-suite's Session-Reflector, in the same run.
#
# What: reflected TWAMP packets per CPU second of the reflector process, lreflect --twamp
# against the reflector of stamp-suite 1.0.0 (the independent STAMP implementation .ci/run
# installs in target/peers), on loopback, with the same load for both. Goal: lreflect at least
# 2x stamp-suite. The load comes from examples/udp_load.rs --twamp: one connected socket that
# keeps WINDOW STAMP Session-Sender packets (44 bytes: sequence number, T1, SSID 0) in flight,
# sending 32 per system call (UDP GSO) and reading the replies with recvmmsg() without ever
# sleeping, so the generator outpaces either reflector and the reflector sets the rate.
#
# How: as bench/lreflect.sh. A fresh network namespace (its own lo), the reflector pinned to CPU
# REFLECTOR_CPU (all its threads: stamp-suite runs two) and the generator to LOAD_CPU. Each run
# starts the reflector, warms up for half a second, then loads it for SECS seconds; the
# reflector's CPU time (utime + stime of all its threads, /proc/PID/stat) is read just before
# and just after. Replies per CPU second = replies the generator got / reflector CPU seconds.
# ROUNDS rounds, the order of the configurations reversed every other round; the table gives
# medians and every round's value.
#
# Configurations (both reflectors in their defaults otherwise: kernel receive timestamps, the
# TTL the request arrived with):
#   stamp-suite            stamp-suite -i (stateless: the sender's sequence numbers)
#   stamp-suite stateful   stamp-suite -i --stateful-reflector (a counter per session)
#   lreflect --stateless   lreflect --twamp 127.0.0.1:PORT --stateless
#   lreflect               lreflect --twamp 127.0.0.1:PORT (stateful, the default)
#   lreflect [::]          lreflect --twamp [::]:PORT: dual-stack wildcard, the load arrives
#                          IPv4-mapped, replies carry IPV6_PKTINFO
#   lreflect --no-gso      lreflect stateful, every reply its own send (what happens when
#                          consecutive replies go to different senders)
#   lreflect +direct       lreflect stateful, the requests 60 bytes with an RFC 8972 Direct
#                          Measurement TLV (ltwamp's default), which it answers with its counters
# With BASE=path/to/an/older/lreflect, the same run also measures that binary as
# "lreflect (base)" and "lreflect (base) +direct" (it may copy the TLV back unprocessed), and
# the lreflect rows get a "vs base" ratio: the reflector's speed against the previous binary.
# lreflect runs with --rate-limit 0 --max-pps 0 (one source at full speed would otherwise be
# limited, which is the point of the limits, not of this benchmark); stamp-suite has no limit
# by default. Each lreflect row is compared with the stamp-suite row of the same mode (stateless
# with stateless, the others with stateful).
#
# Run as root from anywhere: bench/twamp.sh. Takes about 110 s with the defaults, plus the
# release build. Prints the table and writes it, with the command, date, kernel and commit, to
# bench/twamp-results.md.
#
# Knobs (environment):
#   SECS=5            seconds of load per run
#   ROUNDS=3          rounds (each runs every configuration once)
#   WINDOW=192        packets in flight (below stamp-suite's default queue of 1024)
#   REFLECTOR_CPU=0   CPU the reflector is pinned to
#   LOAD_CPU=1        CPU the generator is pinned to
#   SKIP_BUILD=0      1: use the existing release binaries
#   STAMP_SUITE=target/peers/bin/stamp-suite
#   BASE=             an older lreflect binary to compare with, in the same run
#   BASE_NOTE=        what BASE is, for the results (default: its path)
set -euo pipefail

SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
WINDOW=${WINDOW:-192}
REFLECTOR_CPU=${REFLECTOR_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
BASE=${BASE:-}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REL=$ROOT/target/release
LREFLECT=$REL/lreflect
LOAD=$REL/examples/udp_load
STAMP_SUITE=${STAMP_SUITE:-$ROOT/target/peers/bin/stamp-suite}
RESULTS=$ROOT/bench/twamp-results.md

die() { echo "twamp.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespace); run as root"
for t in ip taskset ss jq python3 getconf; do
    command -v "$t" >/dev/null || die "$t is missing"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (reflector and generator pinned apart)"
[ -x "$STAMP_SUITE" ] || die "$STAMP_SUITE is missing (.ci/run installs it: cargo install stamp-suite --version 1.0.0 --root target/peers)"

START=$(date +%s)
if [ "$SKIP_BUILD" != 1 ]; then
    log "building (release)"
    cargo build --release --quiet --bin lreflect --example udp_load
fi
for b in "$LREFLECT" "$LOAD"; do [ -x "$b" ] || die "$b is missing (build first)"; done
STAMP_VERSION=$("$STAMP_SUITE" --version 2>/dev/null | head -1)

NS=lopa-bench-twamp-$$
TMP=$(mktemp -d)
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
HZ=$(getconf CLK_TCK)

# utime + stime of a process (all its threads), in clock ticks (fields 14 and 15).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME PORT REFLECTOR-COMMAND...: one measured run; appends a result line. LOAD_ARGS:
# what the generator sends besides --twamp.
LOAD_ARGS=()
run() {
    local name=$1 port=$2
    shift 2
    ip netns exec "$NS" taskset -c "$REFLECTOR_CPU" "$@" >"$TMP/out" 2>"$TMP/err" &
    PID=$!
    local i=0
    until ip netns exec "$NS" ss -Hlun "sport = :$port" | grep -q .; do
        i=$((i + 1))
        [ $i -lt 500 ] || die "$name did not bind port $port: $(cat "$TMP/err")"
        sleep 0.01
    done
    ip netns exec "$NS" taskset -c "$LOAD_CPU" "$LOAD" "127.0.0.1:$port" --twamp --seconds 0.5 \
        --window "$WINDOW" ${LOAD_ARGS[@]+"${LOAD_ARGS[@]}"} >/dev/null
    local t0 t1 gen threads
    threads=$(ls "/proc/$PID/task" | wc -l)
    t0=$(ticks "$PID")
    gen=$(ip netns exec "$NS" taskset -c "$LOAD_CPU" "$LOAD" "127.0.0.1:$port" --twamp \
        --seconds "$SECS" --window "$WINDOW" ${LOAD_ARGS[@]+"${LOAD_ARGS[@]}"})
    t1=$(ticks "$PID")
    kill -TERM "$PID"
    wait "$PID" 2>/dev/null || true
    PID=
    echo "$gen" | jq -c --arg name "$name" --argjson ticks $((t1 - t0)) --argjson hz "$HZ" \
        --argjson threads "$threads" \
        '. + {name: $name, cpu_s: ($ticks / $hz), gen_cpu_s: .cpu_s, threads: $threads}' \
        >>"$TMP/results"
    log "$name: $(tail -1 "$TMP/results")"
}

LR_OPTS=(--rate-limit 0 --max-pps 0 --stats-every 0)
configs=(ss ss_stateful lr_stateless lr lr_any lr_nogso lr_direct)
if [ -n "$BASE" ]; then
    [ -x "$BASE" ] || die "BASE=$BASE is not an executable"
    configs+=(base base_direct)
fi
one() {
    case $1 in
    ss) run "stamp-suite" 9100 env RUST_LOG=warn "$STAMP_SUITE" -i -S 127.0.0.1 -o 9100 ;;
    ss_stateful) run "stamp-suite stateful" 9101 env RUST_LOG=warn "$STAMP_SUITE" -i \
        -S 127.0.0.1 -o 9101 --stateful-reflector ;;
    lr_stateless) run "lreflect --stateless" 9102 "$LREFLECT" --twamp 127.0.0.1:9102 \
        --stateless "${LR_OPTS[@]}" ;;
    lr) run "lreflect" 9103 "$LREFLECT" --twamp 127.0.0.1:9103 "${LR_OPTS[@]}" ;;
    lr_any) run "lreflect [::]" 9104 "$LREFLECT" --twamp '[::]:9104' "${LR_OPTS[@]}" ;;
    lr_nogso) run "lreflect --no-gso" 9105 "$LREFLECT" --twamp 127.0.0.1:9105 --no-gso \
        "${LR_OPTS[@]}" ;;
    lr_direct)
        LOAD_ARGS=(--direct)
        run "lreflect +direct" 9106 "$LREFLECT" --twamp 127.0.0.1:9106 "${LR_OPTS[@]}"
        LOAD_ARGS=() ;;
    base) run "lreflect (base)" 9107 "$BASE" --twamp 127.0.0.1:9107 "${LR_OPTS[@]}" ;;
    base_direct)
        LOAD_ARGS=(--direct)
        run "lreflect (base) +direct" 9108 "$BASE" --twamp 127.0.0.1:9108 "${LR_OPTS[@]}"
        LOAD_ARGS=() ;;
    esac
}
for r in $(seq 1 "$ROUNDS"); do
    log "round $r of $ROUNDS"
    if [ $((r % 2)) -eq 1 ]; then order=("${configs[@]}"); else
        order=()
        for ((k = ${#configs[@]} - 1; k >= 0; k--)); do order+=("${configs[$k]}"); done
    fi
    for c in "${order[@]}"; do one "$c"; done
done

TOOK=$(($(date +%s) - START))
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git status --porcelain --untracked-files=no -- src/reflect src/bin/lreflect.rs src/net \
    src/wire examples/udp_load.rs 2>/dev/null | grep -q . &&
    echo " (with uncommitted changes to lreflect)" || true)
CMD="SECS=$SECS ROUNDS=$ROUNDS WINDOW=$WINDOW REFLECTOR_CPU=$REFLECTOR_CPU LOAD_CPU=$LOAD_CPU SKIP_BUILD=$SKIP_BUILD${BASE:+ BASE=$BASE} bench/twamp.sh"

python3 - "$TMP/results" "$RESULTS" "$CMD" "$TOOK" "$COMMIT$DIRTY" "$(uname -r)" "$(nproc)" \
    "$(date -u +%Y-%m-%dT%H:%MZ)" "$STAMP_VERSION" "$(cat /proc/loadavg | cut -d' ' -f1-3)" \
    "${BASE_NOTE:-$BASE}" <<'EOF'
import json, statistics, sys
path, out, cmd, took, commit, kernel, ncpu, when, peer, load, base_bin = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
names = []
for r in rows:
    if r["name"] not in names:
        names.append(r["name"])
def runs(name):
    return [r for r in rows if r["name"] == name]
def med(name, f):
    return statistics.median(f(r) for r in runs(name))
per_cpu = lambda r: r["received"] / r["cpu_s"] if r["cpu_s"] > 0 else float("nan")
pps = lambda r: r["pps"]
cpu_pct = lambda r: 100 * r["cpu_s"] / r["seconds"]
gen_pct = lambda r: 100 * r["gen_cpu_s"] / r["seconds"]
ns_per = lambda r: 1e9 * r["cpu_s"] / r["received"]
base = {"lreflect --stateless": "stamp-suite", "lreflect": "stamp-suite stateful",
        "lreflect [::]": "stamp-suite stateful", "lreflect --no-gso": "stamp-suite stateful",
        "lreflect +direct": "stamp-suite stateful"}
# The same configuration of an older binary (BASE), in the same run.
older = {"lreflect": "lreflect (base)", "lreflect +direct": "lreflect (base) +direct"}
lines = []
lines.append(f"## TWAMP reflector benchmark — {when}\n")
lines.append(f"Command: `{cmd}`; took {took} s.\n")
lines.append(f"lreflect at commit {commit}; {peer}; kernel {kernel}, {ncpu} CPU(s), load average "
             f"at the end {load}; reflector and generator pinned to different CPUs, in a fresh "
             "network namespace's loopback; 44-byte STAMP requests from one sender (60 bytes with a Direct Measurement TLV in the +direct rows)." + (f" Base: {base_bin}." if base_bin else "") + "\n")
lines.append("| reflector | replies/s | reflector CPU | threads | CPU ns per reply | replies per CPU second | vs stamp-suite | vs base | generator CPU | lost |")
lines.append("|---|---|---|---|---|---|---|---|---|---|")
def versus(n, table):
    if n not in table or table[n] not in names:
        return ""
    other = table[n]
    ratio = f"{med(n, per_cpu) / med(other, per_cpu):.2f}x"
    per_round = [per_cpu(a) / per_cpu(b) for a, b in zip(runs(n), runs(other))]
    return ratio + " (rounds: " + ", ".join(f"{x:.2f}" for x in per_round) + ")"
for n in names:
    rs = runs(n)
    ratio = versus(n, base)
    vs_base = versus(n, older)
    lost = sum(r["lost"] for r in rs)
    threads = max(r["threads"] for r in rs)
    lines.append(
        f"| {n} | {med(n, pps):,.0f} | {med(n, cpu_pct):.0f} % | {threads} | {med(n, ns_per):,.0f} | "
        f"{med(n, per_cpu):,.0f} | {ratio} | {vs_base} | {med(n, gen_pct):.0f} % | {lost} |")
lines.append("")
lines.append("Medians over the rounds. Every round, replies/s and replies per CPU second:\n")
for n in names:
    vals = "; ".join(f"{r['pps']:,.0f} / {per_cpu(r):,.0f}" for r in runs(n))
    lines.append(f"- {n}: {vals}")
lines.append("")
lines.append("`vs stamp-suite` divides replies per CPU second by stamp-suite's in the same mode "
             "(`--stateless` by stamp-suite's default, the others by `--stateful-reflector`); "
             "`vs base` by the same configuration of the BASE binary, same run. CPU "
             "is user + system time of the whole reflector process while loaded (from "
             "/proc/PID/stat, 10 ms ticks); generator CPU is the load generator's own; lost are "
             "requests the generator gave up on (no reply within 20 ms).\n")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
EOF
log "wrote $RESULTS"
