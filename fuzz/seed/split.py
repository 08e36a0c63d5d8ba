# Splits captured packets (CAPS/wire.pcap, CAPS/netlink/*) into fuzz seeds per target
# (deduplicated, at most 40 each, none over 4 KiB). Usage: split.py CAPS CORPUS
import os, struct, sys, time
caps, corpus = sys.argv[1], sys.argv[2]
def pcap(path):
    d = open(path, 'rb').read()
    link = struct.unpack_from('<I', d, 20)[0]
    at = 24
    while at + 16 <= len(d):
        incl = struct.unpack_from('<I', d, at + 8)[0]
        yield link, d[at + 16: at + 16 + incl]
        at += 16 + incl
seeds = {}
def add(target, data, limit=40):
    s = seeds.setdefault(target, [])
    if data not in s and len(s) < limit and len(data) <= 4096:
        s.append(data)
for _link, frame in pcap(f'{caps}/wire.pcap'):
    ether = struct.unpack_from('!H', frame, 12)[0]
    ip = frame[14:]
    if ether == 0x0800:
        v6, hl, proto = False, (ip[0] & 15) * 4, ip[9]
    elif ether == 0x86dd:
        v6, hl, proto = True, 40, ip[6]
    else:
        continue
    payload = ip[hl:]
    add('wire_ip_tcp', ip)
    if proto in (1, 58):
        add('wire_icmp', payload)
        t = payload[0]
        if (not v6 and t in (3, 11)) or (v6 and t in (1, 3)):
            add('wire_icmp', payload[8:])       # the quoted packet
        elif len(payload) > 8:
            add('wire_probe', payload[8:])      # echo data: lping's mark
    elif proto == 17:
        sport, dport = struct.unpack_from('!HH', payload)
        data = payload[8:]
        if 862 in (sport, dport) or 20000 <= sport <= 20003 or 20000 <= dport <= 20003:
            add('wire_twamp', data)
            if len(data) > 44:
                add('wire_stamp_tlv', data[44:])    # the TLVs after the base STAMP packet
            # ntp target: timestamp, a reference clock (now), the error estimate
            if len(data) >= 14:
                now = int(time.time() * 1e9)
                add('ntp', data[4:12] + now.to_bytes(8, 'big') + data[12:14])
        else:
            add('wire_probe', data)
    elif proto == 6:
        add('wire_ip_tcp', payload)
        sport, dport = struct.unpack_from('!HH', payload)
        data = payload[(payload[12] >> 4) * 4:]
        if 863 in (sport, dport) and data:
            add('twamp_control', data)              # one TWAMP-Control segment's messages
for f in sorted(os.listdir(f'{caps}/netlink')):
    add('netlink', open(f'{caps}/netlink/{f}', 'rb').read())
for target, items in seeds.items():
    d = f'{corpus}/{target}'
    os.makedirs(d, exist_ok=True)
    for i, data in enumerate(items):
        open(f'{d}/real-{i:03}', 'wb').write(data)
    print(target, len(items), sum(map(len, items)), 'bytes')
