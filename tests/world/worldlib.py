"""Helpers for world tests (tests/world/*_test.py).

The world is brought up once by run_world_tests.py, which exports
WORLD_STATE and WORLD_NS; every helper here talks to that world.  Run by
hand against a world you started yourself (`tests/world/world up`), the
defaults are the same as the `world` script's (tests/world/state,
namespace stsguard-world).

Every command runs inside the world's network namespace with the world's
clean environment (env -i, SSL_CERT_FILE = the world CA, WORLD_DNS, ...),
exactly like `world exec`.  A command that outruns its timeout is killed
with its whole process group and the test fails with WorldTimeout.

Tests that change the world (set_txt, policy_host, set_policy, ...) must
undo it: self.addCleanup(worldlib.reset).
"""
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import unittest
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from faketime import faketime_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WORLD = os.path.join(HERE, "world")
PY = "/usr/bin/python3"
LIB = os.path.join(HERE, "lib")

DNS = "127.0.0.53"            # unbound: the .test TLD, nothing else
DNS_SERVFAIL = "127.0.0.54"   # answers SERVFAIL to everything
DNS_SILENT = "127.0.0.55"     # reads queries, never answers
POLICY_HOST, POLICY_PORT = "127.0.0.1", 8461

Run = namedtuple("Run", "rc out err")


class WorldError(AssertionError):
    """A world command failed (counts as a test failure, not an error)."""


class WorldTimeout(AssertionError):
    """A command did not finish in time (it has been killed)."""


def state_dir():
    return os.path.abspath(os.environ.get("WORLD_STATE", os.path.join(HERE, "state")))


def namespace():
    return os.environ.get("WORLD_NS", "stsguard-world")


def state_path(*parts):
    return os.path.join(state_dir(), *parts)


def ca_file():
    return state_path("certs", "ca.crt")


def is_up():
    return os.path.exists("/run/netns/" + namespace()) and os.path.exists(state_path("world.json"))


def world_json():
    with open(state_path("world.json")) as f:
        return json.load(f)


