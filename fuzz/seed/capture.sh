#!/usr/bin/env bash
# Rebuilds the seed corpora fuzz/corpus/<target>/ from real traffic: the tools' packets (STAMP
# with TLVs, a TWAMP-Control session) in
# namespaces of their own (a host, a router, a host; captured with tshark), real rtnetlink
# dumps (netlink.py), real recvmsg control messages over loopback (cmsg.py) and the tools'
# own path records (correlate_input). Run as root from anywhere after `cargo build`; only
# traffic inside the namespaces it creates.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=$ROOT/target/debug
SEED=$ROOT/fuzz/seed
CORPUS=$ROOT/fuzz/corpus
OUT=$(mktemp -d)
A=lopa-fz-a$$ R=lopa-fz-r$$ H=lopa-fz-b$$ N=lopa-fz-nl$$
cleanup() {
    for n in $A $R $H $N; do ip netns del $n 2>/dev/null; done
    jobs -p | xargs -r kill 2>/dev/null
    rm -rf "$OUT"
}
trap cleanup EXIT
for n in $A $R $H; do ip netns add $n; ip -n $n link set lo up; done
ip link add va netns $A type veth peer name ra netns $R
ip link add vb netns $H type veth peer name rb netns $R
ip -n $A addr add 10.9.1.1/24 dev va; ip -n $A addr add fd09:1::1/64 dev va nodad
ip -n $R addr add 10.9.1.254/24 dev ra; ip -n $R addr add fd09:1::fe/64 dev ra nodad
ip -n $R addr add 10.9.2.254/24 dev rb; ip -n $R addr add fd09:2::fe/64 dev rb nodad
ip -n $H addr add 10.9.2.2/24 dev vb; ip -n $H addr add fd09:2::2/64 dev vb nodad
for n in $A $R $H; do for l in va ra rb vb; do ip -n $n link set $l up 2>/dev/null; done; done
ip -n $A route add default via 10.9.1.254; ip -n $A -6 route add default via fd09:1::fe
ip -n $H route add default via 10.9.2.254; ip -n $H -6 route add default via fd09:2::fe
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip netns exec $A sysctl -qw net.ipv4.ping_group_range="0 2147483647"
sleep 1
ip netns exec $H "$B/lreflect" --twamp '[::]:862' --stats-every 0 >/dev/null 2>&1 &
ip netns exec $H "$B/lreflect" --twamp-control '[::]:863' --twamp-ports 20000-20003 --stats-every 0 \
    >/dev/null 2>&1 &
ip netns exec $H python3 -c "
import socket
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('::', 80)); s.listen(64)
while True:
    c, _ = s.accept(); c.close()" &
ip netns exec $A tshark -q -i va -F pcap -w "$OUT/wire.pcap" >/dev/null 2>&1 &
TS=$!
sleep 2
X="ip netns exec $A"
$X "$B/lping" -c 2 -i 0.1 10.9.2.2 fd09:2::2 > /dev/null
$X "$B/lping" --socket raw -c 2 -i 0.1 10.9.2.2 fd09:2::2 > /dev/null
$X ping -c 1 -t 1 10.9.2.2 > /dev/null; $X ping -6 -c 1 -t 1 fd09:2::2 > /dev/null
$X "$B/ludp" -c 2 -i 0.1 10.9.2.2:8081 '[fd09:2::2]:8081' > /dev/null
$X "$B/ludp" -c 1 10.9.2.2:9999 '[fd09:2::2]:9999' > /dev/null 2>&1
$X "$B/ludp" --trace-only --flows 2 -W 0.3 10.9.2.2:8081 > /dev/null 2>&1
$X "$B/ltwamp" -c 2 -i 0.1 10.9.2.2:862 '[fd09:2::2]:862' > /dev/null 2>&1
# STAMP TLVs (RFC 8972) of every kind, and a whole TWAMP-Control session (both directions).
$X "$B/ltwamp" --tlv cos,timestamp,direct,location -c 2 -i 0.1 10.9.2.2:862 '[fd09:2::2]:862' \
    > /dev/null 2>&1
$X "$B/ltwamp" --control --flows 2 --dscp EF,BE -c 2 -i 0.1 10.9.2.2:863 > /dev/null 2>&1
$X "$B/ltcp" -c 2 -i 0.1 10.9.2.2:80 '[fd09:2::2]:80' 10.9.2.2:81 > /dev/null 2>&1
$X "$B/ltcp" --syn -c 2 -i 0.1 10.9.2.2:80 '[fd09:2::2]:80' > /dev/null 2>&1
$X "$B/ltcp" --trace-only -W 0.3 10.9.2.2:80 > /dev/null 2>&1
# lcorrelate's input: the probes' own records, plain and gzip-compressed, and an alias file.
C=$CORPUS/correlate_input
rm -rf "$C"; mkdir -p "$C"
$X "$B/ludp" --trace-only --flows 3 -W 0.3 10.9.2.2:8081 > "$C/trace-only.jsonl" 2>/dev/null
$X "$B/ludp" --trace --flows 2 -c 3 -i 0.1 10.9.2.2:8081 > "$C/trace-and-probe.jsonl" 2>/dev/null
$X "$B/ltcp" --trace-only -W 0.3 10.9.2.2:80 > "$C/ltcp-trace.jsonl" 2>/dev/null
$X "$B/lping" --trace -c 2 -i 0.1 10.9.2.2 > "$C/lping-trace.jsonl" 2>/dev/null
gzip -c "$C/trace-and-probe.jsonl" > "$C/trace-and-probe.jsonl.gz"
printf 'r1 10.9.1.254 10.9.2.254  # the router, both sides\nhost-b 10.9.2.2\n' > "$C/aliases.txt"
sleep 1; kill $TS; wait $TS 2>/dev/null
# rtnetlink: dumps of a namespace with addresses, routes (multipath, on a nexthop object),
# a neighbour and a rule, and the notifications of a few changes.
ip netns add $N; ip -n $N link set lo up; ip -n $N link add va type veth peer name vb
ip -n $N link set va up; ip -n $N link set vb up
ip netns exec $N python3 "$SEED/netlink.py" "$OUT/netlink" \
    "ip addr add 10.9.5.1/24 dev va" "ip addr add fd09:5::1/64 dev va nodad" \
    "ip route add 10.9.6.0/24 via 10.9.5.254 metric 5" "ip -6 route add fd09:6::/64 via fd09:5::fe" \
    "ip nexthop add id 7 via 10.9.5.254 dev va" "ip route add 10.9.7.0/24 nhid 7" \
    "ip route add 10.9.8.0/24 nexthop via 10.9.5.254 weight 2 nexthop via 10.9.5.253 weight 1" \
    "ip neigh add 10.9.5.77 lladdr 02:00:00:00:00:77 dev va" \
    "ip rule add from 10.9.5.0/24 table 100 prio 1000"
for t in wire_icmp wire_ip_tcp wire_probe wire_twamp wire_stamp_tlv twamp_control ntp netlink cmsg; do rm -rf "${CORPUS:?}/$t"; done
python3 "$SEED/split.py" "$OUT" "$CORPUS"
ip netns exec $N python3 "$SEED/cmsg.py" "$CORPUS/cmsg"
