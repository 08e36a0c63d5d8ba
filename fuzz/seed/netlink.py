# Real rtnetlink datagrams from the kernel for the netlink fuzz seeds: the commands given
# (ip ...) are run first, then every dump lwatch and lpassive make is read, then the
# notifications of a few more changes. Usage: netlink.py OUTDIR [COMMAND...]
import os, socket, struct, subprocess, sys, time
out = sys.argv[1]; os.makedirs(out, exist_ok=True)
NETLINK_ROUTE = 0
def dump(kind, family=0, hdrlen=0, body=None):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    s.settimeout(2)
    payload = body if body is not None else struct.pack('B', family) + b'\0' * (hdrlen - 1)
    msg = struct.pack('=IHHII', 16 + len(payload), kind, 0x301, 1, 0) + payload
    s.send(msg)
    got = []
    while True:
        d = s.recv(65536)
        got.append(d)
        at, end = 0, False
        while at + 16 <= len(d):
            ln, kind = struct.unpack_from('=IH', d, at)
            if kind in (2, 3):  # NLMSG_ERROR / NLMSG_DONE
                end = True
            if ln < 16:
                break
            at += (ln + 3) & ~3
        if end:
            break
    return got
seeds = []
for cmd in sys.argv[2:]:
    r = subprocess.run(cmd, shell=True, capture_output=True)
    if r.returncode: print(cmd, r.stderr.decode().strip())
seeds += dump(18, 0, 16)          # RTM_GETLINK
seeds += dump(22, 0, 8)           # RTM_GETADDR
seeds += dump(26, 2, 12)          # RTM_GETROUTE v4
seeds += dump(26, 10, 12)         # RTM_GETROUTE v6
seeds += dump(30, 0, 12)          # RTM_GETNEIGH
seeds += dump(34, 0, 12)          # RTM_GETRULE
seeds += dump(106, 0, 8)          # RTM_GETNEXTHOP
seeds += dump(94, 0, 12, struct.pack('=BBHII', 0, 0, 0, 0, 1))  # RTM_GETSTATS, IFLA_STATS_LINK_64
# notifications of changes made now
n = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
for g in (1, 3, 5, 7, 8, 9, 11, 19, 32):
    n.setsockopt(270, 1, g)       # SOL_NETLINK, NETLINK_ADD_MEMBERSHIP
n.bind((0, 0))
n.setblocking(False)
subprocess.run('ip link set vb mtu 1300; ip route del 10.9.7.0/24; ip addr add 10.9.9.1/32 dev va', shell=True)
time.sleep(0.3)
while True:
    try:
        seeds.append(n.recv(65536))
    except BlockingIOError:
        break
seen = set(); i = 0
for d in seeds:
    if d in seen or len(d) > 8192:
        continue
    seen.add(d); i += 1
    open(f'{out}/real-{i:03}', 'wb').write(d)
print(i, 'netlink seeds')