def _run(argv, timeout, input=None, env=None):
    """Run argv in its own process group; kill the group on timeout."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, env=env)
    try:
        out, err = p.communicate(input.encode() if isinstance(input, str) else input,
                                 timeout=timeout)
    except BaseException as e:      # timeout, or the runner's alarm/signal
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        if not isinstance(e, subprocess.TimeoutExpired):
            raise
        raise WorldTimeout("timed out after %gs: %s\nstdout: %s\nstderr: %s" % (
            timeout, shlex.join(argv), out.decode(errors="replace")[-2000:],
            err.decode(errors="replace")[-2000:]))
    return Run(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def world(*args, timeout=60, input=None, check=True, env_extra=None):
    """Run `tests/world/world ARGS` for this world; returns Run."""
    env = dict(os.environ, WORLD_STATE=state_dir(), WORLD_NS=namespace())
    env.update(env_extra or {})
    r = _run([WORLD] + [str(a) for a in args], timeout, input=input, env=env)
    if check and r.rc != 0:
        raise WorldError("world %s failed (exit %d):\n%s%s" % (
            shlex.join(str(a) for a in args), r.rc, r.out, r.err))
    return r


_env_cache = {}


def world_env():
    """The KEY=VALUE list every process in the world gets."""
    key = (state_dir(), namespace())
    if key not in _env_cache:
        _env_cache[key] = world("env", timeout=10).out.splitlines()
    return _env_cache[key]


def run_in_world(cmd, timeout=30, input=None):
    """Run cmd (argv list, or a string for bash -c) inside the world -> Run."""
    if isinstance(cmd, str):
        cmd = ["bash", "-c", cmd]
    if not os.path.exists("/run/netns/" + namespace()):
        raise WorldError("world %s is not up" % namespace())
    argv = ["ip", "netns", "exec", namespace(), "env", "-i"] + world_env() + \
        [str(c) for c in cmd]
    return _run(argv, timeout, input=input)


def stsguard(*args, timeout=30, input=None):
    """Run $STSGUARD ARGS inside the world -> (rc, stdout, stderr)."""
    return tuple(run_in_world([stsguard_bin()] + [str(a) for a in args], timeout=timeout, input=input))


# ---- DNS ------------------------------------------------------------------
Dig = namedtuple("Dig", "rc status flags answers out")


def dig(name, rtype="A", server=DNS, tcp=False, time_s=2, timeout=15):
    """dig @server name rtype inside the world.

    status: "NOERROR" | "NXDOMAIN" | "SERVFAIL" | ... | None (no answer at
    all; then rc is dig's 9).  answers: [(owner, type, rdata), ...] of the
    answer section.  flags: set like {"qr", "rd", "ra"}.
    """
    cmd = ["dig", "@" + server, name, rtype, "+time=%d" % time_s, "+tries=1",
           "+nocmd", "+nostats"] + (["+tcp"] if tcp else [])
    r = run_in_world(cmd, timeout=timeout)
    status, flags, answers, section = None, set(), [], None
    for line in r.out.splitlines():
        if "status:" in line:
            status = line.split("status:")[1].split(",")[0].strip()
        elif line.startswith(";; flags:"):
            flags = set(line.split(":")[1].split(";")[0].split())
        elif line.startswith(";; ") and line.endswith("SECTION:"):
            section = line[3:].split()[0]
        elif section == "ANSWER" and line and not line.startswith(";"):
            f = line.split(None, 4)
            if len(f) == 5:
                answers.append((f[0], f[3], f[4]))
    return Dig(r.rc, status, flags, answers, r.out + r.err)


# ---- mail -----------------------------------------------------------------
def send(domain, localpart="postmaster"):
    """Submit a message to LOCALPART@DOMAIN via the sending Postfix; -> queue id."""
    return world("send", domain, localpart, timeout=30).out.strip()


def result(domain, qid=None, wait=20):
    """Outcome of the newest (or given) message to DOMAIN, waiting up to
    `wait` s for the first delivery attempt.  dict with status (delivered |
    deferred | bounced | pending | unknown), tls, relay, dsn, reason, details."""
    args = ["result", domain] + ([qid] if qid else []) + ["--wait", str(wait), "--json"]
    r = world(*args, timeout=wait + 30, check=False)
    try:
        return json.loads(r.out)
    except ValueError:
        raise WorldError("world result gave no JSON (exit %d): %s%s" % (r.rc, r.out, r.err))


def mail(domain):
    """Paths of the messages the MX hosts stored for DOMAIN (oldest first)."""
    d = state_path("mail", domain)
    return sorted(os.path.join(d, f) for f in os.listdir(d)) if os.path.isdir(d) else []


def clear_queue():
    world("clear", check=False, timeout=30)


# ---- policy service ---------------------------------------------------------
def smq(key, timeout=10, policy_map=None):
    """Ask the policy service for KEY over the socketmap; -> raw answer
    (e.g. "OK secure match=..." or "NOTFOUND ").  A client-side failure comes
    back as "CLIENT-ERROR ..."."""
    return smq_timed(key, timeout, policy_map)[0]


def smq_timed(key, timeout=10, policy_map=None):
    """smq() -> (answer, seconds the service took, measured by the client
    inside the world: no process start-up in it)."""
    extra = {"POLICY_MAP": policy_map} if policy_map else None
    r = world("smq", key, timeout=timeout + 10, check=False, env_extra=extra)
    parts = r.out.rstrip("\n").split("\t")
    if len(parts) < 3:
        raise WorldError("world smq %s: unexpected output (exit %d): %r %s" % (key, r.rc, r.out, r.err))
    return parts[1], float(parts[2])


def start_policy(cmd, policy_map=None, wait=20):
    """Start CMD (string run by bash, or argv list) as the world's policy
    service and wait until it accepts on 127.0.0.1:8461 (or the unix socket
    of policy_map="socketmap:unix:/path:postfix")."""
    if not isinstance(cmd, str):
        cmd = shlex.join(str(c) for c in cmd)
    extra = {"POLICY_CMD": cmd, "POLICY_WAIT": str(wait)}
    if policy_map:
        extra["POLICY_MAP"] = policy_map
    world("policy-up", timeout=wait + 30, env_extra=extra)


def stop_policy():
    world("policy-down", timeout=30)


def static_policy_cmd(**answers):
    """Command line of lib/static-policy.py answering {domain: answer}."""
    return [PY, "-u", os.path.join(LIB, "static-policy.py")] + \
        ["%s=%s" % (k, v) for k, v in answers.items()]


# ---- runtime edits (undo with reset()) --------------------------------------
def set_txt(domain, *texts):
    """_mta-sts.DOMAIN gets exactly these TXT records (a CNAME there is removed)."""
    world("set-txt", domain, *texts)


def del_txt(domain):
    world("del-txt", domain)


def dns_add(rr):
    """Add one record, 'NAME. TTL IN TYPE RDATA', to the .test zone."""
    world("dns-add", rr)


def dns_del(name, rtype=None):
    world("dns-del", name, *([rtype] if rtype else []))


def set_policy(domain, body):
    """Replace the policy body served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt."""
    world("set-policy", domain, "-", input=body)


def policy_host(domain, state):
    """state "down": the policy host answers 503; "up": normal again."""
    world("policy-host", domain, state)


def reset():
    """Undo every runtime edit (DNS, policy bodies, policy hosts down)."""
    world("reset", timeout=30)


# ---- stsguard in the world ---------------------------------------------------
# Settings every stsguard run in the world starts from: the world's
# resolver and CA, policy hosts on 127.0.2.N allowed, and short timeouts so
# that failure cases (stalls, silent DNS) cost seconds, not minutes.
STSGUARD_SETTINGS = {
    "dns_servers": DNS,
    "dns_timeout": "1s",
    "dns_retries": "1",
    "tls_ca_file": None,                # ca_file() of this world, filled in below
    "policy_fetch_allow_private": "yes",
    "policy_fetch_connect_timeout": "2s",
    "policy_fetch_timeout": "3s",
    "cache_dir": None,                  # STATE/stsguard/NAME.cache
    "listen": "inet:%s:%d" % (POLICY_HOST, POLICY_PORT),
    "log_target": "stderr",
    "log_decisions": "yes",
    "lookup_wait": "5s",
}


def stsguard_bin():
    """Absolute path of $STSGUARD; skips the test when it is unset."""
    binary = os.environ.get("STSGUARD")
    if not binary:
        raise unittest.SkipTest("STSGUARD is not set (path of the stsguard binary)")
    binary = os.path.abspath(binary)
    if not os.access(binary, os.X_OK):
        raise WorldError("STSGUARD=%s is not an executable file" % binary)
    return binary


def stsguard_config(name, fresh_cache=False, **settings):
    """Write STATE/stsguard/NAME.cf (main.cf style) from STSGUARD_SETTINGS
    plus SETTINGS (a value of None drops the key) -> its path.  The cache
    is STATE/stsguard/NAME.cache unless cache_dir is given; fresh_cache
    deletes it first."""
    d = state_path("stsguard")
    os.makedirs(d, exist_ok=True)
    cfg = dict(STSGUARD_SETTINGS, tls_ca_file=ca_file(),
               cache_dir=os.path.join(d, name + ".cache"))
    cfg.update(settings)
    if fresh_cache and cfg.get("cache_dir"):
        subprocess.run(["rm", "-rf", "--", cfg["cache_dir"]], check=True)
    path = os.path.join(d, name + ".cf")
    with open(path + ".tmp", "w") as f:
        f.write("# written by worldlib.stsguard_config for a world test\n")
        for k, v in cfg.items():
            if v is not None:
                f.write("%s = %s\n" % (k, v))
    os.rename(path + ".tmp", path)
    return path


def config_value(path, key):
    """The value of KEY in a config written by stsguard_config (or None)."""
    with open(path) as f:
        for line in f:
            k, sep, v = line.partition("=")
            if sep and k.strip() == key:
                return v.strip()
    return None


def serve_cmd(config, time_offset=None):
    """The command line (a string for `world policy-up`) that runs
    `stsguard -c CONFIG serve`.  time_offset (e.g. "+2h") runs it under
    libfaketime with its wall clock moved by that much: the only way to let
    cache timers (txt_check_interval, back-off) run out in a fast test."""
    argv = [stsguard_bin(), "-c", config, "serve", "--log-to-stderr"]
    if time_offset:
        argv = faketime_prefix(time_offset, threads=True) + argv
    return shlex.join(argv)


def faketime_prefix(offset, threads=False):
    """argv prefix running a command with its wall clock moved by OFFSET
    (lib/faketime.py: libfaketime preloaded, not the faketime wrapper).
    libfaketime is preloaded before an ASan runtime, so ASan's link-order
    check is turned off (ASAN_OPTIONS is passed through into the world)."""
    try:
        env = faketime_env(offset, threads=threads) + ["FAKETIME_DONT_FAKE_MONOTONIC=1"]
    except FileNotFoundError as e:
        raise WorldError(str(e))
    asan = os.environ.get("ASAN_OPTIONS")
    if asan is not None:
        env.append("ASAN_OPTIONS=" + ":".join(o for o in (asan, "verify_asan_link_order=0") if o))
    return ["env"] + env


def start_serve(config, time_offset=None, policy_map=None):
    """Start `stsguard serve` as the world's policy service -> LogMark of
    its log from this start on."""
    mark = LogMark(state_path("logs", "policy.log"))
    start_policy(serve_cmd(config, time_offset), policy_map=policy_map)
    return mark


def query(config, *domains, time_offset=None):
    """`stsguard -c CONFIG query --json DOMAIN...` -> (rc, [answer dicts], stderr)."""
    argv = [stsguard_bin(), "-c", config, "query", "--json"] + list(domains)
    if time_offset:
        argv = faketime_prefix(time_offset) + argv
    r = run_in_world(argv, timeout=30)
    try:
        return r.rc, json.loads(r.out), r.err
    except ValueError:
        raise WorldError("stsguard query gave no JSON (exit %d): %s%s" % (r.rc, r.out, r.err))


class LogMark:
    """A position in a growing log file: text() is what was appended since."""

    def __init__(self, path):
        self.path = path
        try:
            self.pos = os.path.getsize(path)
        except OSError:
            self.pos = 0

    def text(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def lines(self, needle=""):
        return [l for l in self.text().splitlines() if needle in l]

    def wait_for(self, needle, timeout=10):
        """Wait until a line containing NEEDLE was appended -> that line."""
        end = time.monotonic() + timeout
        while True:
            hits = self.lines(needle)
            if hits:
                return hits[0]
            if time.monotonic() >= end:
                raise WorldTimeout("%s: no line with %r within %gs; new text:\n%s" % (
                    self.path, needle, timeout, self.text()[-3000:]))
            time.sleep(0.1)


def https_hits(domain):
    """How many requests the nginx policy host mta-sts.DOMAIN has had
    (from STATE/logs/nginx-access.log, whose 2nd field is the Host)."""
    host, n = "mta-sts." + domain, 0
    try:
        with open(state_path("logs", "nginx-access.log"), errors="replace") as f:
            for line in f:
                p = line.split(None, 2)
                if len(p) >= 2 and p[1] == host:
                    n += 1
    except FileNotFoundError:
        pass
    return n


def fault_hits(line):
    """How many lines of lib/fault-server.py's log (STATE/logs/faults.log)
    start with LINE, e.g. "query servfail udp _mta-sts.x.test TXT" or
    "connect stall mta-sts.stall.test"."""
    n = 0
    try:
        with open(state_path("logs", "faults.log"), errors="replace") as f:
            for l in f:
                if l.rstrip("\n") == line or l.startswith(line + " "):
                    n += 1
    except FileNotFoundError:
        pass
    return n


def send_all(domains, parallel=6):
    """Submit one message to each domain -> {domain: queue id}.  Postfix
    then delivers them in parallel; collect with results()."""
    with ThreadPoolExecutor(max_workers=parallel) as ex:
        return dict(zip(domains, ex.map(send, domains)))


def results(sent, wait=40):
    """{domain: result(domain, qid)} for send_all()'s dict; waits up to
    WAIT s in all for the first delivery attempt of each."""
    end = time.monotonic() + wait
    return {d: result(d, q, wait=max(1, int(end - time.monotonic()))) for d, q in sent.items()}


class WorldTestCase(unittest.TestCase):
    """Base class: fails (does not skip) when the world is not up."""

    @classmethod
    def setUpClass(cls):
        if not is_up():
            raise WorldError("the test world is not up (WORLD_STATE=%s, WORLD_NS=%s); "
                             "run tests through tests/world/run_world_tests.py"
                             % (state_dir(), namespace()))
