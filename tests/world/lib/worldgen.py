#!/usr/bin/python3
"""Generate the test world's configuration from domains.conf.

Usage: worldgen.py WORLD_DIR STATE_DIR

Writes (under STATE_DIR):
  world.json            parsed domains + address plan (used by the other tools)
  dns/unbound.conf      resolver that knows only the .test TLD (auth-zone),
                        remote control on 127.0.0.1:8953 (no certs) for
                        runtime edits ("world set-txt" etc.)
  dns/test.zone         the .test zone (one absolute record per line)
  nginx/nginx.conf      HTTPS vhosts mta-sts.<domain> (SNI, 127.0.2.N:443)
  www/<domain>/.well-known/mta-sts.txt
  mx/mx.json            receiving SMTP hosts for mx-server.py
  faults/faults.json    misbehaving servers for fault-server.py (SERVFAIL DNS,
                        silent DNS, stalling policy hosts)
  certs/...             private CA + server certificates (only if missing)

Re-running it is cheap and idempotent: certificates are made once per state
directory, everything else is rewritten from domains.conf.
"""
import base64
import concurrent.futures
import hashlib
import json
import os
import shlex
import subprocess
import sys

from faketime import faketime_env

DNS_IP = "127.0.0.53"
SERVFAIL_DNS_IP = "127.0.0.54"
SILENT_DNS_IP = "127.0.0.55"
SENDER_IP = "127.0.0.1"
CONTROL_IP, CONTROL_PORT = "127.0.0.1", 8953
TTL = 300
CERT_KINDS = ("good", "wrongname", "expired", "selfsigned")
MX_KINDS = CERT_KINDS + ("nostarttls",)
HTTPS_KINDS = ("yes", "no", "stall", "stall-body")
KEYS = {"txt", "id", "txt_cname", "tlsrpt", "https", "https_cert", "http_status",
        "content_type", "mode", "policy_mx", "max_age", "policy", "policy_pad",
        "mx", "tlsa", "expect", "expect_mx", "expect_tls", "note"}
MULTI_KEYS = {"txt"}          # keys that may be repeated (one record each)
REDIRECT_TARGET = "https://mta-sts.good-enforce.test/.well-known/mta-sts.txt"


def die(msg):
    sys.stderr.write("worldgen: %s\n" % msg)
    sys.exit(2)


def parse_domains(path):
    domains = []
    try:
        f = open(path)
    except OSError as e:
        die("cannot read the domain list: %s" % e)
    with f:
        for lineno, line in enumerate(f, 1):
            try:
                words = shlex.split(line, comments=True)
            except ValueError as e:
                die("%s:%d: %s" % (path, lineno, e))
            if not words:
                continue
            d = {"domain": words[0].lower().rstrip("."), "txt": []}
            for w in words[1:]:
                k, sep, v = w.partition("=")
                if not sep:
                    die("%s:%d: expected key=value, got %r" % (path, lineno, w))
                if k not in KEYS:
                    die("%s:%d: unknown key %r" % (path, lineno, k))
                if k in MULTI_KEYS:
                    d[k].append(v)
                elif k in d:
                    die("%s:%d: key %r given twice" % (path, lineno, k))
                else:
                    d[k] = v
            domains.append(d)
    return domains


def pad_policy(body, size):
    """Append RFC 8461 extension lines ("name: value") until len >= size."""
    n = 0
    while len(body.encode()) < size:
        n += 1
        body += "x-pad-%05d: %s\n" % (n, "p" * 80)
    return body


