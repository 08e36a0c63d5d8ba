#!/usr/bin/env bash
# lreflect against the simplest possible echo loop, in the same run.
#
# What: answers per second and CPU time per answer of a UDP reflector on loopback, with small
# datagrams. The baseline is examples/simple_echo.rs: one datagram at a time, blocking
# recv_from() then send_to(). The load comes from examples/udp_load.rs: one connected socket
# that keeps WINDOW datagrams in flight, sending 32 per system call (UDP GSO) and reading the
# answers with recvmmsg() without ever sleeping, so that the generator outpaces any reflector
# and the reflector sets the rate. (A generator that sleeps between answers leaves the
# reflector idle too; on this VM the wake-ups then cost more than the work.)
#
# How: a fresh network namespace (its own lo), the reflector pinned to CPU REFLECTOR_CPU and the
# generator to CPU LOAD_CPU, so they never compete for a CPU. Each run starts the reflector,
# warms up for half a second, then loads it for SECS seconds; the reflector's CPU time is
# read from /proc/PID/stat (utime + stime) just before and just after the load. Answers per
# CPU second = answers the generator got / reflector CPU seconds: the efficiency figure the
# goal is about (lreflect at least 1.5x the simple loop). ROUNDS rounds, the order of the
# configurations reversed every other round; the table gives medians and every round's value.
#
# Configurations:
#   simple 32      simple_echo, 32-byte payloads (not ludp: nobody stamps them)
#   lreflect 32    lreflect --echo 127.0.0.1:PORT (a specific address: no packet info needed)
#   lreflect [::]  lreflect --echo [::]:PORT, the default kind of socket: dual-stack wildcard,
#                  the load arrives IPv4-mapped and answers carry IPV6_PKTINFO
#   lreflect nogso lreflect 32 with --no-gso: batching alone, every answer its own send (what
#                  lreflect does when consecutive answers go to different clients)
#   simple ludp    simple_echo, 64-byte ludp payloads
#   lreflect ludp  lreflect, 64-byte ludp payloads: every answer stamped (rx, tx, TOS), sent
#                  in groups of 8 per sendmmsg() so each stamp is taken right before its send
#   baseline 32, baseline ludp
#                  with BASELINE=PATH: the lreflect binary at PATH (an earlier commit's release
#                  build) in the lreflect 32 and lreflect ludp configurations, in the same
#                  rounds; the table then gives the current lreflect's answers per CPU second
#                  against it (`vs baseline`), e.g. to check that a change costs under 10 %.
# lreflect runs with --rate-limit 0 --max-pps 0 (one source at full speed would otherwise be
# limited, which is the point of the limits, not of this benchmark).
#
# Run as root from anywhere: bench/lreflect.sh. Takes about 100 s with the defaults, plus the
# release build. Prints the table and writes it, with the command, date, kernel and commit, to
# bench/lreflect-results.md.
#
# Knobs (environment):
#   SECS=5            seconds of load per run
#   ROUNDS=3          rounds (each runs every configuration once)
#   SIZE=32           payload bytes of the plain runs (ludp runs use 64)
#   WINDOW=192        datagrams in flight (below the simple loop's default receive buffer,
#                     about 270 small datagrams on loopback, so it never drops)
#   REFLECTOR_CPU=0   CPU the reflector is pinned to
#   LOAD_CPU=1        CPU the generator is pinned to
#   SKIP_BUILD=0      1: use the existing release binaries
#   BASELINE=         an older lreflect binary to compare with (see above); e.g. built with
#                     git archive BASE | tar -x -C /tmp/base && cargo build --release --bin lreflect
set -euo pipefail

SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-32}
WINDOW=${WINDOW:-192}
REFLECTOR_CPU=${REFLECTOR_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
BASELINE=${BASELINE:-}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REL=$ROOT/target/release
LREFLECT=$REL/lreflect
SIMPLE=$REL/examples/simple_echo
LOAD=$REL/examples/udp_load
RESULTS=$ROOT/bench/lreflect-results.md

die() { echo "lreflect.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespace); run as root"
for t in ip taskset ss jq python3 getconf; do
    command -v "$t" >/dev/null || die "$t is missing"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (reflector and generator pinned apart)"

START=$(date +%s)
if [ "$SKIP_BUILD" != 1 ]; then
    log "building (release)"
    cargo build --release --quiet --bin lreflect --example simple_echo --example udp_load
fi
for b in "$LREFLECT" "$SIMPLE" "$LOAD" ${BASELINE:+"$BASELINE"}; do
    [ -x "$b" ] || die "$b is missing (build first)"
done

NS=lopa-bench-lreflect-$$
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

# utime + stime of a process, in clock ticks (fields 14 and 15; the name has no spaces here).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME PORT LOADFLAGS REFLECTOR-COMMAND...: one measured run; appends a result line.
run() {
    local name=$1 port=$2 loadflags=$3
    shift 3
    ip netns exec "$NS" taskset -c "$REFLECTOR_CPU" "$@" >"$TMP/out" 2>"$TMP/err" &
    PID=$!
    local i=0
    until ip netns exec "$NS" ss -Hlun "sport = :$port" | grep -q .; do
        i=$((i + 1))
        [ $i -lt 500 ] || die "$name did not bind port $port: $(cat "$TMP/err")"
        sleep 0.01
    done
    # shellcheck disable=SC2086
    ip netns exec "$NS" taskset -c "$LOAD_CPU" "$LOAD" "127.0.0.1:$port" --seconds 0.5 \
        --window "$WINDOW" $loadflags >/dev/null
    local t0 t1 gen
    t0=$(ticks "$PID")
    # shellcheck disable=SC2086
    gen=$(ip netns exec "$NS" taskset -c "$LOAD_CPU" "$LOAD" "127.0.0.1:$port" --seconds "$SECS" \
        --window "$WINDOW" $loadflags)
    t1=$(ticks "$PID")
    kill -TERM "$PID"
    wait "$PID" 2>/dev/null || true
    PID=
    local send_errors=
    if [ -s "$TMP/out" ]; then
        send_errors=$(jq -s '[.[] | select(.window == "total") | .dropped.send_error] | add' "$TMP/out")
    fi
    echo "$gen" | jq -c --arg name "$name" --argjson ticks $((t1 - t0)) --argjson hz "$HZ" \
        --arg send_errors "$send_errors" \
        '. + {name: $name, cpu_s: ($ticks / $hz), gen_cpu_s: .cpu_s, send_errors: $send_errors}' \
        >>"$TMP/results"
    log "$name: $(tail -1 "$TMP/results")"
}

LUDP_SIZE=64
configs=(simple32 lreflect32 lreflect_any lreflect_nogso simple_ludp lreflect_ludp)
[ -z "$BASELINE" ] || configs+=(baseline32 baseline_ludp)
one() {
    case $1 in
    simple32) run "simple 32" 9001 "--size $SIZE" "$SIMPLE" 127.0.0.1:9001 ;;
    lreflect32) run "lreflect 32" 9000 "--size $SIZE" "$LREFLECT" --echo 127.0.0.1:9000 \
        --rate-limit 0 --max-pps 0 --stats-every 0 ;;
    lreflect_any) run "lreflect [::] 32" 9002 "--size $SIZE" "$LREFLECT" --echo '[::]:9002' \
        --rate-limit 0 --max-pps 0 --stats-every 0 ;;
    lreflect_nogso) run "lreflect 32 --no-gso" 9003 "--size $SIZE" "$LREFLECT" \
        --echo 127.0.0.1:9003 --rate-limit 0 --max-pps 0 --stats-every 0 --no-gso ;;
    simple_ludp) run "simple ludp" 9001 "--size $LUDP_SIZE --ludp" "$SIMPLE" 127.0.0.1:9001 ;;
    lreflect_ludp) run "lreflect ludp" 9000 "--size $LUDP_SIZE --ludp" "$LREFLECT" \
        --echo 127.0.0.1:9000 --rate-limit 0 --max-pps 0 --stats-every 0 ;;
    baseline32) run "baseline 32" 9004 "--size $SIZE" "$BASELINE" --echo 127.0.0.1:9004 \
        --rate-limit 0 --max-pps 0 --stats-every 0 ;;
    baseline_ludp) run "baseline ludp" 9004 "--size $LUDP_SIZE --ludp" "$BASELINE" \
        --echo 127.0.0.1:9004 --rate-limit 0 --max-pps 0 --stats-every 0 ;;
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
# Uncommitted changes to what the measured code is made of (other tools' work in progress is
# compiled into the same crate but not run here).
DIRTY=$(git status --porcelain --untracked-files=no -- src/reflect src/bin/lreflect.rs src/net \
    src/wire examples/simple_echo.rs examples/udp_load.rs 2>/dev/null | grep -q . &&
    echo " (with uncommitted changes to lreflect)" || true)
