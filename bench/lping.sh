#!/usr/bin/env bash
# Side-by-side benchmark of lping against iputils ping and fping.
#
#   1. Accuracy, concurrent: iputils ping and lping started together (both in the background,
#      then waited for) in the same namespace, to the same veth peer, at the same pace, N probes
#      each, for both lping socket kinds, each paired with ping using the same kind (ping takes a
#      datagram socket when ping_group_range allows it, raw otherwise). Both run at the same time,
#      under the same load and at the same pace, which is what RTT on an idle box depends on.
#      ROUNDS rounds (which tool starts first alternates) are pooled; the table gives median,
#      p10 and p90 of the per-reply RTTs (ping's time=, lping's rtt_ms; computed here the same way
#      for both), replies/sent, each round's medians, and how often the two tools' probes were
#      sent within 1 ms of each other (the second tool starts half an interval after the first,
#      so that they interleave; a probe right behind another finds the path warm or busy).
#      Pace: iputils ping does not keep a short -i. Its waits round up to scheduler ticks, so on
#      a HZ=250 kernel -i 0.01 sends every ~16 ms and -i 0.02 every ~24 ms. The script first
#      measures the interval ping really keeps at -i CONC_IVL (a short calibration run), gives
#      lping that interval, and reports the interval each tool achieved in every round.
#      Not controlled: which CPU each tool runs on (the scheduler's choice; on a 2-CPU VM,
#      both tools on one CPU vs on different CPUs moved RTTs by 2x and more) -- one reason to
#      pool rounds and to show each round.
#   1s. Accuracy, sequential (SEQ=1; off by default): the earlier layout. ping -i 0.01 and lping
#      -i 0.01 run one after the other, plus a control with lping paced at the interval ping
#      really achieved. Off by default because the concurrent rows supersede it: run one after
#      the other, medians moved 2x between runs (RTT depends on pace and on what else runs), so
#      the sequential ratio says more about the moment than about the tools. It also costs ~40 s
#      per round, which the 2.5-minute budget of the whole script cannot spare next to three
#      concurrent rounds.
#   2. Cost at scale: CPU and wall time of lping vs fping for TARGETS loopback targets,
#      10 probes each, 1 s apart per target, in a fresh namespace (its own lo).
#   3. Schedule: lping -c SCHED_N -i 10ms over the veth pair; span of the reply timestamps
#      and process wall time against the ideal grid.
#
# What the RTTs measure: lping starts the clock at the kernel's software transmit stamp
# (SO_TIMESTAMPING) and stops it at the kernel receive stamp; iputils ping starts it with a
# user-space clock read before sendmsg() and stops it at the kernel receive stamp. So lping's
# RTT leaves out the sendmsg() path up to the device, and the same network reads lower in lping
# by about that much. A lower lping median says where the clock starts, not that lping's
# packets travel faster.
#
# Run from anywhere as root: bench/lping.sh. Only traffic to namespaces it creates. Takes about
# 2 minutes with the defaults (plus the release build). Prints a Markdown table and writes it,
# with the command, date, tool versions and git commit, to bench/results.md.
#
# Knobs (environment):
#   N=500             probes per tool per accuracy run
#   ROUNDS=3          concurrent accuracy rounds (per round: one run per socket kind)
#   CONC_IVL=0.02     ping -i of the concurrent runs; lping gets the interval ping keeps there
#   CALIB_N=100       probes of the calibration run that measures that interval
#   SEQ=0             1: also run the sequential accuracy comparison (both -i 0.01)
#   SEQ_ROUNDS=1      sequential rounds (order alternates between rounds; pooled)
#   PACED=1           with SEQ=1: also run lping at the interval ping actually achieved
#   TARGETS=1000      targets of the scale test (127.0.1.1 upwards)
#   SCALE_COUNT=10    probes per target in the scale test (1 s apart)
#   SCALE_DGRAM=1     also run the scale test with lping --socket dgram (0 to skip)
#   FPING_INTERVAL=1  fping -i (ms between any two pings; empty: fping's default)
#   SCHED_N=1000      probes of the schedule test (at 10 ms)
#   SKIP_BUILD=0      1: use the existing target/release/lping
#   LPING=PATH        the lping binary to measure (with SKIP_BUILD=1; e.g. an earlier commit's,
#                     to compare two binaries in two runs back to back)
#   BASE=             another lping binary (e.g. main's release build) run in the scale test
#                     too, right after this one, with a "vs base" CPU row (same run)
#   BASE_NOTE=        what BASE is, for the results (default: its path)
set -euo pipefail

