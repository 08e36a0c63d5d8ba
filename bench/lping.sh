#!/usr/bin/env bash
# Side-by-side benchmark of lping against iputils ping and fping.
#
#   1. Accuracy: median RTT over a veth pair between two network namespaces, lping vs iputils
#      ping (both -i 0.01), for both lping socket kinds, each paired with ping using the same
#      kind (ping takes a datagram socket when ping_group_range allows it, raw otherwise).
#      Medians are computed here from the per-reply RTTs (ping's time=, lping's rtt_ms), the
#      same way for both. Plus a control: lping paced at the interval ping really achieved.
#   2. Cost at scale: CPU and wall time of lping vs fping for TARGETS loopback targets,
#      10 probes each, 1 s apart per target, in a fresh namespace (its own lo).
#   3. Schedule: lping -c SCHED_N -i 10ms over the veth pair; span of the reply timestamps
#      and process wall time against the ideal grid.
#
# Run from anywhere as root: bench/lping.sh. Only traffic to namespaces it creates.
# Prints a Markdown table and writes it to bench/results.md.
#
# Knobs (environment):
#   N=500             probes per accuracy run (at 10 ms)
#   ROUNDS=1          accuracy rounds; each runs ping and lping back to back for both socket
#                     kinds (order alternates between rounds); medians pool all rounds
#   PACED=1           also run lping at the interval ping actually achieved (iputils ping
#                     -i 0.01 paces slower than asked, and RTT on an idle box depends on pace)
#   TARGETS=1000      targets of the scale test (127.0.1.1 upwards)
#   SCALE_COUNT=10    probes per target in the scale test (1 s apart)
#   SCALE_DGRAM=1     also run the scale test with lping --socket dgram (0 to skip)
#   FPING_INTERVAL=1  fping -i (ms between any two pings; empty: fping's default)
#   SCHED_N=1000      probes of the schedule test (at 10 ms)
#   SKIP_BUILD=0      1: use the existing target/release/lping
set -euo pipefail

N=${N:-500}
ROUNDS=${ROUNDS:-1}
PACED=${PACED:-1}
TARGETS=${TARGETS:-1000}
SCALE_COUNT=${SCALE_COUNT:-10}
SCALE_DGRAM=${SCALE_DGRAM:-1}
FPING_INTERVAL=${FPING_INTERVAL-1}
SCHED_N=${SCHED_N:-1000}
SKIP_BUILD=${SKIP_BUILD:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LPING=$ROOT/target/release/lping
RESULTS=$ROOT/bench/results.md

die() { echo "lping.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }

[[ $(id -u) -eq 0 ]] || die "must run as root (namespaces, raw sockets, ping -i 0.01)"
for tool in ip ping fping jq awk sort date; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install iproute2 iputils-ping fping jq)"
done

# --- setup and cleanup -------------------------------------------------------------------
TAG=lpb$$
NS_A=$TAG-a      # sender, 10.77.0.1
NS_B=$TAG-b      # responder, 10.77.0.2
NS_L=$TAG-lo     # loopback only, for the scale test
PEER=10.77.0.2
WORK=$(mktemp -d /tmp/lping-bench.XXXXXX)

cleanup() {
    local rc=$?
    for ns in "$NS_A" "$NS_B" "$NS_L"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $SKIP_BUILD != 1 ]]; then
    log "building lping (release)"
    cargo build --release --bin lping >&2
fi
[[ -x $LPING ]] || die "no $LPING"

log "creating namespaces $NS_A, $NS_B (veth) and $NS_L (lo)"
ip netns add "$NS_A"
ip netns add "$NS_B"
ip netns add "$NS_L"
ip link add "$TAG-va" netns "$NS_A" type veth peer name "$TAG-vb" netns "$NS_B"
ip -n "$NS_A" addr add 10.77.0.1/24 dev "$TAG-va"
ip -n "$NS_B" addr add 10.77.0.2/24 dev "$TAG-vb"
for ns in "$NS_A" "$NS_B" "$NS_L"; do ip -n "$ns" link set lo up; done
ip -n "$NS_A" link set "$TAG-va" up
ip -n "$NS_B" link set "$TAG-vb" up

ping_range() { # NS open|closed
    local v="1 0"
    [[ $2 == open ]] && v="0 2147483647"
    ip netns exec "$1" sh -c "echo '$v' > /proc/sys/net/ipv4/ping_group_range"
}
ping_range "$NS_A" closed
ping_range "$NS_L" closed

