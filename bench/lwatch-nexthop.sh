#!/usr/bin/env bash
# lwatch against `ip monitor`, in the same run, while nexthop objects with many routes on
# them are replaced (FRR moving its next hops).
#
# What: whether each follows every change with the receive buffer lwatch asks by default
# (4 MiB, `ip -rcvbuf 4194304` for ip monitor; the kernel doubles both), and the CPU time
# each spends on it: ip monitor is the baseline (it prints each kernel notice; lwatch also
# keeps the state, resolves the routes on the objects and diffs).
#
# How: a fresh network namespace with a veth pair d0/d1 (up; d0 has 10.255.0.1/16). OBJECTS
# objects `ip nexthop add id N via 10.255.X.Y dev d0`, ROUTES routes on each
# (`ip route add 10.A.B.0/24 nhid N`) and NH_GROUPS groups of two objects with ROUTES routes
# each. Then a fresh `lwatch --type nexthop,route` and a fresh `ip -rcvbuf 4194304 monitor
# nexthop route`, both pinned to CPU MON_CPU, and one `ip -batch` (pinned to GEN_CPU) that
# replaces the objects in turn, REPLACES times in all, each to a gateway other than the one it
# has. The kernel announces each replace and then every route on the object (IPv4, compat
# mode): 1 + ROUTES notices, and for an object in a group the group's routes too. After DRAIN
# seconds the CPU time of each (utime + stime from /proc/PID/stat) is read.
#
# Counting: lwatch saw = its `replace` records of objects and of routes on them, none marked
# resync, and no `resync` record; ip monitor saw = its lines for the objects and the routes
# ("id N via ..." and "10.A.B.0/24 nhid N ..."), and no "No buffer space" on its stderr.
# Expected for both: REPLACES object lines and the route lines the kernel sends (lwatch writes
# one replace per route whose path changed: the same count).
#
# Run as root: bench/lwatch-nexthop.sh. Prints a line and appends it, with the command, date,
# kernel and commit, to bench/lwatch-results.md.
#
# Knobs (environment):
#   OBJECTS=200  ROUTES=50  NH_GROUPS=20  REPLACES=2000  DRAIN=3
#   RCVBUF=4194304  MON_CPU=0  GEN_CPU=1  SKIP_BUILD=0
#   RESULTS=bench/lwatch-results.md
set -euo pipefail

