#!/usr/bin/python3
"""run_bench.py - the stsguard benchmark (`make bench`, issue 7).

Measures, on this machine, with bench/loadgen as the socketmap client:

  cache hit   one interleaved run (ROUNDS rounds, TCP and unix socket,
              1/4/16/64 connections) of
                a   `stsguard serve` with 10,000 cached enforce policies
                    (mx_match = exact, the default; "a-patterns" repeats
                    the 16-connection cells with mx_match = patterns)
                b   Debian's postfix-mta-sts-resolver (mta-sts-daemon)
                    answering the same 10,000 domains from its sqlite
                    cache, filled in its own schema with fresh timestamps
                    and cache_grace of a year, so every lookup is a hit
                c   bench/refserver: one LMDB read and a fixed reply, the
                    practical limit
              medians of each cell, the ratios a/b and a/c of requests
              per server CPU-second, and p99 latencies;
  placement   a and c at 16 connections with CPUs pinned (taskset): the
              server alone on CPU 0 and loadgen on CPU 1 (split), and both
              on CPU 0 (shared), the two layouts an unpinned run on two
              CPUs lands on;
  memory      RSS of serve idle and under load;
  start-up    fork to first answer with 1,000 and 1,000,000 cached domains;
  lookup cost server CPU per request with 1,000 vs 1,000,000 cached
              domains (uniform random keys over the whole cache), and the
              in-process cost (bench/store_cost);
  cold path   bench/coldworld.py (its own network namespace): 1,000 domains
              never seen before, stsguard vs the peer.

Prints every target with PASS/MISS and the measured figure and writes all
figures as JSON (--out).  A MISS never fails the run (exit 0); a broken
set-up (a server that does not answer correctly) exits 1.

All traffic stays on 127.0.0.1 (and, for the cold path, inside a private
network namespace).  Servers are children of this script, stopped by PID
in a finally block.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------
# helpers


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def netstring(data: bytes) -> bytes:
    return str(len(data)).encode() + b":" + data + b","


def smq(addr, key, mapname="postfix", timeout=5.0):
    """One socketmap request; returns the reply data as text."""
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = addr[5:]
    else:
        host, port = addr[5:].rsplit(":", 1)
        s = socket.socket()
        target = (host, int(port))
    s.settimeout(timeout)
    with s:
        s.connect(target)
        s.sendall(netstring(f"{mapname} {key}".encode()))
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            buf += chunk
            if b":" in buf:
                n, _, rest = buf.partition(b":")
                if len(rest) >= int(n) + 1:
                    return rest[: int(n)].decode()


def cpu_seconds(pid):
    total = 0.0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0]) / 1e9
    except OSError:
        pass
    return total


def wait_idle(pid, quiet=0.005, window=0.5, limit=60.0):
    """Waits until the process uses less than `quiet` CPU-seconds per window
    (start-up work, serve's first cache sweep after 5 s)."""
    t_end = time.time() + limit
    last = cpu_seconds(pid)
    while time.time() < t_end:
        time.sleep(window)
        now = cpu_seconds(pid)
        if now - last < quiet:
            return True
        last = now
    return False


def mem_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                    out[k] = int(v.split()[0])
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Pss", "Private_Clean", "Private_Dirty", "Shared_Clean"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


# CPU layouts of server and load generator for the placement phase:
# "split" puts the server on CPU 0 and loadgen on CPU 1, "shared" puts
# both on CPU 0; the other phases leave placement to the scheduler.
# Unpinned, a 2-CPU box lands on either layout from one run to the next,
# and req/CPU-s of a single-threaded server moves by up to 2x between
# them (docs/performance.md).
LAYOUTS = {"split": (0, 1), "shared": (0, 0)}


def pinned(argv, cpu):
    return list(argv) if cpu is None else ["taskset", "-c", str(cpu)] + list(argv)


class Server:
    """A server under test, a child process in its own process group."""

    def __init__(self, name, argv, addrs, workdir, env=None, ready_key=None, cpu=None):
        self.name, self.argv, self.addrs, self.env, self.cpu = name, argv, addrs, env, cpu
        self.ready_key = ready_key
        self.logpath = os.path.join(workdir, f"{name}.log")
        self.proc = None

    def start(self, timeout=30.0):
        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(pinned(self.argv, self.cpu), stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)
        t_end = time.time() + timeout
        pending = list(self.addrs.values())
        while pending and time.time() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.logpath}")
            try:
                smq(pending[0], self.ready_key, timeout=2)
                pending.pop(0)
            except OSError:
                time.sleep(0.05)
        if pending:
            raise RuntimeError(f"{self.name} does not answer on {pending}; see {self.logpath}")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()