# Wait for the link (and neighbour resolution) before measuring anything.
for _ in $(seq 50); do
    ip netns exec "$NS_A" ping -c 1 -W 1 "$PEER" >/dev/null 2>&1 && break
    sleep 0.1
done
ip netns exec "$NS_A" ping -c 1 -W 1 "$PEER" >/dev/null || die "veth pair does not answer"

# Runs a command inside a namespace; stdout, stderr and "real user sys" (bash time, ms
# resolution, rusage of the child) go to files. Returns the command's exit status.
timed() { # NS OUT ERR TIMEFILE CMD...
    local ns=$1 out=$2 err=$3 tf=$4
    shift 4
    ip netns exec "$ns" bash -c 'TIMEFORMAT="%3R %3U %3S"; { time "${@:4}" >"$1" 2>"$2"; } 2>"$3"' \
        _ "$out" "$err" "$tf" "$@"
}

median() { # numbers on stdin, one a line
    sort -g | awk '{a[NR]=$1} END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) printf "%.6f\n", a[(NR+1)/2]; else printf "%.6f\n", (a[NR/2]+a[NR/2+1])/2 }'
}
calc() { awk "BEGIN { printf \"$1\n\", $2 }"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b+0 == 0 || a == "nan" || b == "nan") print "n/a"; else printf "%.3f\n", a/b }'; }

# Which socket iputils ping picks with the namespace's current ping_group_range.
ping_socket_kind() {
    if command -v strace >/dev/null; then
        local s
        s=$(ip netns exec "$NS_A" strace -f -e trace=socket ping -c 1 -W 1 "$PEER" 2>&1 >/dev/null |
            grep -E 'socket\(AF_INET, SOCK_(DGRAM|RAW), IPPROTO_ICMP\) = [0-9]' | head -1 || true)
        case $s in
            *SOCK_DGRAM*) echo dgram ;; *SOCK_RAW*) echo raw ;; *) echo "?" ;;
        esac
    else
        echo "?"
    fi
}

# --- 1. accuracy -----------------------------------------------------------------------------
# Seconds since the epoch of a record's ts (RFC 3339, nanoseconds, UTC).
JQ_SECS='def secs: (sub("\\.[0-9]+Z$"; "Z") | fromdate) + ((capture("\\.(?<f>[0-9]+)Z$") // {f: "0"}).f | "0." + . | tonumber);'

log "accuracy: $ROUNDS round(s) of $N probes at 10 ms per tool and socket kind, $NS_A -> $PEER"
declare -A PING_KIND
for kind in raw dgram; do
    for series in ping lping paced; do
        : >"$WORK/$series-$kind.rtt"
        : >"$WORK/$series-$kind.ivl"
        echo "0 0" >"$WORK/$series-$kind.count"
    done
done

add_count() { # FILE SENT RECEIVED
    local s r
    read -r s r <"$1"
    echo "$((s + $2)) $((r + $3))" >"$1"
}

# iputils ping; sets PING_IVL to the interval it achieved (its "time" / (sent - 1), seconds).
run_ping() { # KIND ROUND
    local kind=$1 r=$2 out=$WORK/ping-$1-$2.out rc=0
    timed "$NS_A" "$out" "$out.err" "$out.time" ping -n -c "$N" -i 0.01 -W 1 "$PEER" || rc=$?
    [[ $rc -le 1 ]] || { cat "$out.err" >&2; die "ping failed ($rc)"; }
    grep -v 'DUP!' "$out" | grep -o 'time=[0-9.]*' | cut -d= -f2 >>"$WORK/ping-$kind.rtt"
    local sent recv span
    sent=$(grep -oE '[0-9]+ packets transmitted' "$out" | awk '{print $1}')
    recv=$(grep -oE '[0-9]+ received' "$out" | awk '{print $1}')
    span=$(grep -oE 'time [0-9]+ms' "$out" | awk '{print $2 + 0}')
    add_count "$WORK/ping-$kind.count" "${sent:-0}" "${recv:-0}"
    PING_IVL=$(awk -v t="${span:-0}" -v n="${sent:-0}" 'BEGIN { printf "%.6f\n", (n > 1 ? t / 1000 / (n - 1) : 0.01) }')
    calc "%.3f" "$PING_IVL * 1000" >>"$WORK/ping-$kind.ivl"
}