def normalise(d):
    dom = d["domain"]
    out = {
        "domain": dom,
        "id": d.get("id", "20240101T000000"),
        "mode": d.get("mode", "enforce"),
        "max_age": d.get("max_age", "86400"),
        "http_status": int(d.get("http_status", "200")),
        "content_type": d.get("content_type", "text/plain"),
        "https_cert": d.get("https_cert", "good"),
        "expect": d.get("expect", ""),
        "expect_tls": d.get("expect_tls", ""),
        "expect_mx": d.get("expect_mx", ""),
        "note": d.get("note", ""),
        "txt_cname": d.get("txt_cname", "").lower().rstrip(".") or None,
        "tlsa": d.get("tlsa", "no"),
    }
    txts = []
    for t in d["txt"] or ["yes"]:
        if t == "no":
            txts = []
            break
        txts.append("v=STSv1; id=%s" % out["id"] if t == "yes" else t)
    out["txts"] = txts
    out["txt"] = txts[0] if txts else None     # kept for older readers
    tlsrpt = d.get("tlsrpt", "yes")
    if tlsrpt == "yes":
        tlsrpt = "v=TLSRPTv1; rua=mailto:tlsrpt@%s" % dom
    elif tlsrpt == "no":
        tlsrpt = None
    out["tlsrpt"] = tlsrpt
    https = d.get("https", "yes" if (txts or out["txt_cname"]) else "no")
    if https not in HTTPS_KINDS:
        die("%s: bad https %r (one of %s)" % (dom, https, ", ".join(HTTPS_KINDS)))
    out["https"] = https != "no"
    out["https_kind"] = https
    if out["https_cert"] not in CERT_KINDS:
        die("%s: bad https_cert %r" % (dom, out["https_cert"]))
    mxs = []
    for item in d.get("mx", "mx.%s:good" % dom).split(","):
        name, _, kind = item.partition(":")
        kind = kind or "good"
        if kind not in MX_KINDS and not kind.startswith("as="):
            die("%s: bad MX cert kind %r" % (dom, kind))
        mxs.append({"name": name.lower(), "cert": kind})
    out["mx"] = mxs
    out["policy_mx"] = d.get("policy_mx", ",".join(m["name"] for m in mxs)).split(",")
    if "policy" in d:
        body = d["policy"].replace("\\r", "\r").replace("\\n", "\n")
    else:
        body = "version: STSv1\nmode: %s\n" % out["mode"]
        body += "".join("mx: %s\n" % m for m in out["policy_mx"] if m)
        body += "max_age: %s\n" % out["max_age"]
    if "policy_pad" in d:
        body = pad_policy(body, int(d["policy_pad"]))
    out["policy_body"] = body
    return out


def txt_rdata(text):
    """Zone-file TXT RDATA: <=255-byte character-strings, escaped (RFC 1035 5.1)."""
    raw = text.encode("utf-8", "surrogateescape")
    chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]

    def esc(chunk):
        out = []
        for b in chunk:
            if b in (0x22, 0x5C):
                out.append("\\" + chr(b))
            elif 0x20 <= b < 0x7F:
                out.append(chr(b))
            else:
                out.append("\\%03d" % b)
        return '"%s"' % "".join(out)
    return " ".join(esc(c) for c in chunks)


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    if r.returncode != 0:
        die("command failed: %s\n%s" % (" ".join(cmd), r.stdout.decode(errors="replace")))
    return r.stdout


