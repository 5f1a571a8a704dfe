#!/usr/bin/env python3
"""Writes examples/shop.pcap: a small shop's traffic (web, api, db and the world) for
`bulkhead simulate`, the demo and the end-to-end test. Only the standard library is used, so the
capture is reproducible byte for byte:

    examples/make_shop_capture.py examples/shop.pcap

Every flow is a complete, well-formed conversation (TCP handshake, payload both ways, FIN) so
that nDPI classifies it the way it would live. Addresses are the documentation ranges; the file
is only ever read, never replayed onto a network.
"""
import struct
import sys

WEB = ("02:00:00:00:00:0a", "10.10.0.10")
API = ("02:00:00:00:00:0b", "10.10.0.11")
DB = ("02:00:00:00:00:0c", "10.10.0.12")
GATEWAY_MAC = "02:00:00:00:00:01"  # the world is behind the uplink
RESOLVER = (GATEWAY_MAC, "198.51.100.53")
CDN = (GATEWAY_MAC, "203.0.113.80")


def mac(text):
    return bytes(int(part, 16) for part in text.split(":"))


def ip(text):
    return bytes(int(part) for part in text.split("."))


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src, dst, protocol, payload, ident):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, protocol,
                         0, ip(src), ip(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def l4_checksum(src, dst, protocol, segment):
    pseudo = ip(src) + ip(dst) + struct.pack("!BBH", 0, protocol, len(segment))
    return checksum(pseudo + segment)


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b""):
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    segment = header + payload
    value = l4_checksum(src, dst, 6, segment)
    return segment[:16] + struct.pack("!H", value) + segment[18:]


def udp(src, dst, sport, dport, payload):
    segment = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    value = l4_checksum(src, dst, 17, segment) or 0xFFFF
    return segment[:6] + struct.pack("!H", value) + segment[8:]


class Capture:
    def __init__(self):
        self.packets = []
        self.time = 1_700_000_000.0
        self.ident = 1

    def frame(self, src, dst, protocol, segment):
        self.ident += 1
        packet = ipv4(src[1], dst[1], protocol, segment, self.ident)
        frame = mac(dst[0]) + mac(src[0]) + b"\x08\x00" + packet
        self.time += 0.001
        self.packets.append((self.time, frame))

    def tcp_conversation(self, client, server, sport, dport, exchanges):
        """exchanges: list of (from_client, payload)."""
        c_seq, s_seq = 1000, 5000
        F, S, A, P = 0x01, 0x02, 0x10, 0x08
        self.frame(client, server, 6, tcp(client[1], server[1], sport, dport, c_seq, 0, S))
        self.frame(server, client, 6, tcp(server[1], client[1], dport, sport, s_seq, c_seq + 1, S | A))
        c_seq += 1
        s_seq += 1
        self.frame(client, server, 6, tcp(client[1], server[1], sport, dport, c_seq, s_seq, A))
        for from_client, payload in exchanges:
            if from_client:
                self.frame(client, server, 6,
                           tcp(client[1], server[1], sport, dport, c_seq, s_seq, P | A, payload))
                c_seq += len(payload)
                self.frame(server, client, 6, tcp(server[1], client[1], dport, sport, s_seq, c_seq, A))
            else:
                self.frame(server, client, 6,
                           tcp(server[1], client[1], dport, sport, s_seq, c_seq, P | A, payload))
                s_seq += len(payload)
                self.frame(client, server, 6, tcp(client[1], server[1], sport, dport, c_seq, s_seq, A))
        self.frame(client, server, 6, tcp(client[1], server[1], sport, dport, c_seq, s_seq, F | A))
        self.frame(server, client, 6, tcp(server[1], client[1], dport, sport, s_seq, c_seq + 1, F | A))
        self.frame(client, server, 6, tcp(client[1], server[1], sport, dport, c_seq + 1, s_seq + 1, A))
        self.time += 0.1

    def dns_query(self, client, server, sport, name, txid):
        question = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
        question += b"\0" + struct.pack("!HH", 1, 1)
        query = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + question
        answer = struct.pack("!HHHHHH", txid, 0x8180, 1, 1, 0, 0) + question
        answer += struct.pack("!HHHIH4s", 0xC00C, 1, 1, 300, 4, ip("192.0.2.7"))
        self.frame(client, server, 17, udp(client[1], server[1], sport, 53, query))
        self.frame(server, client, 17, udp(server[1], client[1], 53, sport, answer))
        self.time += 0.1

    def write(self, path):
        with open(path, "wb") as out:
            out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for when, frame in self.packets:
                seconds = int(when)
                micros = int(round((when - seconds) * 1_000_000))
                out.write(struct.pack("<IIII", seconds, micros, len(frame), len(frame)))
                out.write(frame)


def http_get(host, path="/"):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: shop-web/1.0\r\nAccept: */*\r\n\r\n"
            % (path, host)).encode()


HTTP_OK = (b"HTTP/1.1 200 OK\r\nServer: shop-api\r\nContent-Type: application/json\r\n"
           b"Content-Length: 13\r\n\r\n{\"items\": []}")


def main(path):
    capture = Capture()
    # 1. web -> api:8080, HTTP to the allowed host: allowed by shop-api/ingress/0.
    capture.tcp_conversation(WEB, API, 40001, 8080,
                             [(True, http_get("api.shop.local", "/items")), (False, HTTP_OK)])
    # 2. web -> api:9090, HTTP on a port no rule opens: denied at L4.
    capture.tcp_conversation(WEB, API, 40002, 9090,
                             [(True, http_get("api.shop.local", "/admin")), (False, HTTP_OK)])
    # 3. web -> api:8080 speaking SSH: passes while classified, then cut (HTTP only there).
    capture.tcp_conversation(WEB, API, 40003, 8080,
                             [(False, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
                              (True, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")])
    # 4. api -> db:5432, PostgreSQL: allowed both by api's egress and db's ingress.
    startup = b"user\0shop\0database\0shop\0\0"
    startup = struct.pack("!II", 8 + len(startup), 196608) + startup
    capture.tcp_conversation(API, DB, 40004, 5432,
                             [(True, startup), (False, b"R\0\0\0\x08\0\0\0\0")])
    # 5. api -> world DNS for an allowed name; 6. for a name no rule allows.
    capture.dns_query(API, RESOLVER, 40005, "www.example.com", 0x1234)
    capture.dns_query(API, RESOLVER, 40006, "exfil.attacker.test", 0x1235)
    # 7. web -> world:80: web's policy is in monitor mode, so this is only reported.
    capture.tcp_conversation(WEB, CDN, 40007, 80,
                             [(True, http_get("cdn.example.org", "/app.js")), (False, HTTP_OK)])
    # 8. db -> api:8080: api only accepts web there.
    capture.tcp_conversation(DB, API, 40008, 8080,
                             [(True, http_get("api.shop.local", "/items")), (False, HTTP_OK)])
    capture.write(path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
