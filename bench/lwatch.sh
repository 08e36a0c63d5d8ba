#!/usr/bin/env bash
# lwatch against `ip monitor`, in the same runs, while a script flaps routes.
#
# What: the highest rate of route changes each monitor follows without losing one, with the
# receive buffer the issue names (4 MiB asked: lwatch's default --rcvbuf, `ip -rcvbuf
# 4194304` for ip monitor; the kernel doubles both), and the CPU time each spends.
#
# How: a fresh network namespace with a veth pair d0/d1 (up; d0 has 10.255.0.1/16). Each level
# starts a fresh `lwatch --type route` and a fresh `ip -rcvbuf 4194304 monitor route`, both
# pinned to CPU MON_CPU (they share it, as two monitors on one busy host would), waits for them
# to subscribe, then flaps routes at RATE changes per second for SECS seconds: a paced python
# writer feeds `ip -batch -` (pinned to CPU GEN_CPU) the lines
#     route add 10.A.B.0/24 dev d0
#     route del 10.A.B.0/24 dev d0
# in turn, each line one route change and one kernel notification (RTM_NEWROUTE or
# RTM_DELROUTE) to every listener. The writer sends, every millisecond, the lines due by
# then, so the achieved rate is the asked one until `ip -batch` cannot keep up; the last level
# (RATE 0) is unpaced, as fast as `ip -batch` goes, for SECS seconds too. After the burst both monitors get DRAIN
# seconds to catch up, then their CPU time (utime + stime from /proc/PID/stat) is read and
# they are stopped.
#
# Counting: done = lines ip -batch executed without error (every one succeeds in a fresh
# namespace: the script checks). lwatch saw = its route add/del records for 10.x.y.0/24 that
# are not marked "resync":true; an overflow shows as a `resync` record. ip monitor saw = its
# lines for those routes ("10.x.y.0/24 dev d0 ..." and "Deleted 10.x.y.0/24 ..."); an
# overflow shows as "netlink receive error No buffer space available" on its stderr. A level
# is followed with zero loss when saw = done and no overflow was signalled.
#
# Run as root from anywhere: bench/lwatch.sh. About 6 s per level plus the release build.
# Prints the table and writes it, with the command, date, kernel and commit, to
# bench/lwatch-results.md.
#
# Knobs (environment):
#   RATES="10000 20000 40000 60000 80000 100000 0"  changes per second per level (0: unpaced)
#   SECS=3           seconds of flapping per level
#   DRAIN=2          seconds the monitors get to catch up after a burst
#   RCVBUF=4194304   receive buffer both monitors ask for
#   MON_CPU=0        CPU both monitors are pinned to
#   GEN_CPU=1        CPU(s) the generators (writer and ip -batch) are pinned to (taskset -c list)
#   GENS=1           generators in parallel, each RATE/GENS changes per second on its own routes
#                    (GENS=2 GEN_CPU=0,1: more load than one ip -batch makes, and the monitors
#                    share their CPU with it)
#   SKIP_BUILD=0     1: use the existing release binary
#   RESULTS=bench/lwatch-results.md   where the table goes
set -euo pipefail