class CertMaker:
    """Private CA and server certificates (openssl CLI, EC P-256)."""

    def __init__(self, certdir):
        self.dir = certdir
        os.makedirs(certdir, exist_ok=True)
        self.ca_crt = os.path.join(certdir, "ca.crt")
        self.ca_key = os.path.join(certdir, "ca.key")
        if not (os.path.exists(self.ca_crt) and os.path.exists(self.ca_key)):
            # CA valid 2019-01-01 .. 2039 so that the expired leaf (2020) was
            # issued inside the CA's lifetime.
            run(["env"] + faketime_env("@2019-01-01 00:00:00") + [
                 "openssl", "req", "-x509", "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", self.ca_key + ".tmp", "-out", self.ca_crt + ".tmp",
                 "-days", "7300",
                 "-subj", "/O=stsguard test world/CN=stsguard Test World Root CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            os.chmod(self.ca_key + ".tmp", 0o600)
            os.rename(self.ca_key + ".tmp", self.ca_key)
            os.rename(self.ca_crt + ".tmp", self.ca_crt)

    def paths(self, name, kind):
        sub = os.path.join(self.dir, kind.replace("=", "-"))
        return os.path.join(sub, name + ".crt"), os.path.join(sub, name + ".key")

    def get(self, name, kind):
        """Return (crt, key) for host NAME with certificate KIND (made if missing)."""
        crt, key = self.paths(name, kind)
        if os.path.exists(crt) and os.path.exists(key):
            return crt, key
        os.makedirs(os.path.dirname(crt), exist_ok=True)
        cn = {"wrongname": "wrong-name.invalid"}.get(kind, name)
        if kind.startswith("as="):          # CA-signed, valid for another name
            cn = kind[3:]
        tmpkey, tmpcrt = key + ".%d.tmp" % os.getpid(), crt + ".%d.tmp" % os.getpid()
        # One "openssl req -x509" per certificate (OpenSSL 3.0: -CA signs it).
        cmd = ["openssl", "req", "-x509", "-newkey", "ec",
               "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
               "-keyout", tmpkey, "-out", tmpcrt, "-subj", "/CN=" + cn,
               "-addext", "subjectAltName=DNS:" + cn,
               "-addext", "basicConstraints=CA:FALSE",
               "-addext", "keyUsage=critical,digitalSignature",
               "-addext", "extendedKeyUsage=serverAuth,clientAuth"]
        if kind != "selfsigned":
            cmd += ["-CA", self.ca_crt, "-CAkey", self.ca_key]
        if kind == "expired":
            # issued 2020-01-01, valid 30 days -> long expired
            cmd = ["env"] + faketime_env("@2020-01-01 00:00:00") + cmd + ["-days", "30"]
        else:
            cmd += ["-days", "825"]
        run(cmd)
        os.chmod(tmpkey, 0o600)
        os.rename(tmpkey, key)
        os.rename(tmpcrt, crt)
        return crt, key

    def make_all(self, wanted):
        """Make the missing certificates of [(name, kind)] in parallel."""
        todo = sorted({w for w in wanted if not all(map(os.path.exists, self.paths(*w)))})
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
            list(ex.map(lambda w: self.get(*w), todo))


def spki_sha256(crt):
    """TLSA 3 1 1 association data: SHA-256 of the DER SubjectPublicKeyInfo."""
    pem = run(["openssl", "x509", "-in", crt, "-noout", "-pubkey"]).decode()
    der = base64.b64decode("".join(l for l in pem.splitlines() if l and not l.startswith("-----")))
    return hashlib.sha256(der).hexdigest()


def main():
    harness, state = sys.argv[1], sys.argv[2]
    conf = os.environ.get("WORLD_DOMAINS", os.path.join(harness, "domains.conf"))
    domains = [normalise(d) for d in parse_domains(conf)]
    seen_dom = set()
    for d in domains:
        if d["domain"] in seen_dom:
            die("domain %s listed twice" % d["domain"])
        seen_dom.add(d["domain"])
    certs = CertMaker(os.path.join(state, "certs"))
    logs = os.path.join(state, "logs")

    # ---- address plan -------------------------------------------------
    mx_hosts = {}      # name -> {ip, cert}
    sts_hosts = {}     # name -> domain dict
    for d in domains:
        for m in d["mx"]:
            h = mx_hosts.get(m["name"])
            if h is None:
                n = len(mx_hosts) + 1
                if n > 254:
                    die("too many MX hosts")
                mx_hosts[m["name"]] = {"name": m["name"], "ip": "127.0.1.%d" % n,
                                       "cert_kind": m["cert"]}
            elif h["cert_kind"] != m["cert"]:
                die("MX host %s used with different cert kinds" % m["name"])
            m["ip"] = mx_hosts[m["name"]]["ip"]
        if d["https"]:
            n = len(sts_hosts) + 1
            name = "mta-sts." + d["domain"]
            d["sts_host"] = name
            # 127.0.2.1-254, then 127.0.3.1-254, ... (large generated worlds)
            q, r = divmod(n - 1, 254)
            if q > 252:
                die("too many mta-sts hosts")
            d["sts_ip"] = "127.0.%d.%d" % (2 + q, r + 1)
            sts_hosts[name] = d

    # ---- certificates -------------------------------------------------
    certs.make_all([(h["name"], h["cert_kind"]) for h in mx_hosts.values()
                    if h["cert_kind"] != "nostarttls"]
                   + [(name, d["https_cert"]) for name, d in sts_hosts.items()
                      if d["https_kind"] != "stall"]
                   + [("default.invalid", "good")])
    for h in mx_hosts.values():
        if h["cert_kind"] == "nostarttls":
            h["crt"] = h["key"] = None
        else:
            h["crt"], h["key"] = certs.get(h["name"], h["cert_kind"])
    for name, d in sts_hosts.items():
        if d["https_kind"] != "stall":
            d["sts_crt"], d["sts_key"] = certs.get(name, d["https_cert"])
    default_crt, default_key = certs.get("default.invalid", "good")

    # ---- DNS (unbound, everything local) -------------------------------
    os.makedirs(os.path.join(state, "dns"), exist_ok=True)
    rr = []
    rr.append("test. %d IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60" % TTL)
    rr.append("test. %d IN NS ns.test." % TTL)
    rr.append("ns.test. %d IN A %s" % (TTL, DNS_IP))
    rr.append("sender.world.test. %d IN A %s" % (TTL, SENDER_IP))
    for d in domains:
        dom = d["domain"]
        for pref, m in enumerate(d["mx"], 1):
            rr.append("%s. %d IN MX %d %s." % (dom, TTL, pref * 10, m["name"]))
        owner = "_mta-sts.%s" % dom
        if d["txt_cname"]:
            rr.append("%s. %d IN CNAME %s." % (owner, TTL, d["txt_cname"]))
            owner = d["txt_cname"]
        for t in d["txts"]:
            rr.append("%s. %d IN TXT %s" % (owner, TTL, txt_rdata(t)))
        if d["tlsrpt"] is not None:
            rr.append("_smtp._tls.%s. %d IN TXT %s" % (dom, TTL, txt_rdata(d["tlsrpt"])))
        if d["https"]:
            rr.append("%s. %d IN A %s" % (d["sts_host"], TTL, d["sts_ip"]))
        if d["tlsa"] != "no":
            for m in d["mx"]:
                h = mx_hosts[m["name"]]
                if d["tlsa"] == "yes":
                    if not h["crt"]:
                        continue
                    data = "3 1 1 " + spki_sha256(h["crt"])
                else:
                    data = d["tlsa"]
                rr.append("_25._tcp.%s. %d IN TLSA %s" % (m["name"], TTL, data))
    for h in mx_hosts.values():
        rr.append("%s. %d IN A %s" % (h["name"], TTL, h["ip"]))
    extra = os.path.join(harness, "dns-extra.conf")
    if os.path.exists(extra):
        with open(extra) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    rr.append(line)
    seen = set()
    rr = [r for r in rr if not (r in seen or seen.add(r))]
    zonefile = os.path.join(state, "dns", "test.zone")
    with open(zonefile + ".tmp", "w") as f:
        f.write("; the .test TLD of the world - generated by worldgen.py; runtime\n"
                "; edits (world set-txt ...) rewrite this file and reload it\n")
        for r in rr:
            f.write(r + "\n")
    os.rename(zonefile + ".tmp", zonefile)
    unbound_conf = os.path.join(state, "dns", "unbound.conf")
    with open(unbound_conf + ".tmp", "w") as f:
        f.write("""# generated by worldgen.py - do not edit
server:
    interface: %(ip)s
    port: 53
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "%(dir)s"
    pidfile: ""
    use-syslog: no
    logfile: "%(log)s"
    verbosity: 1
    log-queries: yes
    num-threads: 1
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    # Nothing is ever forwarded or recursed: "." is a static local zone, so
    # every name outside .test is NXDOMAIN without a query being sent.
    do-not-query-localhost: yes
    local-zone: "." static
    # .test is passed on to the iterator, which takes it from the auth-zone
    # below (for-upstream) instead of the network.  So clients see a real
    # recursive resolver: RA set, no AA, CNAME chains followed, TTLs cached.
    local-zone: "test." transparent
    cache-max-ttl: 60
    cache-max-negative-ttl: 5
auth-zone:
    name: "test."
    zonefile: "%(zone)s"
    for-downstream: no
    for-upstream: yes
    fallback-enabled: no
# Runtime edits reload the zone and flush the cache through unbound-control.
# The control port exists only inside the world's network namespace.
remote-control:
    control-enable: yes
    control-interface: %(cip)s
    control-port: %(cport)d
    control-use-cert: no
""" % {"ip": DNS_IP, "dir": os.path.join(state, "dns"),
       "log": os.path.join(logs, "unbound.log"), "zone": zonefile,
       "cip": CONTROL_IP, "cport": CONTROL_PORT})
    os.rename(unbound_conf + ".tmp", unbound_conf)

    # ---- HTTPS policy hosts (nginx) -----------------------------------
    ngdir = os.path.join(state, "nginx")
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        os.makedirs(os.path.join(ngdir, sub), exist_ok=True)
    flagdir = os.path.join(state, "www-flags")
    os.makedirs(flagdir, exist_ok=True)
    servers = []
    nginx_ips = []
    for name, d in sts_hosts.items():
        if d["https_kind"] != "yes":
            continue                    # served by fault-server.py
        www = os.path.join(state, "www", d["domain"])
        os.makedirs(os.path.join(www, ".well-known"), exist_ok=True)
        pfile = os.path.join(www, ".well-known", "mta-sts.txt")
        with open(pfile + ".tmp", "w") as f:
            f.write(d["policy_body"])
        os.rename(pfile + ".tmp", pfile)
        nginx_ips.append(d["sts_ip"])
        st = d["http_status"]
        if st == 200:
            action = "default_type \"%s\";" % d["content_type"]
        elif 300 <= st < 400:
            action = "return %d %s;" % (st, REDIRECT_TARGET)
        else:
            action = "return %d;" % st
        servers.append("""
    server {
        listen %(ip)s:443 ssl;
        server_name %(name)s;
        ssl_certificate %(crt)s;
        ssl_certificate_key %(key)s;
        root %(www)s;
        # "world policy-host DOMAIN down" creates this flag file.
        if (-f %(flag)s) { return 503; }
        location = /.well-known/mta-sts.txt { %(action)s }
        location / { return 404; }
    }""" % {"ip": d["sts_ip"], "name": name, "crt": d["sts_crt"], "key": d["sts_key"],
            "www": www, "action": action,
            "flag": os.path.join(flagdir, d["domain"] + ".down")})
    # Every address also gets a default_server with a certificate for
    # default.invalid: a client that sends no (or a wrong) SNI name fails.
    # 127.0.0.1:443 exists so that readiness can be probed in any world.
    default_listens = "".join("        listen %s:443 ssl default_server;\n" % ip
                              for ip in ["127.0.0.1"] + nginx_ips)
    with open(os.path.join(ngdir, "nginx.conf.tmp"), "w") as f:
        f.write("""# generated by worldgen.py - do not edit
user root;
worker_processes 1;
daemon off;
pid %(ng)s/nginx.pid;
error_log %(logs)s/nginx-error.log info;
events { worker_connections 1024; }
http {
    # $host first after the address: tests count the requests per policy
    # host (worldlib.https_hits).
    log_format world '$remote_addr $host [$time_iso8601] "$request" $status '
                     '$body_bytes_sent "$http_user_agent"';
    access_log %(logs)s/nginx-access.log world;
    client_body_temp_path %(ng)s/tmp/body;
    proxy_temp_path %(ng)s/tmp/proxy;
    fastcgi_temp_path %(ng)s/tmp/fastcgi;
    uwsgi_temp_path %(ng)s/tmp/uwsgi;
    scgi_temp_path %(ng)s/tmp/scgi;
    server_tokens off;
    open_file_cache off;
    types { }
    default_type text/plain;
    server {
%(dl)s        server_name _;
        ssl_certificate %(dcrt)s;
        ssl_certificate_key %(dkey)s;
        return 421;
    }%(servers)s
}
""" % {"ng": ngdir, "logs": logs, "dcrt": default_crt, "dkey": default_key,
       "dl": default_listens, "servers": "".join(servers)})
    os.rename(os.path.join(ngdir, "nginx.conf.tmp"), os.path.join(ngdir, "nginx.conf"))

    # ---- receiving MX hosts -------------------------------------------
    os.makedirs(os.path.join(state, "mx"), exist_ok=True)
    with open(os.path.join(state, "mx", "mx.json"), "w") as f:
        json.dump({"maildir": os.path.join(state, "mail"),
                   "hosts": list(mx_hosts.values())}, f, indent=1)

    # ---- misbehaving servers -------------------------------------------
    os.makedirs(os.path.join(state, "faults"), exist_ok=True)
    stalls = [{"name": name, "ip": d["sts_ip"], "mode": d["https_kind"],
               "crt": d.get("sts_crt"), "key": d.get("sts_key"),
               "content_type": d["content_type"], "body": d["policy_body"]}
              for name, d in sts_hosts.items() if d["https_kind"] in ("stall", "stall-body")]
    with open(os.path.join(state, "faults", "faults.json"), "w") as f:
        json.dump({"servfail_dns": [SERVFAIL_DNS_IP], "silent_dns": [SILENT_DNS_IP],
                   "stall_https": stalls}, f, indent=1)

    # what "world up" waits for: the resolver answers, and the last socket
    # of each server (they bind in file order) accepts connections
    checks = ["dns:" + DNS_IP, "tcp:%s:%d" % (CONTROL_IP, CONTROL_PORT),
              "tcp:%s:443" % (nginx_ips[-1] if nginx_ips else "127.0.0.1"),
              "tcp:%s:53" % SILENT_DNS_IP]
    if mx_hosts:
        checks.append("tcp:%s:25" % list(mx_hosts.values())[-1]["ip"])
    if stalls:
        checks.append("tcp:%s:443" % stalls[-1]["ip"])
    with open(os.path.join(state, "ready-checks"), "w") as f:
        f.write(" ".join(checks) + "\n")

    with open(os.path.join(state, "world.json"), "w") as f:
        json.dump({"dns_ip": DNS_IP, "servfail_dns_ip": SERVFAIL_DNS_IP,
                   "silent_dns_ip": SILENT_DNS_IP, "sender_ip": SENDER_IP,
                   "control": "%s@%d" % (CONTROL_IP, CONTROL_PORT),
                   "ca": certs.ca_crt, "domains": domains,
                   "mx_hosts": list(mx_hosts.values())}, f, indent=1)


if __name__ == "__main__":
    main()