def loadgen(tools, addr, keys, conns, seconds, pid, label, warmup=0.5, timeout=10.0, cpu=None):
    cmd = [tools["loadgen"], "--connect", addr, "--keys", keys, "-c", str(conns), "-d", str(seconds),
           "--warmup", str(warmup), "--pid", str(pid), "--label", label, "--timeout", str(timeout)]
    r = subprocess.run(pinned(cmd, cpu), capture_output=True, text=True, timeout=seconds + warmup + 60)
    if r.returncode != 0:
        raise RuntimeError(f"loadgen {label}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------
# set-up: caches and configurations


def fill_stsguard(tools, cache_dir, count, keys, shuffled):
    os.makedirs(cache_dir, exist_ok=True)
    r = subprocess.run([tools["fill_cache"], "--dir", cache_dir, "--count", str(count), "--keys", keys,
                        "--shuffled-keys", shuffled], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def fill_peer_sqlite(path, keys_file):
    """postfix-mta-sts-resolver 1.1.x schema (sqlite_cache.py): one row per
    domain, ts = fetch time, pol_body = the policy dict as JSON.  Fresh ts,
    and cache_grace (config) longer than the run, so every lookup is a hit."""
    db = sqlite3.connect(path)
    db.executescript("""
        PRAGMA journal_mode=WAL;
        create table if not exists proactive_fetch_ts (id integer primary key, last_fetch_ts integer);
        create table if not exists sts_policy_cache (domain text, ts integer, pol_id text, pol_body text);
        create unique index if not exists sts_policy_domain on sts_policy_cache (domain);
        create index if not exists sts_policy_domain_ts on sts_policy_cache (domain, ts);
    """)
    ts = int(time.time())
    rows = []
    with open(keys_file) as f:
        for line in f:
            d = line.strip()
            body = {"version": "STSv1", "mode": "enforce", "mx": [f"mx1.{d}", f"mx2.{d}"], "max_age": 31557600}
            rows.append((d, ts, "bench1", json.dumps(body)))
    db.executemany("insert or replace into sts_policy_cache values (?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def stsguard_conf(path, cache_dir, listens, extra=""):
    with open(path, "w") as f:
        f.write(f"""# written by bench/run_bench.py
cache_dir = {cache_dir}
listen = {", ".join(listens)}
log_target = stderr
# No DNS is needed for cache hits; anything else must fail fast, locally.
dns_servers = 127.0.0.1:9
dns_timeout = 1s
dns_retries = 0
# Fresh records: nothing is due; the periodic sweep is pushed out.
sweep_interval = 1d
{extra}""")
    return path


def peer_conf(path, db, addr):
    lines = ["# written by bench/run_bench.py"]
    if addr.startswith("unix:"):
        lines += [f"path: {addr[5:]}", "mode: 0666"]
    else:
        host, port = addr[5:].rsplit(":", 1)
        lines += [f"host: {host}", f"port: {port}", "reuse_port: true"]
    lines += ["cache_grace: 31536000", "cache:", "  type: sqlite", "  options:", f'    filename: "{db}"', ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def check_answers(servers, keys_file, n=3):
    """A few answers from each server, compared on the MX names they allow."""
    with open(keys_file) as f:
        keys = [next(f).strip() for _ in range(n)]
    problems = []
    for key in keys:
        want = {f"mx1.{key}", f"mx2.{key}"}
        for name, addr in servers:
            reply = smq(addr, key)
            if not reply.startswith("OK secure match="):
                problems.append(f"{name} {key}: {reply!r}")
                continue
            if name.startswith("c"):
                continue  # the reference answers a fixed reply
            match = reply.split()[2][len("match="):].split(":")
            if set(match) != want:
                problems.append(f"{name} {key}: match {match}, want {sorted(want)}")
        log(f"  check {key}: " + "; ".join(f"{name}={smq(addr, key)!r}" for name, addr in servers[:3]))
    if problems:
        raise RuntimeError("answers differ from the cached policies: " + "; ".join(problems))


# ---------------------------------------------------------------------------
# the phases


def cache_hit_phase(tools, work, args, results):
    log("== cache hit: stsguard serve (a) vs mta-sts-daemon (b) vs refserver (c), 10,000 domains")
    keys, shuf = f"{work}/keys10k.txt", f"{work}/keys10k.shuf"
    info = fill_stsguard(tools, f"{work}/cache10k", 10000, keys, shuf)
    fill_peer_sqlite(f"{work}/peer10k.db", keys)
    results["setup"] = {"stsguard_fill": info, "peer_db": f"{work}/peer10k.db"}
    first = open(keys).readline().strip()
    ports = {k: free_port() for k in ("a", "ap", "b", "c")}
    addrs = {
        "a": {"tcp": f"inet:127.0.0.1:{ports['a']}", "unix": f"unix:{work}/a.sock"},
        "a-patterns": {"tcp": f"inet:127.0.0.1:{ports['ap']}", "unix": f"unix:{work}/ap.sock"},
        "b": {"tcp": f"inet:127.0.0.1:{ports['b']}", "unix": f"unix:{work}/b.sock"},
        "c": {"tcp": f"inet:127.0.0.1:{ports['c']}", "unix": f"unix:{work}/c.sock"},
    }
    servers = {}
    # Each (server, transport) -> the process that serves it.
    proc_of = {}
    try:
        a = Server("a", [tools["stsguard"], "-c", stsguard_conf(f"{work}/a.conf", f"{work}/cache10k",
                                                                 list(addrs["a"].values())), "serve"],
                   addrs["a"], work, ready_key=first).start()
        ap = Server("a-patterns", [tools["stsguard"], "-c",
                                   stsguard_conf(f"{work}/ap.conf", f"{work}/cache10k",
                                                 list(addrs["a-patterns"].values()), "mx_match = patterns\n"),
                                   "serve"], addrs["a-patterns"], work, ready_key=first).start()
        peer_env = dict(os.environ)
        b_tcp = Server("b-tcp", ["/usr/bin/mta-sts-daemon", "-v", "warn", "-c",
                                 peer_conf(f"{work}/b-tcp.yml", f"{work}/peer10k.db", addrs["b"]["tcp"])],
                       {"tcp": addrs["b"]["tcp"]}, work, env=peer_env, ready_key=first).start()
        b_unix = Server("b-unix", ["/usr/bin/mta-sts-daemon", "-v", "warn", "-c",
                                   peer_conf(f"{work}/b-unix.yml", f"{work}/peer10k.db", addrs["b"]["unix"])],
                        {"unix": addrs["b"]["unix"]}, work, env=peer_env, ready_key=first).start()
        c = Server("c", [tools["refserver"], "--cache", f"{work}/cache10k", "--match",
                         f"mx1.{first}:mx2.{first} servername=hostname",
                         "--listen", addrs["c"]["tcp"], "--listen", addrs["c"]["unix"]],
                   addrs["c"], work, ready_key=first).start()
        servers = {"a": a, "a-patterns": ap, "b-tcp": b_tcp, "b-unix": b_unix, "c": c}
        for t in ("tcp", "unix"):
            proc_of[("a", t)] = a
            proc_of[("a-patterns", t)] = ap
            proc_of[("c", t)] = c
        proc_of[("b", "tcp")], proc_of[("b", "unix")] = b_tcp, b_unix
        check_answers([("a", addrs["a"]["tcp"]), ("b", addrs["b"]["tcp"]), ("c", addrs["c"]["tcp"]),
                       ("a-patterns", addrs["a-patterns"]["unix"]), ("b-unix", addrs["b"]["unix"])], keys)
        for s in servers.values():
            wait_idle(s.pid)
        mem_idle = mem_status(a.pid)
        results["memory"] = {"a_idle": mem_idle, "b_idle": mem_status(b_tcp.pid), "c_idle": mem_status(c.pid)}

        cells = []
        names = ["a", "b", "c"]
        for rnd in range(args.rounds):
            for transport in ("tcp", "unix"):
                for conns in args.conns:
                    order = names[rnd % 3:] + names[:rnd % 3]  # rotate who goes first
                    if conns == 16:
                        order = order + ["a-patterns"]
                    for name in order:
                        srv = proc_of[(name, transport)]
                        label = f"{name}/{transport}/{conns}/r{rnd + 1}"
                        r = loadgen(tools, addrs[name][transport], keys, conns, args.seconds, srv.pid, label)
                        r.update(server=name, transport=transport, round=rnd + 1)
                        cells.append(r)
                        log(f"  {label:22s} {r['rps']:9.0f} req/s  {r['req_per_server_cpu_s']:9.0f} req/CPU-s  "
                            f"p50 {r['latency_us']['p50']:8.0f} us  p99 {r['latency_us']['p99']:8.0f} us  "
                            f"{'OK' if r['replies']['OK'] == r['requests'] else 'NOT ALL OK: ' + json.dumps(r['replies'])}")
        results["memory"]["a_after_load"] = mem_status(a.pid)
        results["memory"]["b_after_load"] = mem_status(b_tcp.pid)
        results["cells"] = cells
    finally:
        for s in servers.values():
            s.stop()

    # medians
    table = {}
    for cell in cells:
        key = (cell["server"], cell["transport"], cell["conns"])
        table.setdefault(key, []).append(cell)
    summary = []
    for (name, transport, conns), cs in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        summary.append({
            "server": name, "transport": transport, "conns": conns, "rounds": len(cs),
            "rps": median([c["rps"] for c in cs]),
            "req_per_cpu_s": median([c["req_per_server_cpu_s"] for c in cs]),
            "cpu_us_per_req": median([c["server_cpu_us_per_req"] for c in cs]),
            "p50_us": median([c["latency_us"]["p50"] for c in cs]),
            "p99_us": median([c["latency_us"]["p99"] for c in cs]),
            "p999_us": median([c["latency_us"]["p999"] for c in cs]),
            "max_us": max(c["latency_us"]["max"] for c in cs),
            "all_ok": all(c["replies"]["OK"] == c["requests"] and c["requests"] > 0 for c in cs),
            "rss_load_kb": max(c["rss_load"]["rss_kb"] for c in cs),
            "rss_load_anon_kb": max(c["rss_load"]["anon_kb"] for c in cs),
        })
    results["cache_hit"] = summary
    idx = {(s["server"], s["transport"], s["conns"]): s for s in summary}
    ratios = []
    for transport in ("tcp", "unix"):
        for conns in args.conns:
            a_, b_, c_ = (idx.get((n, transport, conns)) for n in ("a", "b", "c"))
            if not (a_ and b_ and c_):
                continue
            ratios.append({
                "transport": transport, "conns": conns,
                "a_over_b_cpu": a_["req_per_cpu_s"] / b_["req_per_cpu_s"],
                "a_over_c_cpu": a_["req_per_cpu_s"] / c_["req_per_cpu_s"],
                "a_over_b_rps": a_["rps"] / b_["rps"],
                "a_over_c_rps": a_["rps"] / c_["rps"],
                "p99_a_over_c": a_["p99_us"] / c_["p99_us"],
            })
    results["ratios"] = ratios

    log("")
    log("medians of %d rounds, %.0f s per cell (req/CPU-s = requests per second of server CPU time)"
        % (args.rounds, args.seconds))
    log(f"{'transport':9s} {'conns':>5s} {'server':11s} {'req/s':>9s} {'req/CPU-s':>10s} {'us CPU/req':>10s} "
        f"{'p50 us':>8s} {'p99 us':>8s} {'p99.9 us':>9s}")
    for s in summary:
        log(f"{s['transport']:9s} {s['conns']:5d} {s['server']:11s} {s['rps']:9.0f} {s['req_per_cpu_s']:10.0f} "
            f"{s['cpu_us_per_req']:10.2f} {s['p50_us']:8.0f} {s['p99_us']:8.0f} {s['p999_us']:9.0f}"
            + ("" if s["all_ok"] else "  (not every reply was OK)"))
    log("")
    log(f"{'transport':9s} {'conns':>5s} {'a/b CPU':>8s} {'a/c CPU':>8s} {'a/b req/s':>9s} {'a/c req/s':>9s} "
        f"{'p99 a/c':>8s}")
    for r in ratios:
        log(f"{r['transport']:9s} {r['conns']:5d} {r['a_over_b_cpu']:8.1f} {r['a_over_c_cpu']:8.2f} "
            f"{r['a_over_b_rps']:9.1f} {r['a_over_c_rps']:9.2f} {r['p99_a_over_c']:8.2f}")


def placement_phase(tools, work, args, results):
    """a vs c at 16 connections with the CPUs pinned: split (server and
    loadgen on their own CPUs, as on a many-core mail host) and shared (the
    server shares its CPU with the client).  Explains the spread of the
    unpinned hit phase, which lands on either layout; the targets are
    checked there, not here.  The peer is left out: it is multi-threaded,
    and pinning its threads to one CPU changes its cost by itself."""
    log("")
    log("== CPU placement: serve (a) vs refserver (c), 16 connections, pinned layouts")
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        log("  needs 2 CPUs and taskset (util-linux): skipped")
        return
    keys, shuf = f"{work}/keys-pl.txt", f"{work}/keys-pl.shuf"
    fill_stsguard(tools, f"{work}/cache-pl", 10000, keys, shuf)
    first = open(keys).readline().strip()
    port_a, port_c = free_port(), free_port()
    out = {}
    for layout in ("split", "shared"):
        server_cpu, client_cpu = LAYOUTS[layout]
        addrs = {"a": {"tcp": f"inet:127.0.0.1:{port_a}", "unix": f"unix:{work}/pl-a.sock"},
                 "c": {"tcp": f"inet:127.0.0.1:{port_c}", "unix": f"unix:{work}/pl-c.sock"}}
        servers = {}
        cells = []
        try:
            servers["a"] = Server(f"pl-a-{layout}", [tools["stsguard"], "-c",
                                                     stsguard_conf(f"{work}/pl-a.conf", f"{work}/cache-pl",
                                                                   list(addrs["a"].values())), "serve"],
                                  addrs["a"], work, ready_key=first, cpu=server_cpu).start()
            servers["c"] = Server(f"pl-c-{layout}", [tools["refserver"], "--cache", f"{work}/cache-pl", "--match",
                                                     f"mx1.{first}:mx2.{first} servername=hostname",
                                                     "--listen", addrs["c"]["tcp"], "--listen", addrs["c"]["unix"]],
                                  addrs["c"], work, ready_key=first, cpu=server_cpu).start()
            for srv in servers.values():
                wait_idle(srv.pid)
            for rnd in range(args.rounds):
                for transport in ("tcp", "unix"):
                    for name in (("a", "c") if rnd % 2 == 0 else ("c", "a")):
                        label = f"{layout}/{name}/{transport}/r{rnd + 1}"
                        r = loadgen(tools, addrs[name][transport], keys, 16, args.seconds, servers[name].pid,
                                    label, cpu=client_cpu)
                        cells.append((transport, name, r))
                        log(f"  {label:22s} {r['req_per_server_cpu_s']:9.0f} req/CPU-s  "
                            f"p99 {r['latency_us']['p99']:6.0f} us")
        finally:
            for srv in servers.values():
                srv.stop()
        for transport in ("tcp", "unix"):
            med = {n: median([r["req_per_server_cpu_s"] for t, m, r in cells if t == transport and m == n])
                   for n in ("a", "c")}
            p99 = {n: median([r["latency_us"]["p99"] for t, m, r in cells if t == transport and m == n])
                   for n in ("a", "c")}
            out[f"{layout}/{transport}"] = {"a_req_per_cpu_s": med["a"], "c_req_per_cpu_s": med["c"],
                                            "a_over_c_cpu": med["a"] / med["c"], "p99_a_over_c": p99["a"] / p99["c"]}
    results["placement"] = out
    log("")
    log(f"{'layout':7s} {'transport':9s} {'a req/CPU-s':>11s} {'c req/CPU-s':>11s} {'a/c CPU':>8s} {'p99 a/c':>8s}")
    for key, v in out.items():
        layout, transport = key.split("/")
        log(f"{layout:7s} {transport:9s} {v['a_req_per_cpu_s']:11.0f} {v['c_req_per_cpu_s']:11.0f} "
            f"{v['a_over_c_cpu']:8.2f} {v['p99_a_over_c']:8.2f}")


def startup_and_lookup_phase(tools, work, args, results):
    log("")
    log("== start-up to first answer, and lookup cost, 1,000 vs 1,000,000 cached domains")
    sizes = {"1k": 1000, "1m": args.big}
    for tag, n in sizes.items():
        t0 = time.time()
        info = fill_stsguard(tools, f"{work}/cache{tag}", n, f"{work}/keys{tag}.txt", f"{work}/keys{tag}.shuf")
        log(f"  filled {n} records in {time.time() - t0:.1f} s ({info['fill_seconds']:.1f} s in put_all)")
    startup = {}
    for tag in sizes:
        addr = f"unix:{work}/st-{tag}.sock"
        conf = stsguard_conf(f"{work}/st-{tag}.conf", f"{work}/cache{tag}", [addr])
        key = open(f"{work}/keys{tag}.shuf").readline().strip()
        runs = []
        for _ in range(args.startup_reps):
            with open(f"{work}/startup-{tag}.log", "ab") as lf:
                r = subprocess.run([tools["loadgen"], "--startup", "--connect", addr, "--key", key, "--timeout", "20",
                                    "--label", f"startup-{tag}", "--", tools["stsguard"], "-c", conf, "serve"],
                                   stdout=subprocess.PIPE, stderr=lf, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"start-up {tag}: loadgen failed (see {work}/startup-{tag}.log)")
            runs.append(json.loads(r.stdout))
        startup[tag] = {"median_ms": median([x["startup_ms"] for x in runs]),
                        "max_ms": max(x["startup_ms"] for x in runs),
                        "reply": runs[0]["reply"], "runs": runs}
        log(f"  start-up {tag}: median {startup[tag]['median_ms']:.1f} ms, max {startup[tag]['max_ms']:.1f} ms "
            f"over {len(runs)} runs; first reply {runs[0]['reply']!r}")
    results["startup"] = startup

    # In-process cost (no sockets).
    inproc = {}
    for tag in sizes:
        r = subprocess.run([tools["store_cost"], "--dir", f"{work}/cache{tag}", "--keys", f"{work}/keys{tag}.shuf"],
                           capture_output=True, text=True, check=True)
        inproc[tag] = json.loads(r.stdout)
        log(f"  in-process {tag}: get {inproc[tag]['get_ns']:.0f} ns, parse+get+decide {inproc[tag]['answer_ns']:.0f} ns")
    results["lookup_inprocess"] = inproc

    # End to end: server CPU per request, uniform random keys over the whole cache.
    # The reference server on the same caches shows how much of the growth
    # is the store's own (its one mdb_get reads the key, not the value).
    servers = {}
    refs = {}
    cells = {tag: [] for tag in sizes}
    ref_cells = {tag: [] for tag in sizes}
    try:
        for tag in sizes:
            addr = f"unix:{work}/lc-{tag}.sock"
            conf = stsguard_conf(f"{work}/lc-{tag}.conf", f"{work}/cache{tag}", [addr])
            key = open(f"{work}/keys{tag}.shuf").readline().strip()
            servers[tag] = (Server(f"lc-{tag}", [tools["stsguard"], "-c", conf, "serve"], {"unix": addr}, work,
                                   ready_key=key).start(), addr)
            raddr = f"unix:{work}/lc-ref-{tag}.sock"
            refs[tag] = (Server(f"lc-ref-{tag}", [tools["refserver"], "--cache", f"{work}/cache{tag}", "--match",
                                                 "mx1.x:mx2.x servername=hostname", "--listen", raddr],
                                {"unix": raddr}, work, ready_key=key).start(), raddr)
        # serve's first cache sweep runs 5 s after start and reads every record.
        time.sleep(6)
        for s, _ in list(servers.values()) + list(refs.values()):
            wait_idle(s.pid)
        for rnd in range(args.rounds):
            for tag in (sizes if rnd % 2 == 0 else list(sizes)[::-1]):
                s, addr = servers[tag]
                r = loadgen(tools, addr, f"{work}/keys{tag}.shuf", 16, args.seconds, s.pid, f"lookup-{tag}/r{rnd + 1}")
                cells[tag].append(r)
                log(f"  lookup {tag} r{rnd + 1}: {r['server_cpu_us_per_req']:.2f} us CPU/req, {r['rps']:.0f} req/s, "
                    f"p99 {r['latency_us']['p99']:.0f} us, RSS {r['rss_load']['rss_kb']} kB "
                    f"(anon {r['rss_load']['anon_kb']} kB)")
                s, addr = refs[tag]
                r = loadgen(tools, addr, f"{work}/keys{tag}.shuf", 16, args.seconds, s.pid,
                            f"lookup-ref-{tag}/r{rnd + 1}")
                ref_cells[tag].append(r)
                log(f"  lookup {tag} r{rnd + 1} reference: {r['server_cpu_us_per_req']:.2f} us CPU/req")
    finally:
        for s, _ in list(servers.values()) + list(refs.values()):
            s.stop()
    lookup = {tag: {"cpu_us_per_req": median([c["server_cpu_us_per_req"] for c in cs]),
                    "rps": median([c["rps"] for c in cs]),
                    "p99_us": median([c["latency_us"]["p99"] for c in cs]),
                    "rss_load_kb": max(c["rss_load"]["rss_kb"] for c in cs),
                    "rss_load_anon_kb": max(c["rss_load"]["anon_kb"] for c in cs),
                    "all_ok": all(c["replies"]["OK"] == c["requests"] for c in cs),
                    "cells": cs} for tag, cs in cells.items()}
    results["lookup_cost"] = lookup
    results["lookup_cost_reference"] = {tag: {"cpu_us_per_req": median([c["server_cpu_us_per_req"] for c in cs]),
                                              "cells": cs} for tag, cs in ref_cells.items()}


def callgrind_total(path):
    """Total instructions (Ir) of a callgrind output file.  "totals:" is
    what was collected; "summary:" can be 0 when instrumentation started
    off (--instr-atstart=no), so totals wins."""
    found = {}
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                found[line.split(":")[0]] = int(line.split()[1])
    if "totals" in found:
        return found["totals"]
    if "summary" in found:
        return found["summary"]
    raise RuntimeError(f"{path}: no summary line")


def instr_phase(tools, work, args, results):
    """User-space instructions per cache-hit request, under callgrind: a
    figure that does not move with the box's load or with where the
    scheduler puts the server and the client (req per CPU-s does, see
    docs/performance.md).  Each server runs with instrumentation off
    through start-up and serve's first cache sweep (5 s after start);
    callgrind_control turns it on for the load only, so the count holds
    the event loop, the system call wrappers and the requests, nothing
    else."""
    log("")
    log("== user-space instructions per cache-hit request (callgrind; unix socket, 4 connections)")
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        log("  valgrind missing (make bench-deps): skipped")
        return
    cache, keys, shuf = f"{work}/cache-instr", f"{work}/keys-instr.txt", f"{work}/keys-instr.shuf"
    fill_stsguard(tools, cache, 1000, keys, shuf)
    first = open(keys).readline().strip()
    out = {}
    for name in ("a", "c"):
        addr = f"unix:{work}/instr-{name}.sock"
        cg = f"{work}/callgrind-{name}.out"
        if name == "a":
            argv = [tools["stsguard"], "-c", stsguard_conf(f"{work}/instr.conf", cache, [addr]), "serve"]
        else:
            argv = [tools["refserver"], "--cache", cache, "--match",
                    f"mx1.{first}:mx2.{first} servername=hostname", "--listen", addr]
        t_start = time.time()
        srv = Server(f"instr-{name}", ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                       f"--callgrind-out-file={cg}"] + argv,
                     {"unix": addr}, work, ready_key=first).start(timeout=120)
        try:
            time.sleep(max(0.0, t_start + 8 - time.time()))  # past serve's first sweep (5 s)
            wait_idle(srv.pid)
            subprocess.run(["callgrind_control", "-i", "on", str(srv.pid)], check=True, capture_output=True)
            r = loadgen(tools, addr, keys, 4, 6, srv.pid, f"instr-{name}", warmup=0, timeout=30)
            subprocess.run(["callgrind_control", "-i", "off", str(srv.pid)], check=True, capture_output=True)
        finally:
            srv.stop()  # SIGTERM: callgrind writes its file as the server exits
        total = callgrind_total(cg)
        out[name] = {"instructions_per_request": total / r["requests"], "instructions": total,
                     "requests": r["requests"]}
        log(f"  {name}: {out[name]['instructions_per_request']:,.0f} instructions per request "
            f"({r['requests']} requests)")
    out["a_over_c"] = out["a"]["instructions_per_request"] / out["c"]["instructions_per_request"]
    log(f"  a/c: {out['a_over_c']:.1f}x the reference's instructions")
    results["instructions"] = out


def cold_phase(tools, work, args, results):
    log("")
    log("== cold path: 1,000 new domains through a private test world (DNS + HTTPS)")
    out = f"{work}/cold.json"
    cmd = ["/usr/bin/python3", os.path.join(HERE, "coldworld.py"), "--stsguard", tools["stsguard"],
           "--loadgen", tools["loadgen"], "--domains", str(args.cold_domains), "--out", out]
    r = subprocess.run(cmd, timeout=1200)
    if r.returncode != 0 or not os.path.exists(out):
        results["cold"] = {"error": f"coldworld.py exited with {r.returncode}"}
        log(f"  cold path failed (exit {r.returncode})")
        return
    with open(out) as f:
        results["cold"] = json.load(f)


# ---------------------------------------------------------------------------
# targets


def evaluate(results, args):
    targets = []

    def target(name, measured, passed, detail):
        targets.append({"target": name, "measured": measured, "pass": passed, "detail": detail})

    idx = {(s["server"], s["transport"], s["conns"]): s for s in results.get("cache_hit", [])}
    for r in results.get("ratios", []):
        if r["conns"] != 16:
            continue
        t = r["transport"]
        target(f"cache hit, 16 conns, {t}: req/server-CPU-s a/b >= 40", round(r["a_over_b_cpu"], 1),
               r["a_over_b_cpu"] >= 40,
               f"a {idx[('a', t, 16)]['req_per_cpu_s']:.0f}, b {idx[('b', t, 16)]['req_per_cpu_s']:.0f} req/CPU-s")
        target(f"cache hit, 16 conns, {t}: req/server-CPU-s a/c >= 0.80", round(r["a_over_c_cpu"], 2),
               r["a_over_c_cpu"] >= 0.8,
               f"a {idx[('a', t, 16)]['req_per_cpu_s']:.0f}, c {idx[('c', t, 16)]['req_per_cpu_s']:.0f} req/CPU-s")
        target(f"cache hit, 16 conns, {t}: p99 a <= 1.2 x p99 c", round(r["p99_a_over_c"], 2),
               r["p99_a_over_c"] <= 1.2,
               f"a {idx[('a', t, 16)]['p99_us']:.0f} us, c {idx[('c', t, 16)]['p99_us']:.0f} us")
    mem = results.get("memory", {})
    loads = [s for s in results.get("cache_hit", []) if s["server"] == "a"]
    if loads:
        rss = max(s["rss_load_kb"] for s in loads)
        anon = max(s["rss_load_anon_kb"] for s in loads)
        idle = mem.get("a_idle", {})
        target("RSS of serve under load <= 8 MB (VmRSS, 10,000 domains)", f"{rss / 1024:.1f} MB", rss <= 8192,
               f"anon {anon / 1024:.1f} MB under load; idle VmRSS {idle.get('VmRSS', 0) / 1024:.1f} MB, "
               f"anon {idle.get('RssAnon', 0) / 1024:.1f} MB, PSS {idle.get('Pss', 0) / 1024:.1f} MB")
    st = results.get("startup", {})
    if "1m" in st:
        target(f"start-up to first answer with {args.big:,} cached domains <= 50 ms", f"{st['1m']['median_ms']:.1f} ms",
               st["1m"]["median_ms"] <= 50, f"1,000 domains: {st['1k']['median_ms']:.1f} ms (medians)")
    lc = results.get("lookup_cost", {})
    if "1m" in lc and "1k" in lc:
        ratio = lc["1m"]["cpu_us_per_req"] / lc["1k"]["cpu_us_per_req"]
        ref = results.get("lookup_cost_reference", {})
        ref_note = ""
        if "1m" in ref and "1k" in ref:
            ref_note = (f"; reference server {ref['1m']['cpu_us_per_req']:.2f} vs {ref['1k']['cpu_us_per_req']:.2f}"
                        f" ({ref['1m']['cpu_us_per_req'] / ref['1k']['cpu_us_per_req']:.2f}x)")
        target(f"per-lookup server CPU, {args.big:,} vs 1,000 domains <= 1.3x", round(ratio, 2), ratio <= 1.3,
               f"{lc['1m']['cpu_us_per_req']:.2f} vs {lc['1k']['cpu_us_per_req']:.2f} us/req (unix, 16 conns, "
               f"uniform random keys){ref_note}")
    cold = results.get("cold", {})
    if "speedup" in cold:
        target("cold path: 1,000 new domains answered >= 5x faster than the peer", round(cold["speedup"], 1),
               cold["speedup"] >= 5, f"stsguard {cold['stsguard']['all_answered_s']:.1f} s, peer "
               f"{cold['peer']['all_answered_s']:.1f} s")
        fc = cold["stsguard"].get("max_fetches_in_flight")
        lim = cold["stsguard"].get("fetch_concurrency")
        if fc is not None:
            target("cold path: fetches in flight <= fetch_concurrency", fc, fc <= lim,
                   f"fetch_concurrency = {lim}; method: {cold['stsguard'].get('in_flight_method', '')}")
    elif cold:
        target("cold path", "not measured", False, cold.get("error", ""))
    results["targets"] = targets
    log("")
    log("== targets")
    for t in targets:
        log(f"  {'PASS' if t['pass'] else 'MISS'}  {t['target']}: {t['measured']}   ({t['detail']})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="directory with stsguard, loadgen, refserver, fill_cache, store_cost")
    ap.add_argument("--out", default=None, help="JSON results (default BUILD/bench-results.json)")
    ap.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", default="1,4,16,64")
    ap.add_argument("--big", type=int, default=1000000, help="the large cache for start-up and lookup cost")
    ap.add_argument("--startup-reps", type=int, default=5)
    ap.add_argument("--cold-domains", type=int, default=1000)
    ap.add_argument("--phases", default="hit,placement,startup,cold,instr",
                    help="comma list of hit, placement, startup, cold, instr")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    args.conns = [int(x) for x in args.conns.split(",")]
    phases = set(args.phases.split(","))
    build = os.path.abspath(args.build)
    tools = {t: os.path.join(build, t if t == "stsguard" else f"bench/{t}")
             for t in ("stsguard", "loadgen", "refserver", "fill_cache", "store_cost")}
    for t, p in tools.items():
        if not os.access(p, os.X_OK):
            sys.exit(f"run_bench: {p} missing (make bench builds it)")
    if "hit" in phases and not os.access("/usr/bin/mta-sts-daemon", os.X_OK):
        sys.exit("run_bench: /usr/bin/mta-sts-daemon missing: make bench-deps (Debian postfix-mta-sts-resolver)")
    out = args.out or os.path.join(build, "bench-results.json")
    work = tempfile.mkdtemp(prefix="stsguard-bench-")
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"nproc": os.cpu_count(), "loadavg_start": os.getloadavg(), "kernel": os.uname().release},
        "params": {"seconds": args.seconds, "rounds": args.rounds, "conns": args.conns, "big": args.big},
        "stsguard": tools["stsguard"],
    }
    t0 = time.time()
    try:
        peer_v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "postfix-mta-sts-resolver"],
                                capture_output=True, text=True).stdout
        results["peer_version"] = peer_v
        log(f"stsguard benchmark: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; work dir {work}; "
            f"peer postfix-mta-sts-resolver {peer_v}")
        if "hit" in phases:
            cache_hit_phase(tools, work, args, results)
        if "placement" in phases:
            placement_phase(tools, work, args, results)
        if "startup" in phases:
            startup_and_lookup_phase(tools, work, args, results)
        if "cold" in phases:
            cold_phase(tools, work, args, results)
        if "instr" in phases:
            instr_phase(tools, work, args, results)
    finally:
        results["host"]["loadavg_end"] = os.getloadavg()
        results["elapsed_s"] = round(time.time() - t0, 1)
        evaluate(results, args)
        with open(out, "w") as f:
            json.dump(results, f, indent=1)
        log(f"\nresults: {out}  ({results['elapsed_s']:.0f} s)")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"work directory kept: {work}")


if __name__ == "__main__":
    main()