N=${N:-500}
ROUNDS=${ROUNDS:-3}
CONC_IVL=${CONC_IVL:-0.02}
CALIB_N=${CALIB_N:-100}
SEQ=${SEQ:-0}
SEQ_ROUNDS=${SEQ_ROUNDS:-1}
PACED=${PACED:-1}
TARGETS=${TARGETS:-1000}
SCALE_COUNT=${SCALE_COUNT:-10}
SCALE_DGRAM=${SCALE_DGRAM:-1}
FPING_INTERVAL=${FPING_INTERVAL-1}
SCHED_N=${SCHED_N:-1000}
SKIP_BUILD=${SKIP_BUILD:-0}
BASE=${BASE:-}
BASE_NOTE=${BASE_NOTE:-$BASE}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LPING=${LPING:-$ROOT/target/release/lping}
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

T0=$(date +%s)
CMDLINE="N=$N ROUNDS=$ROUNDS CONC_IVL=$CONC_IVL CALIB_N=$CALIB_N SEQ=$SEQ"
[[ $SEQ == 1 ]] && CMDLINE+=" SEQ_ROUNDS=$SEQ_ROUNDS PACED=$PACED"
CMDLINE+=" TARGETS=$TARGETS SCALE_COUNT=$SCALE_COUNT SCALE_DGRAM=$SCALE_DGRAM FPING_INTERVAL=$FPING_INTERVAL SCHED_N=$SCHED_N SKIP_BUILD=$SKIP_BUILD${BASE:+ BASE=$BASE} bench/lping.sh"
# The commit the binary is built from, and whether the sources differed from it at build time.
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
GIT_DIRTY=$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)
if [[ $GIT_DIRTY -gt 0 ]]; then GIT_DIRTY=" + uncommitted changes in $GIT_DIRTY source file(s) at build time"; else GIT_DIRTY=""; fi
[[ $SKIP_BUILD == 1 ]] && GIT_DIRTY+=" (SKIP_BUILD=1: binary not rebuilt, may be older)"

if [[ $SKIP_BUILD != 1 ]]; then
    log "building lping (release)"
    cargo build --release --bin lping >&2
fi
[[ -x $LPING ]] || die "no $LPING"
LPING_VERSION=$("$LPING" --version 2>&1 | head -1)

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

# p10 p50 p90 of the numbers on stdin (one a line), linear interpolation between closest ranks
# (p50 is the usual median: the mean of the two middle values when the count is even).
quantiles() {
    sort -g | awk '{ a[NR] = $1 }
        function q(p,   h, i) { h = (NR - 1) * p; i = int(h); return a[i + 1] + (h - i) * (a[i + 2] - a[i + 1]) }
        END { if (NR == 0) { print "nan nan nan"; exit }
              if (NR == 1) { a[2] = a[1] }
              printf "%.6f %.6f %.6f\n", q(0.10), q(0.50), q(0.90) }'
}

add_count() { # FILE SENT RECEIVED
    local s r
    read -r s r <"$1"
    echo "$((s + $2)) $((r + $3))" >"$1"
}