RATES=${RATES:-"10000 20000 40000 60000 80000 100000 0"}
SECS=${SECS:-3}
DRAIN=${DRAIN:-2}
RCVBUF=${RCVBUF:-4194304}
MON_CPU=${MON_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
GENS=${GENS:-1}
SKIP_BUILD=${SKIP_BUILD:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LWATCH=$ROOT/target/release/lwatch
RESULTS=${RESULTS:-$ROOT/bench/lwatch-results.md}

die() { echo "lwatch.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespace); run as root"
for t in ip nsenter taskset jq python3 getconf; do
    command -v "$t" >/dev/null || die "$t is missing"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (monitors and generator pinned apart)"

START=$(date +%s)
if [ "$SKIP_BUILD" != 1 ]; then
    log "building (release)"
    cargo build --release --quiet --bin lwatch
fi
[ -x "$LWATCH" ] || die "$LWATCH is missing (build first)"

NS=lopa-bench-lwatch-$$
TMP=$(mktemp -d /tmp/lwatch-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add d0 type veth peer name d1
ip -n "$NS" link set d1 up
ip -n "$NS" link set d0 up
ip -n "$NS" addr add 10.255.0.1/16 dev d0

TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# The paced writer: RATE lines per second for SECS seconds (RATE 0: as fast as it can),
# alternating add and del of the same /24, a new /24 for every pair.
cat >"$TMP/gen.py" <<'EOF'
import sys, time
rate, secs, t0file, countfile = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
gen = int(sys.argv[5])
def line(i):
    n = gen * 8192 + (i // 2) % 8000
    op = "add" if i % 2 == 0 else "del"
    return f"route {op} 10.{n >> 8}.{n & 255}.0/24 dev d0\n"
out = sys.stdout
i = 0
total = int(rate * secs)
t0 = time.monotonic()
with open(t0file, "w") as f:
    f.write(f"{time.time()}\n")
while True:
    elapsed = time.monotonic() - t0
    if rate:
        if i >= total:
            break
        due = min(total, int(elapsed * rate) + 1)
        if due <= i:
            time.sleep(0.001)
            continue
    else:
        if elapsed >= secs:
            break
        due = i + 256
    out.write("".join(line(k) for k in range(i, due)))
    out.flush()
    i = due
with open(countfile, "w") as f:
    f.write(f"{i}\n")
EOF

# Waits for the generators (every background job but the two monitors).
wait_gens() {
    local j
    for j in $(jobs -p); do
        [ "$j" = "$LW" ] || [ "$j" = "$IM" ] || wait "$j" || true
    done
}

ROWS=()
for RATE in $RATES; do
    D=$TMP/r$RATE
    mkdir -p "$D"
    nsenter --net="/var/run/netns/$NS" taskset -c "$MON_CPU" \
        "$LWATCH" --type route --rcvbuf "$RCVBUF" >"$D/lwatch.jsonl" 2>"$D/lwatch.err" &
    LW=$!
    taskset -c "$MON_CPU" ip -n "$NS" -rcvbuf "$RCVBUF" monitor route \
        >"$D/ipmon.txt" 2>"$D/ipmon.err" &
    IM=$!
    PIDS+=("$LW" "$IM")
    sleep 0.5
    for ((g = 0; g < GENS; g++)); do
        taskset -c "$GEN_CPU" python3 "$TMP/gen.py" $((RATE / GENS)) "$SECS" "$D/t0.$g" "$D/count.$g" "$g" |
            taskset -c "$GEN_CPU" ip -n "$NS" -force -batch - 2>"$D/batch.err.$g" &
    done
    wait_gens
    T1=$(date +%s.%N)
    T0=$(sort -n "$D"/t0.* | head -1)
    sleep "$DRAIN"
    LW_CPU=$(cpu_ticks "$LW")
    IM_CPU=$(cpu_ticks "$IM")
    kill "$LW" "$IM"
    wait "$LW" "$IM" 2>/dev/null || true
    PIDS=()

    ERRS=$(cat "$D"/batch.err.* | grep -c . || true)
    [ "$ERRS" -eq 0 ] || { cat "$D"/batch.err.* | head -3 >&2; die "ip -batch failed at rate $RATE"; }
    [ ! -s "$D/lwatch.err" ] || { cat "$D/lwatch.err" >&2; die "lwatch complained at rate $RATE"; }
    DONE=$(cat "$D"/count.* | awk '{s += $1} END {print s}')
    ACHIEVED=$(python3 -c "print(round($DONE / ($T1 - $T0)))")
    LW_SAW=$(jq -r 'select(.type=="route" and (.event=="add" or .event=="del") and (.resync|not) and (.dst|startswith("10.")) and (.dst|startswith("10.255.")|not)) | 1' "$D/lwatch.jsonl" | wc -l)
    LW_RESYNC=$(jq -r 'select(.type=="resync") | 1' "$D/lwatch.jsonl" | wc -l)
    LW_RCVBUF=$(jq -r 'select(.type=="resync") | .rcvbuf' "$D/lwatch.jsonl" | head -1)
    IM_SAW=$(grep -cE '^(Deleted )?10\.[0-9]+\.[0-9]+\.0/24 dev d0' "$D/ipmon.txt" || true)
    IM_OVF=$(grep -c 'No buffer space' "$D/ipmon.err" || true)
    LW_CPU_S=$(python3 -c "print(f'{$LW_CPU / $TCK:.2f}')")
    IM_CPU_S=$(python3 -c "print(f'{$IM_CPU / $TCK:.2f}')")
    log "rate ${RATE:-max}: done $DONE at $ACHIEVED/s; lwatch saw $LW_SAW resync $LW_RESYNC cpu ${LW_CPU_S}s; ip monitor saw $IM_SAW overflow $IM_OVF cpu ${IM_CPU_S}s"
    ROWS+=("$RATE|$DONE|$ACHIEVED|$LW_SAW|$LW_RESYNC|$LW_CPU_S|$IM_SAW|$IM_OVF|$IM_CPU_S")
done

# The highest achieved rate each followed with zero loss, and the lowest it did not.
best() { # $1: saw field, $2: overflow field
    local ok=0 fail=""
    for r in "${ROWS[@]}"; do
        IFS='|' read -r -a f <<<"$r"
        if [ "${f[$1]}" -eq "${f[1]}" ] && [ "${f[$2]}" -eq 0 ]; then
            [ "${f[2]}" -gt "$ok" ] && ok=${f[2]}
        elif [ -z "$fail" ] || [ "${f[2]}" -lt "$fail" ]; then
            fail=${f[2]}
        fi
    done
    echo "$ok|${fail:-none}"
}
LW_BEST=$(best 3 4)
IM_BEST=$(best 6 7)
fmt() { python3 -c "import sys; print(f'{int(sys.argv[1]):,}')" "$1"; }

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
KERNEL=$(uname -r)
TOOK=$(($(date +%s) - START))
CMD="RATES=\"$RATES\" SECS=$SECS DRAIN=$DRAIN RCVBUF=$RCVBUF MON_CPU=$MON_CPU GEN_CPU=$GEN_CPU GENS=$GENS SKIP_BUILD=$SKIP_BUILD bench/lwatch.sh"
{
    echo "## lwatch benchmark — $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Command: \`$CMD\`; took $TOOK s."
    echo
    echo "lwatch at commit $COMMIT; kernel $KERNEL, $(nproc) CPU(s); iproute2 $(ip -V | sed 's/.*iproute2-\([^ ,]*\).*/\1/'); both monitors pinned to CPU $MON_CPU, $GENS generator(s) to CPU $GEN_CPU, in a fresh network namespace. Receive buffer: $RCVBUF bytes asked by both${LW_RCVBUF:+ (lwatch reported $LW_RCVBUF in its resync record)}."
    echo
    echo "| asked/s | changes done | achieved/s | lwatch saw | lwatch resync | lwatch CPU s | ip monitor saw | ip monitor overflow | ip monitor CPU s |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for r in "${ROWS[@]}"; do
        IFS='|' read -r -a f <<<"$r"
        asked=$([ "${f[0]}" = 0 ] && echo "unpaced" || fmt "${f[0]}")
        echo "| $asked | $(fmt "${f[1]}") | $(fmt "${f[2]}") | $(fmt "${f[3]}") | ${f[4]} | ${f[5]} | $(fmt "${f[6]}") | ${f[7]} | ${f[8]} |"
    done
    echo
    echo "Highest achieved rate followed with zero loss: lwatch $(fmt "${LW_BEST%|*}")/s (first loss: ${LW_BEST#*|}), ip monitor $(fmt "${IM_BEST%|*}")/s (first loss: ${IM_BEST#*|})."
    echo
    echo "One change is one route add or del, one notification. \`saw\`: route records (lwatch, not counting \"resync\":true ones) or lines (ip monitor) for the flapped routes; \`resync\` / \`overflow\`: lwatch's resync records / ip monitor's ENOBUFS messages. CPU: user + system time of the monitor process over the whole level (burst and drain), from /proc/PID/stat ($TCK ticks/s). Both monitors write to files on $(df --output=fstype /tmp | tail -1)."
} >"$TMP/results.md"
cat "$TMP/results.md"
cp "$TMP/results.md" "$RESULTS"
log "wrote $RESULTS"
