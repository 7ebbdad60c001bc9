#!/usr/bin/python3
"""Misbehaving servers of the test world (stdlib only, one asyncio loop).

Usage: fault-server.py STATE_DIR/faults/faults.json

  servfail_dns  IP:53 UDP+TCP: answers every query with SERVFAIL (same id,
                question echoed), so a client sees a definite server failure.
  silent_dns    IP:53 UDP+TCP: reads queries and never answers; TCP
                connections are held open until the client gives up.
  stall_https   per host IP:443:
                  mode "stall":      accepts TCP, never reads, never answers
                                     (the TLS handshake never completes)
                  mode "stall-body": completes TLS with the host's cert, reads
                                     the request, sends the response headers
                                     (Content-Length of the full policy) and
                                     the first line of the body, then stalls.

Prints "READY" once every socket is bound, then one line per DNS query
("query servfail udp NAME TYPE") and per policy-host connection ("connect
stall HOST"), so tests can count a client's attempts (worldlib.fault_hits).
Nothing here ever connects out.
"""
import asyncio
import json
import ssl
import struct
import sys


TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 15: "MX", 16: "TXT", 28: "AAAA", 52: "TLSA"}


def log_query(kind, proto, query):
    """One line per query: "query KIND PROTO NAME TYPE" (lower-case name)."""
    labels, i = [], 12
    try:
        while query[i] != 0 and not query[i] & 0xC0:
            labels.append(query[i + 1:i + 1 + query[i]].decode("ascii", "replace"))
            i += 1 + query[i]
        qtype = struct.unpack("!H", query[i + 1:i + 3])[0]
    except (IndexError, struct.error):
        print("query %s %s (malformed)" % (kind, proto), flush=True)
        return
    print("query %s %s %s %s" % (kind, proto, ".".join(labels).lower() or ".",
                                 TYPES.get(qtype, str(qtype))), flush=True)


def servfail(query):
    """A SERVFAIL reply to a DNS query message, or None if it is too short."""
    if len(query) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    # Echo the question section (walk QNAME labels of the first question).
    end = 12
    if qdcount >= 1:
        while end < len(query) and query[end] != 0:
            if query[end] & 0xC0:
                return None
            end += 1 + query[end]
        end += 5                           # zero label + QTYPE + QCLASS
        if end > len(query):
            return None
    rd = flags & 0x0100
    hdr = struct.pack("!HHHHHH", qid, 0x8000 | rd | 0x0080 | 2,
                      1 if qdcount >= 1 else 0, 0, 0, 0)
    return hdr + query[12:end]


class ServfailUDP(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        log_query("servfail", "udp", data)
        reply = servfail(data)
        if reply:
            self.transport.sendto(reply, addr)


class SilentUDP(asyncio.DatagramProtocol):
    def datagram_received(self, data, addr):
        log_query("silent", "udp", data)


async def servfail_tcp(reader, writer):
    try:
        while True:
            ln = struct.unpack("!H", await reader.readexactly(2))[0]
            query = await reader.readexactly(ln)
            log_query("servfail", "tcp", query)
            reply = servfail(query)
            if reply is None:
                break
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


async def drain_forever(reader, writer):
    """Read (and drop) whatever the client sends; never answer."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass
    writer.close()


class Mute(asyncio.Protocol):
    """Accepts the connection and never reads from it nor answers."""

    name = "?"

    def connection_made(self, transport):
        transport.pause_reading()
        self.transport = transport
        print("connect stall %s" % self.name, flush=True)

    def connection_lost(self, exc):
        self.transport = None


def stall_body_handler(host):
    body = host["body"].encode()
    first = body.split(b"\n", 1)[0] + b"\n"

    async def handle(reader, writer):
        print("connect stall-body %s" % host["name"], flush=True)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s"
                         % (host["content_type"].encode(), len(body), first))
            await writer.drain()
            await drain_forever(reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                ssl.SSLError):
            writer.close()
    return handle


async def main(cfgfile):
    with open(cfgfile) as f:
        cfg = json.load(f)
    loop = asyncio.get_running_loop()
    servers = []
    for ip in cfg.get("servfail_dns", []):
        await loop.create_datagram_endpoint(ServfailUDP, local_addr=(ip, 53))
        servers.append(await asyncio.start_server(servfail_tcp, ip, 53))
        print("DNS SERVFAIL on %s:53" % ip, flush=True)
    for ip in cfg.get("silent_dns", []):
        await loop.create_datagram_endpoint(SilentUDP, local_addr=(ip, 53))
        servers.append(await asyncio.start_server(drain_forever, ip, 53))
        print("DNS silent on %s:53" % ip, flush=True)
    for h in cfg.get("stall_https", []):
        if h["mode"] == "stall":
            mute = type("Mute_" + h["ip"], (Mute,), {"name": h["name"]})
            servers.append(await loop.create_server(mute, h["ip"], 443))
        else:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(h["crt"], h["key"])
            servers.append(await asyncio.start_server(stall_body_handler(h), h["ip"], 443,
                                                      ssl=ctx))
        print("HTTPS %s (%s) on %s:443" % (h["name"], h["mode"], h["ip"]), flush=True)
    print("READY", flush=True)
    await asyncio.Event().wait()        # until TERM; keeps `servers` alive


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except KeyboardInterrupt:
        pass
