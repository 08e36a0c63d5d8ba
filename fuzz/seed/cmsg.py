# Real recvmsg control messages (Python's recvmsg hands them decoded into level, type, data),
# laid out again as the 64-bit Linux cmsghdr buffers recvmmsg fills, for the cmsg fuzz seeds.
import socket, struct, os, sys
out = sys.argv[1]; os.makedirs(out, exist_ok=True)
SO_TIMESTAMPNS = 35; IP_PKTINFO = 8; IP_RECVTTL = 12; IP_RECVTOS = 13
IPV6_RECVPKTINFO = 49; IPV6_RECVHOPLIMIT = 51; IPV6_RECVTCLASS = 66
def layout(anc):
    b = b''
    for level, kind, data in anc:
        n = 16 + len(data)
        b += struct.pack('=Qii', n, level, kind) + data + b'\0' * ((-n) % 8)
    return b
i = 0
for fam, addr, opts in [
    (socket.AF_INET, '127.0.0.1', [(socket.SOL_SOCKET, SO_TIMESTAMPNS), (0, IP_PKTINFO), (0, IP_RECVTTL), (0, IP_RECVTOS)]),
    (socket.AF_INET6, '::1', [(socket.SOL_SOCKET, SO_TIMESTAMPNS), (41, IPV6_RECVPKTINFO), (41, IPV6_RECVHOPLIMIT), (41, IPV6_RECVTCLASS)]),
    (socket.AF_INET6, '::ffff:127.0.0.1', [(socket.SOL_SOCKET, SO_TIMESTAMPNS), (41, IPV6_RECVPKTINFO), (0, IP_RECVTTL), (0, IP_RECVTOS), (41, IPV6_RECVTCLASS)]),
]:
    rx = socket.socket(fam, socket.SOCK_DGRAM)
    rx.bind((addr if fam == socket.AF_INET else '::', 0))
    for lvl, o in opts:
        rx.setsockopt(lvl, o, 1)
    tx = socket.socket(fam, socket.SOCK_DGRAM)
    for tos in (0, 0xb8):
        if fam == socket.AF_INET: tx.setsockopt(0, 1, tos)
        else: tx.setsockopt(41, 67, tos)
        tx.sendto(b'x' * 20, (addr, rx.getsockname()[1]))
        data, anc, flags, src = rx.recvmsg(64, 512)
        i += 1
        open(f'{out}/real-{i:03}', 'wb').write(layout(anc))
        # the sender's address as recvmmsg leaves it in msg_name (a sockaddr_in6 buffer)
        i += 1
        if fam == socket.AF_INET:
            sa = struct.pack('=H', socket.AF_INET) + struct.pack('!H', src[1]) + socket.inet_pton(socket.AF_INET, src[0]) + b'\0' * 8
        else:
            sa = struct.pack('=H', socket.AF_INET6) + struct.pack('!HI', src[1], 0) + socket.inet_pton(socket.AF_INET6, src[0]) + struct.pack('=I', 0)
        open(f'{out}/real-{i:03}', 'wb').write(sa)
print(i, 'cmsg seeds')
