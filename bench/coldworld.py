#!/usr/bin/python3
"""coldworld.py - the cold-path benchmark: N domains never seen before,
answered through a private world (DNS + HTTPS), stsguard vs the peer.

Builds its OWN small world (it does not use tests/world/world, only the
same tools the same way): a network namespace stsguard-bench-<pid> with
only lo; unbound on 127.0.0.53 serving the whole "cold.test" zone from an
auth-zone (nothing is ever forwarded: "." is a static local zone); nginx on
127.0.2.1:443 serving one policy body for every mta-sts.<domain> host, each
host with its own certificate (that one name) from a private CA, chosen by
SNI.  State lives in a
temporary directory; everything is torn down in finally/atexit (processes
by PID, then the namespace and /etc/netns/<ns>).

Domain i is d<i>.cold.test: TXT _mta-sts "v=STSv1; id=cold1", policy host
mta-sts.d<i>.cold.test -> 127.0.2.1, MX 10 mx.cold.test (127.0.1.1; no
SMTP server is needed: neither service connects to MX hosts).  The policy:
enforce, mx: mx.cold.test, max_age 86400.

Each service (stsguard serve with an empty cache; mta-sts-daemon with an
empty sqlite cache) gets every domain once, from C persistent connections
(one request outstanding each, as Postfix's smtp processes).  Measured:
time until all are answered, reply counts, the service's CPU seconds
(/proc/PID, threads included), and fetches in flight at once:
  - a sampler inside the namespace reads /proc/net/tcp every 2 ms and
    counts client connections to 127.0.2.1:443 (nginx closes every
    connection after its response: keepalive_timeout 0), so TLS
    handshakes count too; its maximum is compared with fetch_concurrency;
  - nginx logs each request with its end time ($msec) and duration
    ($request_time): the number of requests that reached it (all must).
    Their overlap is not a measure: $request_time starts after the TLS
    handshake and has 1 ms resolution, so a policy request lasts 0.000.

Usage: coldworld.py --stsguard PATH --loadgen PATH [--domains N] [--conns C] --out FILE
Needs root.  Exit 0 with the JSON written, 1 on a set-up failure.
"""

import argparse
import asyncio
import atexit
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from run_bench import cpu_seconds  # same folder: sys.path[0]

DNS_IP = "127.0.0.53"
WWW_IP = "127.0.2.1"
MX_IP = "127.0.1.1"
ZONE = "cold.test"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's system trust store

# ---------------------------------------------------------------------------
# client and sampler: run inside the namespace (this file re-executed)


def netstring(b):
    return str(len(b)).encode() + b":" + b + b","