# lping's total sent and received over its summary records.
lping_counts() { # OUT
    jq -rs '[.[] | select(.type == "summary" and .window == "total")] |
        "\(map(.sent) | add // 0) \(map(.received) | add // 0)"' "$1"
}
# ping's sent and received from its statistics lines.
ping_counts() { # OUT
    local sent recv
    sent=$(grep -oE '[0-9]+ packets transmitted' "$1" | awk '{print $1}')
    recv=$(grep -oE '[0-9]+ received' "$1" | awk '{print $1}')
    echo "${sent:-0} ${recv:-0}"
}
# Per reply "stamp_s seq rtt_ms"; stamp_s is the receive time in seconds since the epoch
# (lping: the kernel stamp of the record's ts; ping -D: the time it printed the line).
lping_recs() { # OUT
    jq -r "$JQ_SECS"' select(.type == "reply" and (.dup | not)) | "\(.ts | secs) \(.seq) \(.rtt_ms)"' "$1"
}
ping_recs() { # OUT (of ping -D)
    sed -nE '/DUP!/d; s/^\[([0-9.]+)\] .*icmp_seq=([0-9]+) .*time=([0-9.]+) ms.*/\1 \2 \3/p' "$1"
}
# Achieved interval in ms: least-squares slope of the reply stamps over the sequence numbers
# (steadier than first-to-last, which hangs on two single stamps).
recs_interval() { # RECS
    awk 'NR == 1 { t0 = $1 } { x = $2; y = $1 - t0; n++; sx += x; sy += y; sxx += x * x; sxy += x * y }
         END { d = n * sxx - sx * sx
               if (n > 1 && d > 0) printf "%.3f\n", (n * sxy - sx * sy) / d * 1000; else print "nan" }' "$1"
}

declare -A PING_KIND

# --- 1a. concurrent ---
log "accuracy (concurrent): calibrating the interval ping keeps at -i $CONC_IVL ($CALIB_N probes)"
ping_range "$NS_A" closed
rc=0
ip netns exec "$NS_A" ping -n -D -c "$CALIB_N" -i "$CONC_IVL" -W 1 "$PEER" >"$WORK/calib.out" 2>&1 || rc=$?
[[ $rc -le 1 ]] || { cat "$WORK/calib.out" >&2; die "ping calibration failed ($rc)"; }
ping_recs "$WORK/calib.out" >"$WORK/calib.recs"
CALIB_MS=$(recs_interval "$WORK/calib.recs")
[[ $CALIB_MS != nan ]] || die "ping calibration gave no interval"
CONC_LPING_IVL=$(calc "%.6f" "$CALIB_MS / 1000")
log "  ping -i $CONC_IVL keeps $CALIB_MS ms; lping gets -i $CONC_LPING_IVL"

for kind in raw dgram; do
    for tool in cping clping; do
        : >"$WORK/$tool-$kind.rtt"
        : >"$WORK/$tool-$kind.ivl"
        echo "0 0" >"$WORK/$tool-$kind.count"
    done
    : >"$WORK/conc-$kind.rounds"
    : >"$WORK/conc-$kind.gaps"
done