# lping; the achieved interval is the span of the reply stamps / (replies - 1).
run_lping_acc() { # SERIES KIND ROUND INTERVAL
    local series=$1 kind=$2 r=$3 ivl=$4 out=$WORK/$1-$2-$3.out rc=0
    timed "$NS_A" "$out" "$out.err" "$out.time" "$LPING" --socket "$kind" -c "$N" -i "$ivl" -W 1 "$PEER" || rc=$?
    [[ $rc -le 1 ]] || { cat "$out.err" >&2; die "lping --socket $kind failed ($rc)"; }
    jq -r 'select(.type == "reply" and (.dup | not)) | .rtt_ms' "$out" >>"$WORK/$series-$kind.rtt"
    jq -rs "$JQ_SECS"' [.[] | select(.type == "reply" and (.dup | not))] |
        if length > 1 then ((.[-1].ts | secs) - (.[0].ts | secs)) / (.[-1].seq - .[0].seq) * 1000 else 0 end' \
        "$out" | awk '{ printf "%.3f\n", $1 }' >>"$WORK/$series-$kind.ivl"
    add_count "$WORK/$series-$kind.count" \
        "$(jq -s '[.[] | select(.type == "summary" and .window == "total") | .sent] | add // 0' "$out")" \
        "$(jq -s '[.[] | select(.type == "summary" and .window == "total") | .received] | add // 0' "$out")"
}

for ((r = 1; r <= ROUNDS; r++)); do
    for kind in raw dgram; do
        if [[ $kind == raw ]]; then ping_range "$NS_A" closed; else ping_range "$NS_A" open; fi
        [[ -n ${PING_KIND[$kind]:-} ]] || PING_KIND[$kind]=$(ping_socket_kind)
        # Back to back; the order alternates between rounds.
        if ((r % 2)); then
            run_ping "$kind" "$r"
            run_lping_acc lping "$kind" "$r" 0.01
        else
            run_lping_acc lping "$kind" "$r" 0.01
            run_ping "$kind" "$r"
        fi
        # Control: lping paced at the interval ping actually achieved (RTT depends on pace).
        [[ $PACED == 1 ]] && run_lping_acc paced "$kind" "$r" "$PING_IVL"
        log "  round $r, $kind: done (ping achieved $(calc "%.2f" "$PING_IVL * 1000") ms)"
    done
done
ping_range "$NS_A" closed

declare -A MED CNT IVL
for kind in raw dgram; do
    for series in ping lping paced; do
        MED[$series-$kind]=$(median <"$WORK/$series-$kind.rtt")
        CNT[$series-$kind]=$(awk '{printf "%d/%d", $2, $1}' "$WORK/$series-$kind.count")
        IVL[$series-$kind]=$(awk '{ s += $1; n++ } END { if (n) printf "%.2f", s / n; else print "n/a" }' "$WORK/$series-$kind.ivl")
    done
done

# --- 2. cost at scale --------------------------------------------------------------------------
TFILE=$WORK/targets.txt
awk -v n="$TARGETS" 'BEGIN {
    base = 127 * 16777216 + 1 * 256 + 1
    for (i = 0; i < n; i++) {
        a = base + i
        printf "%d.%d.%d.%d\n", int(a / 16777216), int(a / 65536) % 256, int(a / 256) % 256, a % 256
    }
}' >"$TFILE"
FIRST_T=$(head -1 "$TFILE")
LAST_T=$(tail -1 "$TFILE")
EXPECT=$((TARGETS * SCALE_COUNT))
log "scale: $TARGETS targets ($FIRST_T … $LAST_T) × $SCALE_COUNT probes, 1 s apart, in $NS_L"

FPING_ARGS=(-q -c "$SCALE_COUNT" -p 1000)
[[ -n $FPING_INTERVAL ]] && FPING_ARGS+=(-i "$FPING_INTERVAL")
FPING_ARGS+=(-f "$TFILE")

rc=0
timed "$NS_L" "$WORK/fping.out" "$WORK/fping.err" "$WORK/fping.time" fping "${FPING_ARGS[@]}" || rc=$?
[[ $rc -le 1 ]] || { tail "$WORK/fping.err" >&2; die "fping failed ($rc)"; }
read -r F_WALL F_USER F_SYS <"$WORK/fping.time"
F_CPU=$(calc "%.3f" "$F_USER + $F_SYS")
F_OK=$(grep -c "xmt/rcv/%loss = $SCALE_COUNT/$SCALE_COUNT/0%" "$WORK/fping.err" || true)
read -r F_SENT F_RECV < <(sed -n 's|.*xmt/rcv/%loss = \([0-9]*\)/\([0-9]*\)/.*|\1 \2|p' "$WORK/fping.err" |
    awk '{s += $1; r += $2} END {print s + 0, r + 0}')