async def client_main(addr, keys, conns, timeout):
    queue = asyncio.Queue()
    for k in keys:
        queue.put_nowait(k)
    replies, lat = {}, []
    host, port = addr.rsplit(":", 1)

    async def worker():
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while True:
                try:
                    k = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t = time.monotonic()
                writer.write(netstring(f"postfix {k}".encode()))
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b":"), timeout)
                n = int(head[:-1])
                data = await asyncio.wait_for(reader.readexactly(n + 1), timeout)
                lat.append(time.monotonic() - t)
                replies[k] = data[:-1].decode()
        finally:
            writer.close()

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(conns)))
    elapsed = time.monotonic() - t0
    kinds = {}
    for r in replies.values():
        w = r.split(" ", 1)[0]
        kinds[w] = kinds.get(w, 0) + 1
    lat.sort()
    sample = next(iter(replies.values()), "")
    return {"all_answered_s": elapsed, "answered": len(replies), "replies": kinds,
            "latency_p50_s": lat[len(lat) // 2] if lat else None,
            "latency_max_s": lat[-1] if lat else None, "sample_reply": sample}


def sampler_main(out_path, stop_path):
    """Counts client-side TCP connections to WWW_IP:443 every 2 ms."""
    target = "%08X:%04X" % (int.from_bytes(socket.inet_aton(WWW_IP), "little"), 443)
    peak, samples, hist = 0, 0, {}
    while not os.path.exists(stop_path):
        n = 0
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                # rem_address == target and state not LISTEN/TIME_WAIT/CLOSE
                if parts[2] == target and parts[3] not in ("0A", "06", "07"):
                    n += 1
        peak = max(peak, n)
        hist[n] = hist.get(n, 0) + 1
        samples += 1
        time.sleep(0.002)
    with open(out_path, "w") as f:
        json.dump({"max_connections": peak, "samples": samples, "histogram": hist}, f)


# ---------------------------------------------------------------------------
# the world


class World:
    def __init__(self, n_domains):
        self.ns = f"stsguard-bench-{os.getpid()}"
        self.state = tempfile.mkdtemp(prefix="stsguard-bench-cold-")
        self.n = n_domains
        self.domains = [f"d{i:05d}.{ZONE}" for i in range(n_domains)]
        self.procs = []
        self.ns_made = False

    def run(self, cmd, **kw):
        return subprocess.run(cmd, check=True, **kw)

    def in_ns(self, cmd):
        return ["ip", "netns", "exec", self.ns] + cmd

    def spawn(self, name, cmd, env=None):
        log = open(os.path.join(self.state, f"{name}.log"), "ab")
        p = subprocess.Popen(self.in_ns(cmd), stdout=log, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        self.procs.append((name, p))
        return p

    def make_certs(self):
        """A private CA and one leaf per policy host (its own name only), as
        real policy hosts have; one EC key for all leaves keeps this fast."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
        c = os.path.join(self.state, "certs")
        os.makedirs(c)
        self.certs = c
        self.ca, self.key = f"{c}/ca.crt", f"{c}/leaf.key"
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)

        def name(cn):
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = name("stsguard bench cold-path CA")
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(start).not_valid_after(end)
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                             critical=True)
              .sign(ca_key, hashes.SHA256()))
        with open(self.ca, "wb") as f:
            f.write(ca.public_bytes(serialization.Encoding.PEM))
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        with open(self.key, "wb") as f:
            f.write(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        for d in self.domains:
            host = f"mta-sts.{d}"
            leaf = (x509.CertificateBuilder().subject_name(name(host)).issuer_name(ca_name)
                    .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(start).not_valid_after(end)
                    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
                    .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                                   critical=True)
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                    .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
                    .sign(ca_key, hashes.SHA256()))
            with open(f"{c}/{host}.crt", "wb") as f:
                f.write(leaf.public_bytes(serialization.Encoding.PEM))
        # Both services trust what a real host trusts, the system's roots,
        # plus the private CA: loading a store of that size is part of
        # what a fetch may cost.
        self.trust = f"{c}/trust.pem"
        with open(self.trust, "wb") as out:
            if os.path.exists(SYSTEM_BUNDLE):
                with open(SYSTEM_BUNDLE, "rb") as f:
                    out.write(f.read())
            with open(self.ca, "rb") as f:
                out.write(f.read())

    def write_dns(self):
        d = os.path.join(self.state, "dns")
        os.makedirs(d)
        zone = f"{d}/cold.zone"
        with open(zone, "w") as f:
            f.write(f"{ZONE}. 300 IN SOA ns.{ZONE}. root.{ZONE}. 1 3600 600 86400 60\n")
            f.write(f"{ZONE}. 300 IN NS ns.{ZONE}.\nns.{ZONE}. 300 IN A {DNS_IP}\n")
            f.write(f"mx.{ZONE}. 300 IN A {MX_IP}\n")
            for dom in self.domains:
                f.write(f'_mta-sts.{dom}. 300 IN TXT "v=STSv1; id=cold1"\n')
                f.write(f"mta-sts.{dom}. 300 IN A {WWW_IP}\n")
                f.write(f"{dom}. 300 IN MX 10 mx.{ZONE}.\n")
        self.unbound_conf = f"{d}/unbound.conf"
        with open(self.unbound_conf, "w") as f:
            f.write(f"""server:
    interface: {DNS_IP}
    port: 53
    do-ip4: yes
    do-ip6: no
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "{d}"
    pidfile: ""
    use-syslog: no
    logfile: "{self.state}/unbound.log"
    verbosity: 0
    num-threads: 1
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    do-not-query-localhost: yes
    local-zone: "." static
    local-zone: "{ZONE}." transparent
auth-zone:
    name: "{ZONE}."
    zonefile: "{zone}"
    for-downstream: no
    for-upstream: yes
    fallback-enabled: no
""")

    def write_nginx(self):
        ng = os.path.join(self.state, "nginx")
        www = os.path.join(self.state, "www", ".well-known")
        os.makedirs(www)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(ng, "tmp", sub))
        with open(os.path.join(www, "mta-sts.txt"), "w") as f:
            f.write(f"version: STSv1\nmode: enforce\nmx: mx.{ZONE}\nmax_age: 86400\n")
        self.access_log = f"{self.state}/nginx-access.log"
        self.nginx_conf = f"{ng}/nginx.conf"
        with open(self.nginx_conf, "w") as f:
            f.write(f"""user root;
worker_processes 1;
daemon off;
pid {ng}/nginx.pid;
error_log {self.state}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format cold '$msec $request_time $host $status';
    access_log {self.access_log} cold;
    client_body_temp_path {ng}/tmp/body;
    proxy_temp_path {ng}/tmp/proxy;
    fastcgi_temp_path {ng}/tmp/fastcgi;
    uwsgi_temp_path {ng}/tmp/uwsgi;
    scgi_temp_path {ng}/tmp/scgi;
    keepalive_timeout 0;
    types {{ }}
    default_type text/plain;
    server {{
        listen {WWW_IP}:443 ssl;
        server_name ~^mta-sts\\.;
        # Each policy host presents its own certificate (chosen by SNI).
        ssl_certificate {self.certs}/$ssl_server_name.crt;
        ssl_certificate_key {self.key};
        root {self.state}/www;
        location = /.well-known/mta-sts.txt {{ }}
        location / {{ return 404; }}
    }}
}}
""")

    def up(self):
        self.make_certs()
        self.write_dns()
        self.write_nginx()
        self.run(["ip", "netns", "add", self.ns])
        self.ns_made = True
        self.run(self.in_ns(["ip", "link", "set", "lo", "up"]))
        os.makedirs(f"/etc/netns/{self.ns}", exist_ok=True)
        with open(f"/etc/netns/{self.ns}/resolv.conf", "w") as f:
            f.write(f"nameserver {DNS_IP}\noptions timeout:2 attempts:2\n")
        with open(f"/etc/netns/{self.ns}/hosts", "w") as f:
            f.write("127.0.0.1 localhost\n")
        self.spawn("unbound", ["unbound", "-d", "-c", self.unbound_conf])
        self.spawn("nginx", ["nginx", "-c", self.nginx_conf, "-e", f"{self.state}/nginx-error.log"])
        self.wait_tcp(f"{WWW_IP}:443")
        self.wait_dns()

    def wait_tcp(self, addr, limit=20):
        ip, port = addr.rsplit(":", 1)
        code = ("import socket,sys,time\nend=time.time()+%d\n"
                "while time.time()<end:\n"
                "  try: socket.create_connection((%r,%s),timeout=0.5).close(); sys.exit(0)\n"
                "  except OSError: time.sleep(0.05)\nsys.exit(1)\n") % (limit, ip, port)
        if subprocess.run(self.in_ns(["/usr/bin/python3", "-c", code])).returncode != 0:
            raise RuntimeError(f"{addr} not reachable in {self.ns}; logs in {self.state}")

    def wait_dns(self, limit=20):
        end = time.time() + limit
        while time.time() < end:
            r = subprocess.run(self.in_ns(["dig", "+short", "+time=1", "+tries=1", f"@{DNS_IP}", "TXT",
                                           f"_mta-sts.{self.domains[0]}"]), capture_output=True, text=True)
            if "v=STSv1" in r.stdout:
                return
            time.sleep(0.1)
        raise RuntimeError(f"unbound does not answer; see {self.state}/unbound.log")

    def stop(self, p, limit=10):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(limit)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()

    def down(self):
        for _, p in reversed(self.procs):
            self.stop(p)
        self.procs = []
        if self.ns_made:
            # Anything left in our namespace is ours.
            pids = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "delete", self.ns], stderr=subprocess.DEVNULL)
            shutil.rmtree(f"/etc/netns/{self.ns}", ignore_errors=True)
            self.ns_made = False

    def child_env(self):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
               "SSL_CERT_FILE": self.trust, "SSL_CERT_DIR": os.path.dirname(self.ca)}
        return env


def service_pid(wrapper_pid):
    """ip netns exec execs the command: the Popen pid is the service itself."""
    return wrapper_pid


def nginx_requests(log_path, since):
    """Requests nginx logged after `since` (every fetch must reach it)."""
    n = 0
    with open(log_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4 and float(parts[0]) >= since:
                n += 1
    return n


def measure(world, name, cmd, addr, args, fetch_concurrency=None):
    port = addr.rsplit(":", 1)[1]
    p = world.spawn(name, cmd, env=world.child_env())
    world.wait_tcp(addr)
    pid = service_pid(p.pid)
    time.sleep(0.5)
    stop_flag = os.path.join(world.state, f"{name}.stop")
    samp_out = os.path.join(world.state, f"{name}.sampler.json")
    sampler = world.spawn(f"{name}-sampler", ["/usr/bin/python3", os.path.abspath(__file__), "--sampler",
                                              samp_out, stop_flag])
    time.sleep(0.3)
    since = time.time()
    cpu0 = cpu_seconds(pid)
    keys_file = os.path.join(world.state, "keys.txt")
    with open(keys_file, "w") as f:
        f.write("\n".join(world.domains) + "\n")
    r = subprocess.run(world.in_ns(["/usr/bin/python3", os.path.abspath(__file__), "--client", f"127.0.0.1:{port}",
                                    keys_file, str(args.conns), str(args.timeout)]),
                       capture_output=True, text=True, env=world.child_env())
    cpu1 = cpu_seconds(pid)
    open(stop_flag, "w").close()
    sampler.wait(10)
    if r.returncode != 0:
        raise RuntimeError(f"{name}: client failed: {r.stderr[-2000:]}")
    res = json.loads(r.stdout)
    res["server_cpu_s"] = cpu1 - cpu0
    time.sleep(0.2)  # let nginx write its log
    res["https_requests"] = nginx_requests(world.access_log, since)
    try:
        with open(samp_out) as f:
            s = json.load(f)
        res["max_tcp_connections_to_policy_host"] = s["max_connections"]
    except (OSError, ValueError):
        res["max_tcp_connections_to_policy_host"] = None
    res["max_fetches_in_flight"] = res["max_tcp_connections_to_policy_host"]
    res["in_flight_method"] = ("client TCP connections to the policy host (one per fetch, TLS handshake "
                               "included), sampled every 2 ms from /proc/net/tcp in the namespace")
    if fetch_concurrency is not None:
        res["fetch_concurrency"] = fetch_concurrency
    world.stop(p)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stsguard")
    ap.add_argument("--loadgen")
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=64, help="client connections (Postfix smtp processes)")
    ap.add_argument("--fetch-concurrency", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--out")
    ap.add_argument("--client", nargs=4, metavar=("ADDR", "KEYS", "CONNS", "TIMEOUT"))
    ap.add_argument("--sampler", nargs=2, metavar=("OUT", "STOPFILE"))
    args = ap.parse_args()
    if args.client:
        addr, keys, conns, timeout = args.client
        with open(keys) as f:
            ks = [k.strip() for k in f if k.strip()]
        print(json.dumps(asyncio.run(client_main(addr, ks, int(conns), float(timeout)))))
        return 0
    if args.sampler:
        sampler_main(*args.sampler)
        return 0
    if os.geteuid() != 0:
        sys.exit("coldworld: needs root (network namespace)")
    if not (args.stsguard and args.out):
        sys.exit("coldworld: --stsguard and --out are required")

    world = World(args.domains)
    atexit.register(world.down)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: sys.exit(1))
    result = {"domains": args.domains, "conns": args.conns, "namespace": world.ns}
    try:
        t0 = time.time()
        world.up()
        result["world_up_s"] = round(time.time() - t0, 1)
        print(f"  world {world.ns} up in {result['world_up_s']} s ({args.domains} domains)", flush=True)

        cache = os.path.join(world.state, "stsguard-cache")
        os.makedirs(cache)
        conf = os.path.join(world.state, "stsguard.conf")
        with open(conf, "w") as f:
            f.write(f"""cache_dir = {cache}