# One concurrent run: ping and lping in the background, then waited for. Which one starts
# first alternates between rounds; the second starts half an interval later, so that the two
# tools' probes interleave instead of leaving together (a probe right behind another finds the
# path warm or busy). The paces differ by a few µs, so the phase drifts a little over a run: the
# report says how many lping probes went out within 1 ms of a ping probe.
run_concurrent() { # KIND ROUND
    local kind=$1 r=$2 p=$WORK/cping-$1-$2 l=$WORK/clping-$1-$2 ppid lpid prc=0 lrc=0
    local half
    half=$(calc "%.4f" "$CONC_LPING_IVL / 2")
    local ping_cmd=(ping -n -D -c "$N" -i "$CONC_IVL" -W 1 "$PEER")
    local lping_cmd=("$LPING" --socket "$kind" -c "$N" -i "$CONC_LPING_IVL" -W 1 "$PEER")
    if ((r % 2)); then
        timed "$NS_A" "$p.out" "$p.err" "$p.time" "${ping_cmd[@]}" & ppid=$!
        sleep "$half"
        timed "$NS_A" "$l.out" "$l.err" "$l.time" "${lping_cmd[@]}" & lpid=$!
    else
        timed "$NS_A" "$l.out" "$l.err" "$l.time" "${lping_cmd[@]}" & lpid=$!
        sleep "$half"
        timed "$NS_A" "$p.out" "$p.err" "$p.time" "${ping_cmd[@]}" & ppid=$!
    fi
    wait "$ppid" || prc=$?
    wait "$lpid" || lrc=$?
    [[ $prc -le 1 ]] || { cat "$p.err" >&2; die "concurrent ping failed ($prc)"; }
    [[ $lrc -le 1 ]] || { cat "$l.err" >&2; die "concurrent lping --socket $kind failed ($lrc)"; }

    ping_recs "$p.out" >"$p.recs"
    lping_recs "$l.out" >"$l.recs"
    awk '{ print $3 }' "$p.recs" >>"$WORK/cping-$kind.rtt"
    awk '{ print $3 }' "$l.recs" >>"$WORK/clping-$kind.rtt"
    # shellcheck disable=SC2046
    add_count "$WORK/cping-$kind.count" $(ping_counts "$p.out")
    # shellcheck disable=SC2046
    add_count "$WORK/clping-$kind.count" $(lping_counts "$l.out")
    local pivl livl pmed lmed
    pivl=$(recs_interval "$p.recs")
    livl=$(recs_interval "$l.recs")
    echo "$pivl" >>"$WORK/cping-$kind.ivl"
    echo "$livl" >>"$WORK/clping-$kind.ivl"
    pmed=$(awk '{ print $3 }' "$p.recs" | quantiles | awk '{ print $2 }')
    lmed=$(awk '{ print $3 }' "$l.recs" | quantiles | awk '{ print $2 }')
    echo "$r $lmed $pmed $(ratio "$lmed" "$pmed")" >>"$WORK/conc-$kind.rounds"
    # For each lping probe, the distance (ms) from its send to the nearest ping send; a send is
    # the receive stamp minus the RTT. Near 0 the two probes may queue behind each other.
    {
        awk '{ printf "%.7f P\n", $1 - $3 / 1000 }' "$p.recs"
        awk '{ printf "%.7f L\n", $1 - $3 / 1000 }' "$l.recs"
    } | sort -g | awk '{ t[NR] = $1; k[NR] = $2 }
        END {
            last = ""; for (i = 1; i <= NR; i++) { if (k[i] == "P") last = t[i]; else prev[i] = last }
            next_ = ""; for (i = NR; i >= 1; i--) {
                if (k[i] == "P") { next_ = t[i]; continue }
                d = -1
                if (prev[i] != "") d = t[i] - prev[i]
                if (next_ != "" && (d < 0 || next_ - t[i] < d)) d = next_ - t[i]
                if (d >= 0) printf "%.3f\n", d * 1000
            }
        }' >>"$WORK/conc-$kind.gaps"
    log "  round $r, $kind: lping median $lmed ms, ping $pmed ms; achieved interval lping $livl ms, ping $pivl ms"
}

log "accuracy (concurrent): $ROUNDS round(s), ping -i $CONC_IVL and lping -i $CONC_LPING_IVL, $N probes each, $NS_A -> $PEER"
for ((r = 1; r <= ROUNDS; r++)); do
    for kind in raw dgram; do
        if [[ $kind == raw ]]; then ping_range "$NS_A" closed; else ping_range "$NS_A" open; fi
        [[ -n ${PING_KIND[$kind]:-} ]] || PING_KIND[$kind]=$(ping_socket_kind)
        run_concurrent "$kind" "$r"
    done
done
ping_range "$NS_A" closed