CMD="SECS=$SECS ROUNDS=$ROUNDS SIZE=$SIZE WINDOW=$WINDOW REFLECTOR_CPU=$REFLECTOR_CPU LOAD_CPU=$LOAD_CPU SKIP_BUILD=$SKIP_BUILD${BASELINE:+ BASELINE=$BASELINE} bench/lreflect.sh"

python3 - "$TMP/results" "$RESULTS" "$CMD" "$TOOK" "$COMMIT$DIRTY" "$(uname -r)" "$(nproc)" \
    "$(date -u +%Y-%m-%dT%H:%MZ)" <<'EOF'
import json, statistics, sys
path, out, cmd, took, commit, kernel, ncpu, when = sys.argv[1:]
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
base = {"lreflect 32": "simple 32", "lreflect [::] 32": "simple 32",
        "lreflect 32 --no-gso": "simple 32", "lreflect ludp": "simple ludp"}
baseline = {"lreflect 32": "baseline 32", "lreflect ludp": "baseline ludp"}
def against(n, pairs):
    if n not in pairs or not runs(pairs[n]):
        return ""
    b = pairs[n]
    text = f"{med(n, per_cpu) / med(b, per_cpu):.2f}x"
    per_round = [per_cpu(a) / per_cpu(c) for a, c in zip(runs(n), runs(b))]
    return text + " (rounds: " + ", ".join(f"{x:.2f}" for x in per_round) + ")"
lines = []
lines.append(f"## lreflect benchmark — {when}\n")
lines.append(f"Command: `{cmd}`; took {took} s.\n")
lines.append(f"lreflect at commit {commit}; kernel {kernel}, {ncpu} CPU(s); reflector and generator "
             "pinned to different CPUs, in a fresh network namespace's loopback.\n")
with_baseline = any(runs(b) for b in baseline.values())
extra = " vs baseline |" if with_baseline else ""
lines.append("| reflector | answers/s | reflector CPU | CPU ns per answer | answers per CPU second | vs simple loop |" + extra + " generator CPU | lost | send errors |")
lines.append("|---|---|---|---|---|---|---|---|---|" + ("---|" if with_baseline else ""))
for n in names:
    rs = runs(n)
    ratio = against(n, base)
    if with_baseline:
        ratio += " | " + against(n, baseline)
    lost = sum(r["lost"] for r in rs)
    errs = ",".join(sorted({r["send_errors"] for r in rs if r["send_errors"] != ""})) or "n/a"
    lines.append(
        f"| {n} | {med(n, pps):,.0f} | {med(n, cpu_pct):.0f} % | {med(n, ns_per):,.0f} | "
        f"{med(n, per_cpu):,.0f} | {ratio} | {med(n, gen_pct):.0f} % | {lost} | {errs} |")
lines.append("")
lines.append("Medians over the rounds. Every round, answers/s and answers per CPU second:\n")
for n in names:
    vals = "; ".join(f"{r['pps']:,.0f} / {per_cpu(r):,.0f}" for r in runs(n))
    lines.append(f"- {n}: {vals}")
lines.append("")
lines.append("Payloads: 32 bytes (plain) or 64-byte ludp probes (`ludp` rows; lreflect stamps every "
             "one). `vs simple loop` divides answers per CPU second by the simple loop's on the same "
             "payload. CPU is user + system time of the reflector process while loaded (from "
             "/proc/PID/stat, 10 ms ticks); generator CPU is the load generator's own.\n")
lines.append("Reading the figures: most of the cost of an answer is the kernel's trip through the IP "
             "stack (on loopback the sender also pays for the delivery). The `--no-gso` row is "
             "batching alone, every answer its own send, which is what lreflect does when "
             "consecutive answers go to different clients: it saves system calls but asks for "
             "more per datagram (receive timestamp, TOS) than the simple loop. The other lreflect "
             "rows coalesce answers to one client into UDP GSO sends, which this one-client load "
             "favours: that is where the gain comes from." + (
             " `vs baseline` divides answers per CPU second by the baseline binary's (BASELINE) "
             "on the same payload, round by round." if with_baseline else ""))
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
EOF
log "wrote $RESULTS"