listen = inet:127.0.0.1:8461
log_target = stderr
dns_servers = {DNS_IP}
tls_ca_file = {world.trust}
policy_fetch_allow_private = yes
fetch_concurrency = {args.fetch_concurrency}
lookup_wait = 60s
discovery_queue_max = {max(10000, args.domains)}
sweep_interval = 1d
""")
        result["stsguard"] = measure(world, "stsguard", [args.stsguard, "-c", conf, "serve"], "127.0.0.1:8461", args,
                                     args.fetch_concurrency)
        s = result["stsguard"]
        print(f"  stsguard: {s['answered']} answered in {s['all_answered_s']:.2f} s, CPU {s['server_cpu_s']:.2f} s, "
              f"replies {s['replies']}, fetches in flight max {s['max_fetches_in_flight']} "
              f"(requests at nginx {s['https_requests']})",
              flush=True)

        peer_db = os.path.join(world.state, "peer.db")
        peer_yml = os.path.join(world.state, "peer.yml")
        with open(peer_yml, "w") as f:
            f.write(f'host: 127.0.0.1\nport: 8462\nreuse_port: true\ncache:\n  type: sqlite\n  options:\n'
                    f'    filename: "{peer_db}"\ndefault_zone:\n  timeout: 30\n')
        result["peer"] = measure(world, "peer", ["/usr/bin/mta-sts-daemon", "-v", "warn", "-c", peer_yml],
                                 "127.0.0.1:8462", args)
        pr = result["peer"]
        print(f"  peer:     {pr['answered']} answered in {pr['all_answered_s']:.2f} s, CPU {pr['server_cpu_s']:.2f} s, "
              f"replies {pr['replies']}, fetches in flight max {pr['max_fetches_in_flight']}", flush=True)
        result["speedup"] = pr["all_answered_s"] / s["all_answered_s"]
        result["cpu_ratio_peer_over_stsguard"] = pr["server_cpu_s"] / s["server_cpu_s"] if s["server_cpu_s"] else None
        print(f"  stsguard answers all {args.domains} {result['speedup']:.1f}x faster than the peer, "
              f"using {result['cpu_ratio_peer_over_stsguard'] or 0:.1f}x less CPU", flush=True)
    finally:
        world.down()
        result["state_dir"] = world.state
        if args.out:
            with open(args.out, "w") as f:
                json.dump(result, f, indent=1)
        shutil.rmtree(world.state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
