#!/usr/bin/python3
"""A fixed-answer Postfix socketmap policy service (for testing the world).

Usage: static-policy.py [-l HOST:PORT] [KEY=ANSWER ...]

Listens on HOST:PORT (default $POLICY_HOST:$POLICY_PORT, else
127.0.0.1:8461) and answers every request "<name> <key>" with the ANSWER
given for that key (e.g. "good-enforce.test=OK secure match=mx1.good-enforce.test"),
or "NOTFOUND " for any other key.  Each answer is a netstring; a connection
may carry any number of requests (Postfix keeps it open).  Not the service
under test: it lets the world's own tests drive Postfix without stsguard.
"""
import asyncio
import os
import sys


def netstring(payload):
    return b"%d:%s," % (len(payload), payload)


async def serve(reader, writer, table):
    buf = b""
    try:
        while True:
            while b":" not in buf:
                chunk = await reader.read(4096)
                if not chunk:
                    return
                buf += chunk
            lenstr, _, rest = buf.partition(b":")
            if not lenstr.isdigit() or len(lenstr) > 6:
                return
            n = int(lenstr)
            while len(rest) < n + 1:
                chunk = await reader.read(4096)
                if not chunk:
                    return
                rest += chunk
            if rest[n:n + 1] != b",":
                return
            request, buf = rest[:n].decode("utf-8", "replace"), rest[n + 1:]
            _, _, key = request.partition(" ")
            answer = table.get(key.lower(), "NOTFOUND ")
            print("%s -> %s" % (request, answer), flush=True)
            writer.write(netstring(answer.encode()))
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(argv):
    listen = "%s:%s" % (os.environ.get("POLICY_HOST", "127.0.0.1"),
                        os.environ.get("POLICY_PORT", "8461"))
    table = {}
    it = iter(argv)
    for a in it:
        if a == "-l":
            listen = next(it)
        elif "=" in a:
            k, _, v = a.partition("=")
            table[k.lower()] = v
        else:
            sys.exit(__doc__)
    host, _, port = listen.rpartition(":")
    server = await asyncio.start_server(lambda r, w: serve(r, w, table), host, int(port))
    print("static policy on %s with %d entries" % (listen, len(table)), flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except KeyboardInterrupt:
        pass