log "  fping: wall $F_WALL s, cpu $F_CPU s, $F_RECV/$F_SENT, $F_OK/$TARGETS targets complete"

declare -A L_WALL L_CPU L_SENT L_RECV L_OK L_USER L_SYS
scale_kinds=(raw)
[[ $SCALE_DGRAM == 1 ]] && scale_kinds+=(dgram)
for kind in "${scale_kinds[@]}"; do
    if [[ $kind == raw ]]; then ping_range "$NS_L" closed; else ping_range "$NS_L" open; fi
    out=$WORK/lping-scale-$kind
    rc=0
    timed "$NS_L" "$out.out" "$out.err" "$out.time" "$LPING" --socket "$kind" -q -c "$SCALE_COUNT" -i 1 -f "$TFILE" || rc=$?
    [[ $rc -le 1 ]] || { tail "$out.err" >&2; die "lping scale ($kind) failed ($rc)"; }
    read -r L_WALL[$kind] L_USER[$kind] L_SYS[$kind] <"$out.time"
    L_CPU[$kind]=$(calc "%.3f" "${L_USER[$kind]} + ${L_SYS[$kind]}")
    read -r L_SENT[$kind] L_RECV[$kind] L_OK[$kind] < <(jq -rs --argjson c "$SCALE_COUNT" '
        [.[] | select(.type == "summary" and .window == "total")] |
        "\(map(.sent) | add // 0) \(map(.received) | add // 0) \(map(select(.sent == $c and .received == $c)) | length)"' "$out.out")
    log "  lping $kind: wall ${L_WALL[$kind]} s, cpu ${L_CPU[$kind]} s, ${L_RECV[$kind]}/${L_SENT[$kind]}, ${L_OK[$kind]}/$TARGETS targets complete"
done
ping_range "$NS_L" closed

# --- 3. schedule -------------------------------------------------------------------------------
log "schedule: lping --socket raw -c $SCHED_N -i 10ms $PEER"
out=$WORK/sched
rc=0
timed "$NS_A" "$out.out" "$out.err" "$out.time" "$LPING" --socket raw -c "$SCHED_N" -i 10ms -W 1 "$PEER" || rc=$?
[[ $rc -le 1 ]] || { cat "$out.err" >&2; die "lping schedule run failed ($rc)"; }
read -r S_WALL _ _ <"$out.time"
# Seconds since the first reply, per sequence number, from the kernel receive stamps.
jq -r "$JQ_SECS"'
       select(.type == "reply" and (.dup | not)) | "\(.seq) \(.ts | secs)"' "$out.out" >"$out.ts"
# Deviation of each reply from the 10 ms grid anchored at the first reply, in ms.
awk 'NR == 1 { s1 = $1; t1 = $2 }
     { d = ($2 - t1) - ($1 - s1) * 0.010; if (d < 0) d = -d; printf "%.6f\n", d * 1000 }' \
    "$out.ts" | sort -g >"$out.dev"
S_REPLIES=$(wc -l <"$out.ts")
S_SPAN=$(awk 'NR == 1 { t1 = $2 } { last = $2 } END { printf "%.6f\n", last - t1 }' "$out.ts")
S_MAXDEV=$(tail -1 "$out.dev" | awk '{ printf "%.3f", $1 }')
S_MEANDEV=$(awk '{ s += $1 } END { printf "%.3f", NR ? s / NR : 0 }' "$out.dev")
S_P99DEV=$(awk -v n="$S_REPLIES" 'NR == int(0.99 * n + 0.5) { printf "%.3f", $1 }' "$out.dev")
S_IDEAL_SPAN=$(calc "%.3f" "($SCHED_N - 1) * 0.010")
S_NOMINAL=$(calc "%.3f" "$SCHED_N * 0.010")
S_SPAN_DEV=$(calc "%+.3f" "($S_SPAN - $S_IDEAL_SPAN) / $S_NOMINAL * 100")
S_WALL_DEV=$(calc "%+.3f" "($S_WALL - $S_NOMINAL) / $S_NOMINAL * 100")
verdict() { awk -v d="$1" 'BEGIN { print (d < 0 ? -d : d) <= 0.1 ? "within 0.1 %" : "**outside 0.1 %**" }'; }
S_WALL_OVER=$(calc "%.1f" "($S_WALL - $S_IDEAL_SPAN) * 1000")
log "  span $S_SPAN s (ideal $S_IDEAL_SPAN), wall $S_WALL s, $S_REPLIES replies"

# --- report ---------------------------------------------------------------------------------------
ok() { [[ $1 == "$2" ]] && echo "all $2" || echo "**$1 of $2**"; }
FPING_FLAGS="fping ${FPING_ARGS[*]}"
FPING_FLAGS=${FPING_FLAGS/$TFILE/FILE}
{
    echo "## lping benchmark — $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "lping $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)'),"
    echo "$(ping -V 2>&1 | head -1), $(fping -v 2>&1 | head -1), kernel $(uname -r), $(nproc) CPU(s)."
    echo
    echo "| Test | Measure | lping | reference | lping/ref | Notes |"
    echo "|---|---|---|---|---|---|"
    for kind in raw dgram; do
        echo "| 1. accuracy, --socket $kind | median RTT (ms), both \`-i 0.01\` | ${MED[lping-$kind]} | ${MED[ping-$kind]} (ping, ${PING_KIND[$kind]} socket) | $(ratio "${MED[lping-$kind]}" "${MED[ping-$kind]}") | veth, $ROUNDS×$N probes each; replies/sent lping ${CNT[lping-$kind]}, ping ${CNT[ping-$kind]}; achieved interval lping ${IVL[lping-$kind]} ms, ping ${IVL[ping-$kind]} ms |"
        [[ $PACED == 1 ]] &&
            echo "| 1. accuracy, --socket $kind | median RTT (ms), lping paced like ping | ${MED[paced-$kind]} | ${MED[ping-$kind]} | $(ratio "${MED[paced-$kind]}" "${MED[ping-$kind]}") | control: lping \`-i\` = ping's achieved interval (lping achieved ${IVL[paced-$kind]} ms); replies/sent ${CNT[paced-$kind]} |"
    done
    for kind in "${scale_kinds[@]}"; do
        echo "| 2. scale, --socket $kind | CPU user+sys (s) | ${L_CPU[$kind]} (${L_USER[$kind]}+${L_SYS[$kind]}) | $F_CPU ($F_USER+$F_SYS) (fping, raw) | $(ratio "${L_CPU[$kind]}" "$F_CPU") | $TARGETS targets × $SCALE_COUNT in fresh netns lo |"
        echo "| 2. scale, --socket $kind | wall (s) | ${L_WALL[$kind]} | $F_WALL | $(ratio "${L_WALL[$kind]}" "$F_WALL") | \`lping -q -c $SCALE_COUNT -i 1 -f FILE\` vs \`$FPING_FLAGS\` |"
        echo "| 2. scale, --socket $kind | probes received/sent | ${L_RECV[$kind]}/${L_SENT[$kind]} | $F_RECV/$F_SENT | | expected $EXPECT; targets with $SCALE_COUNT/$SCALE_COUNT: lping $(ok "${L_OK[$kind]}" "$TARGETS"), fping $(ok "$F_OK" "$TARGETS") |"
    done
    echo "| 3. schedule | first→last reply ts (s) | $S_SPAN | $S_IDEAL_SPAN (ideal) | | deviation $S_SPAN_DEV % of $S_NOMINAL s, $(verdict "$S_SPAN_DEV"); $S_REPLIES/$SCHED_N replies; \`lping --socket raw -c $SCHED_N -i 10ms $PEER\` over the veth |"
    echo "| 3. schedule | process wall (s) | $S_WALL | $S_NOMINAL (nominal) | | deviation $S_WALL_DEV % of $S_NOMINAL s, $(verdict "$S_WALL_DEV"); ends $S_WALL_OVER ms after the last send was due, incl. exec and the last RTT |"
    echo "| 3. schedule | each reply ts vs 10 ms grid (ms) | mean $S_MEANDEV, p99 $S_P99DEV, max $S_MAXDEV | 0 | | grid anchored at the first reply: per-probe send lateness (jitter, not drift) |"
} | tee "$RESULTS"
