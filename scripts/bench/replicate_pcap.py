#!/usr/bin/env python3
"""Concatenates classic pcap captures (Ethernet link type) COPIES times into one file, shifting
the IPv4 source and destination addresses of each copy so that every copy's flows are new flows
(IPv6 and non-IP frames are copied unchanged). Used to give bulkhead and ndpiReader the same
large workload:

    replicate_pcap.py OUT.pcap COPIES IN.pcap...
"""
import struct
import sys


def read_pcap(path):
    data = open(path, "rb").read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1" or magic == b"\x4d\x3c\xb2\xa1":
        endian = "<"
    elif magic == b"\xa1\xb2\xc3\xd4" or magic == b"\xa1\xb2\x3c\x4d":
        endian = ">"
    else:
        return None
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    if struct.unpack(endian + "I", data[20:24])[0] != 1:
        return None
    packets, offset = [], 24
    while offset + 16 <= len(data):
        sec, frac, caplen, wirelen = struct.unpack(endian + "IIII", data[offset:offset + 16])
        frame = data[offset + 16:offset + 16 + caplen]
        if len(frame) < caplen:
            break
        packets.append((sec, frac // 1000 if nano else frac, wirelen, frame))
        offset += 16 + caplen
    return packets


def shift(frame, copy):
    offset = 12
    ether = frame[offset:offset + 2]
    while ether in (b"\x81\x00", b"\x88\xa8") and len(frame) >= offset + 6:
        offset += 4
        ether = frame[offset:offset + 2]
    ip = offset + 2
    if ether != b"\x08\x00" or len(frame) < ip + 20:
        return frame
    body = bytearray(frame)
    for field in (ip + 12, ip + 16):  # second octet of each address, e.g. 10.X.0.1
        body[field + 1] = (body[field + 1] + copy) & 0xFF
        body[field + 2] = (body[field + 2] + (copy >> 8)) & 0xFF
    return bytes(body)


def main(out_path, copies, inputs):
    captures = [p for p in (read_pcap(path) for path in inputs) if p]
    with open(out_path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        second = 1_700_000_000
        total = 0
        for copy in range(copies):
            for packets in captures:
                for _, micros, wirelen, frame in packets:
                    out.write(struct.pack("<IIII", second, micros, len(frame), wirelen))
                    out.write(shift(frame, copy))
                    total += 1
                second += 1
    print(total)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