OBJECTS=${OBJECTS:-200}
ROUTES=${ROUTES:-50}
NH_GROUPS=${NH_GROUPS:-20}
REPLACES=${REPLACES:-2000}
DRAIN=${DRAIN:-3}
RCVBUF=${RCVBUF:-4194304}
MON_CPU=${MON_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
SKIP_BUILD=${SKIP_BUILD:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LWATCH=$ROOT/target/release/lwatch
RESULTS=${RESULTS:-$ROOT/bench/lwatch-results.md}

die() { echo "lwatch-nexthop.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespace); run as root"
for t in ip taskset jq getconf; do
    command -v "$t" >/dev/null || die "$t is missing"
done
[ "$OBJECTS" -ge 2 ] && [ "$OBJECTS" -le 60000 ] || die "OBJECTS must be 2 to 60000"
[ $((OBJECTS * ROUTES + NH_GROUPS * ROUTES)) -le 60000 ] || die "at most 60,000 routes"

if [ "$SKIP_BUILD" != 1 ]; then
    log "building (release)"
    cargo build --release --quiet --bin lwatch
fi
[ -x "$LWATCH" ] || die "$LWATCH is missing (build first)"

NS=lopa-bench-lwatch-nh-$$
TMP=$(mktemp -d /tmp/lwatch-nh-bench.XXXXXX)
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

gw() { echo "10.255.$(($1 / 250 + 1)).$(($1 % 250 + 1))"; }
route() { echo "10.$(($1 / 256)).$(($1 % 256)).0/24"; }
{
    for ((o = 1; o <= OBJECTS; o++)); do
        echo "nexthop add id $o via $(gw "$o") dev d0"
    done
    for ((g = 0; g < NH_GROUPS; g++)); do
        echo "nexthop add id $((100000 + g)) group $((2 * g + 1))/$((2 * g + 2))"
    done
    n=0
    for ((o = 1; o <= OBJECTS; o++)); do
        for ((r = 0; r < ROUTES; r++)); do
            echo "route add $(route "$n") nhid $o"
            n=$((n + 1))
        done
    done
    for ((g = 0; g < NH_GROUPS; g++)); do
        for ((r = 0; r < ROUTES; r++)); do
            echo "route add $(route "$n") nhid $((100000 + g))"
            n=$((n + 1))
        done
    done
} >"$TMP/setup.batch"
ip -n "$NS" -batch "$TMP/setup.batch"
for ((k = 0; k < REPLACES; k++)); do
    o=$((k % OBJECTS + 1))
    echo "nexthop replace id $o via $(gw $((o + (k / OBJECTS % 2 == 0 ? 20000 : 0)))) dev d0"
done >"$TMP/replace.batch"

taskset -c "$MON_CPU" ip netns exec "$NS" "$LWATCH" --type nexthop,route --rcvbuf "$RCVBUF" \
    >"$TMP/lwatch.jsonl" 2>"$TMP/lwatch.err" &
LW=$!
taskset -c "$MON_CPU" ip -n "$NS" -rcvbuf "$RCVBUF" monitor nexthop route \
    >"$TMP/ipmon.txt" 2>"$TMP/ipmon.err" &
IM=$!
PIDS+=("$LW" "$IM")
sleep 1
T0=$(date +%s.%N)
taskset -c "$GEN_CPU" ip -n "$NS" -batch "$TMP/replace.batch"
T1=$(date +%s.%N)
sleep "$DRAIN"
TCK=$(getconf CLK_TCK)
cpu() { awk -v t="$TCK" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
LW_CPU=$(cpu "$LW")
IM_CPU=$(cpu "$IM")
kill "$LW" "$IM"
wait "$LW" "$IM" 2>/dev/null || true
PIDS=()

[ ! -s "$TMP/lwatch.err" ] || { cat "$TMP/lwatch.err" >&2; die "lwatch complained"; }
LW_OBJ=$(jq -r 'select(.type=="nexthop" and .event=="replace" and (.resync|not)) | 1' "$TMP/lwatch.jsonl" | wc -l)
LW_ROUTES=$(jq -r 'select(.type=="route" and .event=="replace" and (.resync|not) and .nhid != null) | 1' "$TMP/lwatch.jsonl" | wc -l)
LW_RESYNC=$(jq -r 'select(.type=="resync") | 1' "$TMP/lwatch.jsonl" | wc -l)
IM_OBJ=$(grep -cE '^id [0-9]+ via' "$TMP/ipmon.txt" || true)
IM_ROUTES=$(grep -cE '^10\.[0-9]+\.[0-9]+\.0/24 nhid' "$TMP/ipmon.txt" || true)
IM_OVF=$(grep -c 'No buffer space' "$TMP/ipmon.err" || true)
SECS=$(awk -v a="$T0" -v b="$T1" 'BEGIN {printf "%.2f", b - a}')
RATIO=$(awk -v a="$LW_CPU" -v b="$IM_CPU" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')
LINE="objects $OBJECTS x $ROUTES routes + $NH_GROUPS groups x $ROUTES; $REPLACES replaces in ${SECS}s: lwatch $LW_OBJ objects, $LW_ROUTES routes, resync $LW_RESYNC, cpu ${LW_CPU}s; ip monitor $IM_OBJ objects, $IM_ROUTES routes, overflow $IM_OVF, cpu ${IM_CPU}s; cpu ratio lwatch/ip monitor $RATIO"
echo "$LINE"
{
    echo
    echo "### nexthop objects replaced ($(date -u +%F), kernel $(uname -r), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
    echo
    echo "\`OBJECTS=$OBJECTS ROUTES=$ROUTES NH_GROUPS=$NH_GROUPS REPLACES=$REPLACES bench/lwatch-nexthop.sh\`: $LINE"
} >>"$RESULTS"