declare -A Q10 Q50 Q90 CNT IVL ROUND_RATIOS NEAR
for kind in raw dgram; do
    for tool in cping clping; do
        read -r "Q10[$tool-$kind]" "Q50[$tool-$kind]" "Q90[$tool-$kind]" < <(quantiles <"$WORK/$tool-$kind.rtt")
        CNT[$tool-$kind]=$(awk '{printf "%d/%d", $2, $1}' "$WORK/$tool-$kind.count")
        IVL[$tool-$kind]=$(awk '$1 != "nan" { s += $1; n++ } END { if (n) printf "%.2f", s / n; else print "n/a" }' "$WORK/$tool-$kind.ivl")
    done
    ROUND_RATIOS[$kind]=$(awk '{ printf "%s%s / %s (%s)", (NR > 1 ? ", " : ""), $2, $3, $4 }' "$WORK/conc-$kind.rounds")
    NEAR[$kind]=$(awk '{ n++; if ($1 < 1) c++ } END { if (n) printf "%.1f %%", 100 * c / n; else print "n/a" }' "$WORK/conc-$kind.gaps")
done

# --- 1s. sequential (SEQ=1) ---
# iputils ping; sets PING_IVL to the interval it achieved (its "time" / (sent - 1), seconds).
run_ping() { # KIND ROUND
    local kind=$1 r=$2 out=$WORK/ping-$1-$2.out rc=0
    timed "$NS_A" "$out" "$out.err" "$out.time" ping -n -c "$N" -i 0.01 -W 1 "$PEER" || rc=$?
    [[ $rc -le 1 ]] || { cat "$out.err" >&2; die "ping failed ($rc)"; }
    grep -v 'DUP!' "$out" | grep -o 'time=[0-9.]*' | cut -d= -f2 >>"$WORK/ping-$kind.rtt"
    local sent recv span
    read -r sent recv < <(ping_counts "$out")
    span=$(grep -oE 'time [0-9]+ms' "$out" | awk '{print $2 + 0}')
    add_count "$WORK/ping-$kind.count" "$sent" "$recv"
    PING_IVL=$(awk -v t="${span:-0}" -v n="$sent" 'BEGIN { printf "%.6f\n", (n > 1 ? t / 1000 / (n - 1) : 0.01) }')
    calc "%.3f" "$PING_IVL * 1000" >>"$WORK/ping-$kind.ivl"
}

# lping; the achieved interval is the span of the reply stamps / (replies - 1).
run_lping_acc() { # SERIES KIND ROUND INTERVAL
    local series=$1 kind=$2 r=$3 ivl=$4 out=$WORK/$1-$2-$3.out rc=0
    timed "$NS_A" "$out" "$out.err" "$out.time" "$LPING" --socket "$kind" -c "$N" -i "$ivl" -W 1 "$PEER" || rc=$?
    [[ $rc -le 1 ]] || { cat "$out.err" >&2; die "lping --socket $kind failed ($rc)"; }
    lping_recs "$out" >"$out.recs"
    awk '{ print $3 }' "$out.recs" >>"$WORK/$series-$kind.rtt"
    recs_interval "$out.recs" >>"$WORK/$series-$kind.ivl"
    # shellcheck disable=SC2046
    add_count "$WORK/$series-$kind.count" $(lping_counts "$out")
}

if [[ $SEQ == 1 ]]; then
    log "accuracy (sequential): $SEQ_ROUNDS round(s) of $N probes at -i 0.01 per tool and socket kind"
    for kind in raw dgram; do
        for series in ping lping paced; do
            : >"$WORK/$series-$kind.rtt"
            : >"$WORK/$series-$kind.ivl"
            echo "0 0" >"$WORK/$series-$kind.count"
        done
    done
    for ((r = 1; r <= SEQ_ROUNDS; r++)); do
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
            if [[ $PACED == 1 ]]; then run_lping_acc paced "$kind" "$r" "$PING_IVL"; fi
            log "  round $r, $kind: done (ping achieved $(calc "%.2f" "$PING_IVL * 1000") ms)"
        done
    done
    ping_range "$NS_A" closed
    declare -A MED
    for kind in raw dgram; do
        for series in ping lping paced; do
            read -r _ "MED[$series-$kind]" _ < <(quantiles <"$WORK/$series-$kind.rtt")
            CNT[$series-$kind]=$(awk '{printf "%d/%d", $2, $1}' "$WORK/$series-$kind.count")
            IVL[$series-$kind]=$(awk '$1 != "nan" { s += $1; n++ } END { if (n) printf "%.2f", s / n; else print "n/a" }' "$WORK/$series-$kind.ivl")
        done
    done
