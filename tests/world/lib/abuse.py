#!/usr/bin/python3
"""Abuses a socketmap server while measuring how fast it answers a
well-behaved client (stdlib only; run it inside the world).

Usage: abuse.py [options] ENDPOINT MAPNAME KEY EXPECTED-REPLY
  ENDPOINT: inet:HOST:PORT | HOST:PORT | unix:PATH
  --idle N        hold N connections open that never send anything [2000]
  --half N        hold N connections that sent half a request [200]
  --random N      N connections that send 64 KiB of random bytes [50]
  --big           one connection that sends a 1 MB netstring
  --noread        one connection that pipelines 10000 requests, never reads
  --seconds S     how long the probes run while the abuse is held [3]

The probe sends "MAPNAME KEY" every 50 ms on one kept-open connection, and
every 250 ms on a brand-new connection (the accept path), and checks each
reply against EXPECTED-REPLY.  Prints one JSON object: baseline and
under-abuse latencies (max, p50, count), wrong replies, how many abusive
connections the server closed, and whether the server still answers
afterwards.  Exit status 0 unless the tool itself failed.
"""
import json
import os
import resource
import socket
import sys
import threading
import time


def netstring(payload):
    return b"%d:%s," % (len(payload), payload)


def connect(endpoint, timeout=5.0):
    if endpoint.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(endpoint[5:])
        return s
    if endpoint.startswith("inet:"):
        endpoint = endpoint[5:]
    host, _, port = endpoint.rpartition(":")
    return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)


def read_reply(sock):
    buf = b""
    while b":" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError("closed")
        buf += chunk
    n, _, rest = buf.partition(b":")
    n = int(n)
    while len(rest) < n + 1:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed inside reply")
        rest += chunk
    return rest[:n].decode("utf-8", "replace")


class Probe:
    """Latencies of one kept-open connection and of fresh connections."""

    def __init__(self, endpoint, request, expected):
        self.endpoint, self.request, self.expected = endpoint, request, expected
        self.kept, self.fresh, self.bad = [], [], []
        self.sock = None

    def ask(self, fresh):
        t0 = time.monotonic()
        try:
            if fresh or self.sock is None:
                s = connect(self.endpoint)
            else:
                s = self.sock
            s.sendall(self.request)
            reply = read_reply(s)
        except (OSError, EOFError, ValueError) as e:
            reply = "CLIENT-ERROR %s: %s" % (type(e).__name__, e)
            if not fresh and self.sock is not None:
                self.sock.close()
                self.sock = None
            s = None
        dt = time.monotonic() - t0
        (self.fresh if fresh else self.kept).append(dt)
        if reply != self.expected:
            self.bad.append({"fresh": fresh, "reply": reply, "seconds": round(dt, 3)})
        if s is not None:
            if fresh:
                s.close()
            else:
                self.sock = s

    def run(self, seconds):
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            self.ask(fresh=False)
            if n % 5 == 0:
                self.ask(fresh=True)
            n += 1
            time.sleep(0.05)

    def summary(self):
        def stats(v):
            v = sorted(v)
            return {"count": len(v), "max": round(v[-1], 4) if v else None,
                    "p50": round(v[len(v) // 2], 4) if v else None}
        return {"kept": stats(self.kept), "fresh": stats(self.fresh), "bad": self.bad[:20],
                "bad_count": len(self.bad)}


def closed_by_server(sock, wait):
    """True if the server closes (EOF or reset) within WAIT seconds."""
    sock.settimeout(wait)
    end = time.monotonic() + wait
    try:
        while time.monotonic() < end:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    except OSError:
        return True
    return False


def send_then_check_closed(endpoint, payload, results, key, wait=5.0):
    try:
        s = connect(endpoint)
    except OSError as e:
        results[key] = "connect failed: %s" % e
        return
    try:
        s.settimeout(wait)
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            results[key] = True         # closed while we were still sending
            return
        except socket.timeout:
            pass                        # server stopped reading: check below
        results[key] = closed_by_server(s, wait)
    finally:
        s.close()


def main(argv):
    opts = {"idle": 2000, "half": 200, "random": 50, "big": False, "noread": False, "seconds": 3.0}
    args = []
    it = iter(argv)
    for a in it:
        if a in ("--idle", "--half", "--random"):
            opts[a[2:]] = int(next(it))
        elif a == "--seconds":
            opts["seconds"] = float(next(it))
        elif a in ("--big", "--noread"):
            opts[a[2:]] = True
        else:
            args.append(a)
    if len(args) != 4:
        sys.exit(__doc__)
    endpoint, mapname, key, expected = args
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    request = netstring(("%s %s" % (mapname, key)).encode())
    out = {"options": opts}

    base = Probe(endpoint, request, expected)
    base.run(1.0)
    out["baseline"] = base.summary()

    t0 = time.monotonic()
    held, errors = [], []
    for _ in range(opts["idle"]):
        try:
            held.append(connect(endpoint))
        except OSError as e:
            errors.append("idle: %s" % e)
    partial = netstring(("%s %s" % (mapname, key)).encode())
    for _ in range(opts["half"]):
        try:
            s = connect(endpoint)
            s.sendall(partial[:len(partial) // 2])
            held.append(s)
        except OSError as e:
            errors.append("half: %s" % e)
    out["held_connections"] = len(held)
    out["open_seconds"] = round(time.monotonic() - t0, 2)

    closed, threads = {}, []
    for i in range(opts["random"]):
        blob = os.urandom(65536)
        if i % 2:   # half of them start like a netstring with an absurd length
            blob = b"99999999999999999999:" + blob
        threads.append(threading.Thread(target=send_then_check_closed,
                                        args=(endpoint, blob, closed, "random%d" % i)))
    if opts["big"]:
        big = netstring(mapname.encode() + b" " + b"a" * (1000000 - len(mapname) - 1))
        threads.append(threading.Thread(target=send_then_check_closed,
                                        args=(endpoint, big, closed, "big")))
    noread_state = {}
    if opts["noread"]:
        def flood():
            try:
                s = connect(endpoint)
            except OSError as e:
                noread_state["error"] = str(e)
                return
            s.setblocking(False)
            data, sent, end = request * 10000, 0, time.monotonic() + opts["seconds"] + 1
            while sent < len(data) and time.monotonic() < end:
                try:
                    sent += s.send(data[sent:sent + 65536])
                except BlockingIOError:
                    time.sleep(0.01)
                except OSError as e:
                    noread_state["error"] = str(e)
                    break
            noread_state["bytes_sent"] = sent
            noread_state["requests_sent"] = sent // len(request)
            held.append(s)
        threads.append(threading.Thread(target=flood))
    for t in threads:
        t.start()

    probe = Probe(endpoint, request, expected)
    probe.run(opts["seconds"])
    for t in threads:
        t.join(15)
    out["under_abuse"] = probe.summary()
    out["random_closed"] = sum(1 for k, v in closed.items() if k.startswith("random") and v is True)
    out["random_total"] = opts["random"]
    out["random_not_closed"] = {k: v for k, v in closed.items() if k.startswith("random") and v is not True}
    if opts["big"]:
        out["big_closed"] = closed.get("big")
    out["noread"] = noread_state
    out["connect_errors"] = errors[:10]
    out["connect_error_count"] = len(errors)
    if probe.sock:
        probe.sock.close()
    for s in held:
        s.close()

    time.sleep(0.5)
    after = Probe(endpoint, request, expected)
    after.run(1.0)
    out["after"] = after.summary()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