fi

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

declare -A L_WALL L_CPU L_SENT L_RECV L_OK L_USER L_SYS B_CPU B_USER B_SYS B_RECV
[[ -z $BASE || -x $BASE ]] || die "BASE=$BASE is not an executable"
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
    if [[ -n $BASE ]]; then
        rc=0
        timed "$NS_L" "$out.base.out" "$out.base.err" "$out.base.time" "$BASE" --socket "$kind" -q -c "$SCALE_COUNT" -i 1 -f "$TFILE" || rc=$?
        [[ $rc -le 1 ]] || { tail "$out.base.err" >&2; die "base lping scale ($kind) failed ($rc)"; }
        read -r _ B_USER[$kind] B_SYS[$kind] <"$out.base.time"
        B_CPU[$kind]=$(calc "%.3f" "${B_USER[$kind]} + ${B_SYS[$kind]}")
        B_RECV[$kind]=$(jq -rs '[.[] | select(.type == "summary" and .window == "total")] | map(.received) | add // 0' "$out.base.out")
        log "  base lping $kind: cpu ${B_CPU[$kind]} s, ${B_RECV[$kind]} received"
    fi
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
    echo "Command: \`$CMDLINE\` (all knobs shown with their effective values); took $(($(date +%s) - T0)) s."
    echo
    echo "lping at commit $GIT_REV$GIT_DIRTY ($LPING_VERSION); $(ping -V 2>&1 | head -1); $(fping -v 2>&1 | head -1);"
    echo "kernel $(uname -r), $(nproc) CPU(s)."
    echo
    echo "RTT clocks: lping from the kernel's software transmit stamp to the kernel receive stamp; iputils ping"
    echo "from a user-space clock read before sendmsg() to the kernel receive stamp."
    echo
    echo "| Test | Measure | lping | reference | lping/ref | Notes |"
    echo "|---|---|---|---|---|---|"
    for kind in raw dgram; do
        t="1. accuracy, concurrent, --socket $kind"
        echo "| $t | median RTT (ms) | ${Q50[clping-$kind]} | ${Q50[cping-$kind]} (ping, ${PING_KIND[$kind]} socket) | $(ratio "${Q50[clping-$kind]}" "${Q50[cping-$kind]}") | started together, same netns, same veth peer; $ROUNDS rounds × $N probes per tool, pooled; per round, median lping / ping (ratio): ${ROUND_RATIOS[$kind]} |"
        echo "| $t | p10 / p90 RTT (ms) | ${Q10[clping-$kind]} / ${Q90[clping-$kind]} | ${Q10[cping-$kind]} / ${Q90[cping-$kind]} | $(ratio "${Q10[clping-$kind]}" "${Q10[cping-$kind]}") / $(ratio "${Q90[clping-$kind]}" "${Q90[cping-$kind]}") | per-reply RTTs, all rounds pooled (ping prints µs, lping ns) |"
        echo "| $t | replies/sent | ${CNT[clping-$kind]} | ${CNT[cping-$kind]} | | \`ping -n -D -c $N -i $CONC_IVL -W 1\` (achieved ${IVL[cping-$kind]} ms) and \`lping --socket $kind -c $N -i $CONC_LPING_IVL -W 1\` (achieved ${IVL[clping-$kind]} ms); lping probes sent within 1 ms of a ping probe: ${NEAR[$kind]} |"
    done
    if [[ $SEQ == 1 ]]; then
        for kind in raw dgram; do
            t="1s. accuracy, sequential, --socket $kind"
            echo "| $t | median RTT (ms), both \`-i 0.01\`, one after the other | ${MED[lping-$kind]} | ${MED[ping-$kind]} (ping, ${PING_KIND[$kind]} socket) | $(ratio "${MED[lping-$kind]}" "${MED[ping-$kind]}") | veth, $SEQ_ROUNDS×$N probes each; replies/sent lping ${CNT[lping-$kind]}, ping ${CNT[ping-$kind]}; achieved interval lping ${IVL[lping-$kind]} ms, ping ${IVL[ping-$kind]} ms; not the same moment, so not the same conditions |"
            if [[ $PACED == 1 ]]; then
                echo "| $t | median RTT (ms), lping paced like ping, after it | ${MED[paced-$kind]} | ${MED[ping-$kind]} | $(ratio "${MED[paced-$kind]}" "${MED[ping-$kind]}") | control: lping \`-i\` = ping's achieved interval (lping achieved ${IVL[paced-$kind]} ms); replies/sent ${CNT[paced-$kind]} |"
            fi
        done
    fi
    for kind in "${scale_kinds[@]}"; do
        echo "| 2. scale, --socket $kind | CPU user+sys (s) | ${L_CPU[$kind]} (${L_USER[$kind]}+${L_SYS[$kind]}) | $F_CPU ($F_USER+$F_SYS) (fping, raw) | $(ratio "${L_CPU[$kind]}" "$F_CPU") | $TARGETS targets × $SCALE_COUNT in fresh netns lo |"
        if [[ -n $BASE ]]; then
            echo "| 2. scale, --socket $kind | CPU user+sys (s), vs base | ${L_CPU[$kind]} | ${B_CPU[$kind]} (${B_USER[$kind]}+${B_SYS[$kind]}) ($BASE_NOTE) | $(ratio "${L_CPU[$kind]}" "${B_CPU[$kind]}") | the same test right after, same run; base received ${B_RECV[$kind]} |"
        fi
        echo "| 2. scale, --socket $kind | wall (s) | ${L_WALL[$kind]} | $F_WALL | $(ratio "${L_WALL[$kind]}" "$F_WALL") | \`lping -q -c $SCALE_COUNT -i 1 -f FILE\` vs \`$FPING_FLAGS\` |"
        echo "| 2. scale, --socket $kind | probes received/sent | ${L_RECV[$kind]}/${L_SENT[$kind]} | $F_RECV/$F_SENT | | expected $EXPECT; targets with $SCALE_COUNT/$SCALE_COUNT: lping $(ok "${L_OK[$kind]}" "$TARGETS"), fping $(ok "$F_OK" "$TARGETS") |"
    done
    echo "| 3. schedule | first→last reply ts (s) | $S_SPAN | $S_IDEAL_SPAN (ideal) | | deviation $S_SPAN_DEV % of $S_NOMINAL s, $(verdict "$S_SPAN_DEV"); $S_REPLIES/$SCHED_N replies; \`lping --socket raw -c $SCHED_N -i 10ms $PEER\` over the veth |"
    echo "| 3. schedule | process wall (s) | $S_WALL | $S_NOMINAL (nominal) | | deviation $S_WALL_DEV % of $S_NOMINAL s, $(verdict "$S_WALL_DEV"); ends $S_WALL_OVER ms after the last send was due, incl. exec and the last RTT |"
    echo "| 3. schedule | each reply ts vs 10 ms grid (ms) | mean $S_MEANDEV, p99 $S_P99DEV, max $S_MAXDEV | 0 | | grid anchored at the first reply: per-probe send lateness (jitter, not drift) |"
} | tee "$RESULTS"
