"""World tests of `stsguard milter` (issue 8) as the world Postfix's
smtpd_milters and non_smtpd_milters, next to `stsguard serve` as its
smtp_tls_policy_maps service, both on one cache.

- prefetch: after submission to a new enforce domain the cache holds its
  policy before delivery (delivery is held back with defer_transports
  until the cache has been checked); the service then answers from the
  cache (cache=hit) and the policy host is asked once in all.
- header: every recipient domain's X-STS-Policy header reaches the MX; a
  forged incoming one does not.
- hold: an unsatisfiable enforce domain is tempfailed at RCPT (swaks sees
  451 4.7.5); a good domain is not; with milter_wait = 0 a new domain is
  accepted first (unknown never holds) and held once cached.
- non_smtpd_milters: a sendmail(1) submission is never tempfailed (that
  would be a Postfix configuration error), but still prefetched.
- a stopped milter loses no mail (milter_default_action = accept).

The world's main.cf is saved in setUpClass and restored in tearDownClass.
The milter runs inside the world's namespace with the world's
environment, logging to STATE/logs/milter.log.
"""
import os
import re
import signal
import subprocess
import time

import worldlib as w

MILTER_PORT = 8462
PF_MILTER = "inet:127.0.0.1:%d" % MILTER_PORT       # Postfix syntax
MILTER_LISTEN = "inet:%d@127.0.0.1" % MILTER_PORT   # libmilter syntax


# ---- helpers (kept here: worldlib.py belongs to the world's owner) ---------------
def postfix_dir():
    return w.state_path("postfix", "etc")


def postconf(*settings):
    r = w.run_in_world(["postconf", "-c", postfix_dir(), "-e"] + list(settings), timeout=30)
    if r.rc != 0:
        raise w.WorldError("postconf -e %s failed: %s%s" % (settings, r.out, r.err))


def postfix_reload():
    r = w.run_in_world(["postfix", "-c", postfix_dir(), "reload"], timeout=30)
    if r.rc != 0:
        raise w.WorldError("postfix reload failed: %s%s" % (r.out, r.err))
    # smtpd/cleanup processes started after the reload read the new main.cf;
    # give master a moment to retire the old ones.
    time.sleep(1.0)


def swaks(*to, headers=(), timeout=60):
    """Submit one message to the world's Postfix over SMTP -> (rc, output, queue id or None)."""
    tag = "%s %.6f" % ("milter-test", time.time())
    argv = ["swaks", "--server", "127.0.0.1:25", "--helo", "client.world.test",
            "--from", "tester@sender.world.test", "--to", ",".join(to),
            "--header", "Subject: milter world test", "--header", "X-World-Test: " + tag]
    for h in headers:
        argv += ["--header", h]
    argv += ["--body", "stsguard milter world test message."]
    r = w.run_in_world(argv, timeout=timeout)
    out = r.out + r.err
    m = re.findall(r"queued as ([0-9A-Za-z]+)", out)
    return r.rc, out, (m[-1] if m else None), tag


def sendmail(to, timeout=30):
    """Submit through sendmail(1) (pickup -> cleanup: the non_smtpd_milters path)."""
    msg = ("From: tester@sender.world.test\nTo: %s\nSubject: milter non-smtpd test\n"
           "X-World-Test: sendmail %.6f\n\nbody\n" % (to, time.time()))
    r = w.run_in_world(["sendmail", "-C", postfix_dir(), "-f", "tester@sender.world.test", to],
                       timeout=timeout, input=msg)
    if r.rc != 0:
        raise w.WorldError("sendmail failed (exit %d): %s%s" % (r.rc, r.out, r.err))


def cached(cfg, domain):
    """The cache section of `stsguard query --json DOMAIN` (read-only)."""
    rc, entries, err = w.query(cfg, domain)
    assert len(entries) == 1, (rc, entries, err)
    return entries[0]


def wait_cached_policy(cfg, domain, timeout=15):
    """Poll the cache until DOMAIN has a policy with a known MX set -> its query entry."""
    end = time.monotonic() + timeout
    while True:
        e = cached(cfg, domain)
        c = e.get("cache", {})
        if c.get("state") == "policy" and c.get("mx_hosts"):
            return e
        if time.monotonic() > end:
            raise AssertionError("the cache holds no policy for %s after %ss: %s" % (domain, timeout, e))
        time.sleep(0.2)


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def mail_with(domain, tag, timeout=20):
    """Text of the message with X-World-Test: TAG the MX of DOMAIN stored."""
    end = time.monotonic() + timeout
    while True:
        for path in reversed(w.mail(domain)):
            text = read(path)
            if tag in text:
                return text
        if time.monotonic() > end:
            raise AssertionError("no mail with %r stored for %s" % (tag, domain))
        time.sleep(0.2)


def delivery_status(mark, domain, timeout=30):
    """The first delivery status Postfix logged for DOMAIN since MARK ->
    (status, dsn, line); for messages that have no queue id of ours."""
    pat = re.compile(r": to=<[^>]*@%s>, .*?dsn=([^,]*), status=(\w+)" % re.escape(domain))
    end = time.monotonic() + timeout
    while True:
        for line in mark.lines("to=<"):
            m = pat.search(line)
            if m:
                return m.group(2), m.group(1), line
        if time.monotonic() > end:
            raise AssertionError("no delivery attempt for %s within %ss; postfix log:\n%s"
                                 % (domain, timeout, mark.text()[-3000:]))
        time.sleep(0.2)


def header_values(text, name):
    head = text.split("\n\n", 1)[0]
    return [l.split(":", 1)[1].strip() for l in head.splitlines() if l.lower().startswith(name.lower() + ":")]


class Milter:
    """`stsguard -c CFG milter` inside the world (own process group)."""

    def __init__(self, cfg):
        self.log_path = w.state_path("logs", "milter.log")
        self.mark = w.LogMark(self.log_path)
        argv = ["ip", "netns", "exec", w.namespace(), "env", "-i"] + w.world_env() + \
            [w.stsguard_bin(), "-c", cfg, "milter", "--log-to-stderr"]
        with open(self.log_path, "ab") as log:
            log.write(("==== %s milter %s\n" % (time.strftime("%FT%TZ", time.gmtime()), cfg)).encode())
            log.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        end = time.monotonic() + 20
        while "milter ready" not in self.mark.text():
            if self.proc.poll() is not None:
                raise w.WorldError("stsguard milter exited (%s):\n%s" % (self.proc.returncode, self.mark.text()))
            if time.monotonic() > end:
                self.kill()
                raise w.WorldError("stsguard milter not ready after 20s:\n%s" % self.mark.text())
            time.sleep(0.05)

    def stop(self, timeout=15):
        """SIGTERM -> exit status (libmilter's signal thread stops smfi_main)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("stsguard milter ignored SIGTERM for %ss:\n%s" % (timeout, self.mark.text()))
        return self.proc.returncode

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


class MilterWorldTest(w.WorldTestCase):
    """One cache for the class (serve and the milters share it); each test
    starts the milter it needs with its own config on that cache."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        w.stsguard_bin()                      # skip now when STSGUARD is unset
        cls.cache_dir = w.state_path("stsguard", "milter.cache")
        cls.base = w.stsguard_config("milter-serve", cache_dir=cls.cache_dir)
        subprocess.run(["rm", "-rf", "--", cls.cache_dir], check=True)
        with open(os.path.join(postfix_dir(), "main.cf")) as f:
            cls.saved_main_cf = f.read()
        try:
            w.clear_queue()
            w.start_serve(cls.base)
            postconf("smtpd_milters = " + PF_MILTER, "non_smtpd_milters = " + PF_MILTER,
                     "milter_default_action = accept")
            postfix_reload()
        except BaseException:
            cls.restore()
            raise

    @classmethod
    def restore(cls):
        try:
            with open(os.path.join(postfix_dir(), "main.cf"), "w") as f:
                f.write(cls.saved_main_cf)
            postfix_reload()
            w.clear_queue()
        finally:
            w.stop_policy()

    @classmethod
    def tearDownClass(cls):
        cls.restore()

    def setUp(self):
        self.milter = None
        self.postfix_mark = w.LogMark(w.state_path("logs", "postfix.log"))
        self.serve_mark = w.LogMark(w.state_path("logs", "policy.log"))

    def tearDown(self):
        if self.milter:
            self.milter.stop()

    def start_milter(self, action, wait="0"):
        cfg = w.stsguard_config("milter-" + action, cache_dir=self.cache_dir, milter_listen=MILTER_LISTEN,
                                milter_action=action, milter_wait=wait)
        self.milter = Milter(cfg)
        return cfg

    # ---- prefetch ---------------------------------------------------------------
    def test_prefetch_caches_a_new_enforce_domains_policy_before_delivery(self):
        dom = "good-enforce.test"
        cfg = self.start_milter("prefetch")
        self.assertEqual(cached(cfg, dom)["cache"]["state"], "unknown")
        hits = w.https_hits(dom)
        # Hold delivery back so that only the milter can have filled the cache.
        postconf("defer_transports = smtp")
        postfix_reload()
        try:
            t0 = time.monotonic()
            rc, out, qid, tag = swaks("postmaster@" + dom)
            submit_s = time.monotonic() - t0
            self.assertEqual(rc, 0, out)
            self.assertIsNotNone(qid, out)
            e = wait_cached_policy(cfg, dom)
            self.assertEqual(e["cache"]["mode"], "enforce", e)
            self.assertEqual(e["reply"], "OK secure match=mx1.good-enforce.test servername=hostname", e)
            self.assertEqual(w.https_hits(dom), hits + 1)
            self.assertEqual([], [p for p in w.mail(dom) if tag in read(p)],
                             "delivered before the cache was checked")
            self.milter.mark.wait_for(dom + ": no fresh MTA-STS state cached; discovery started")
        finally:
            postconf("defer_transports =")
            postfix_reload()
        after = w.LogMark(w.state_path("logs", "postfix.log"))
        w.world("flush")
        status, dsn, line = delivery_status(after, dom)
        self.assertEqual(status, "sent", line)
        self.assertIn(qid, line)
        self.assertTrue(after.lines("Verified TLS connection established to mx1.good-enforce.test"), after.text())
        decision = self.serve_mark.wait_for(dom + ": answer=OK", timeout=10)
        self.assertIn("cache=hit", decision)
        self.assertEqual(w.https_hits(dom), hits + 1, "serve fetched the policy again")
        self.assertLess(submit_s, 10, "milter_wait = 0 must not delay the submission")
        mail_with(dom, tag)

    # ---- header -------------------------------------------------------------------
    def test_header_names_each_recipient_domains_policy_and_drops_forged_ones(self):
        a, b = "wildcard-enforce.test", "none-mode.test"
        self.start_milter("header", wait="5s")
        rc, out, qid, tag = swaks("postmaster@" + a, "postmaster@" + b,
                                  headers=["X-STS-Policy: forged.test mode=none"])
        self.assertEqual(rc, 0, out)
        for dom in (a, b):
            r = w.result(dom, qid, wait=30)
            self.assertEqual(r["status"], "delivered", r)
        text = mail_with(a, tag)
        values = header_values(text, "X-STS-Policy")
        self.assertEqual(len(values), 2, values)
        self.assertRegex(values[0], r"^wildcard-enforce\.test mode=enforce id=[A-Za-z0-9]+ mx=ok$")
        self.assertRegex(values[1], r"^none-mode\.test mode=none id=[A-Za-z0-9]+$")
        self.assertNotIn("forged.test", text)
        self.assertEqual(header_values(mail_with(b, tag), "X-STS-Policy"), values)

    # ---- hold ---------------------------------------------------------------------
    def test_hold_tempfails_an_unsatisfiable_enforce_domain_at_rcpt(self):
        bad, good = "mx-mismatch-enforce.test", "two-mx-enforce.test"
        self.start_milter("hold", wait="5s")
        rc, out, qid, _ = swaks("postmaster@" + bad)
        self.assertNotEqual(rc, 0, out)
        self.assertIsNone(qid, out)
        self.assertRegex(out, r"<\*\* +451 4\.7\.5 MTA-STS policy of mx-mismatch-enforce\.test \(mode enforce\) "
                              r"cannot be satisfied: no MX host .*mx\.elsewhere\.test")
        self.milter.mark.wait_for("postmaster@" + bad + ">' held: 451 4.7.5")
        rc, out, qid, tag = swaks("postmaster@" + good)
        self.assertEqual(rc, 0, out)
        self.assertEqual(w.result(good, qid, wait=30)["status"], "delivered")

    def test_hold_with_no_wait_accepts_an_unknown_domain_then_holds_it_once_cached(self):
        dom = "wildcard-deep.test"
        cfg = self.start_milter("hold", wait="0")
        rc, out, qid, _ = swaks("postmaster@" + dom)
        self.assertEqual(rc, 0, "an unknown domain must not be held:\n" + out)
        wait_cached_policy(cfg, dom)
        rc, out, qid2, _ = swaks("postmaster@" + dom)
        self.assertIsNone(qid2, out)
        self.assertIn("451 4.7.5 MTA-STS policy of wildcard-deep.test", out)
        # The first message waits in the queue: serve answers TEMP no-mx-match.
        r = w.result(dom, qid, wait=30)
        self.assertEqual(r["status"], "deferred", r)

    # ---- non_smtpd_milters ----------------------------------------------------------------
    def test_non_smtpd_submission_is_prefetched_never_tempfailed(self):
        fresh = "expired-cert-enforce.test"
        bad = "mx-mismatch-enforce.test"       # held over SMTP; must not be over sendmail(1)
        cfg = self.start_milter("hold", wait="5s")
        sendmail("postmaster@" + bad)
        sendmail("postmaster@" + fresh)
        wait_cached_policy(cfg, fresh)
        status, dsn, line = delivery_status(self.postfix_mark, bad)
        # Queued, then deferred by serve's TEMP answer, not by a milter reject.
        self.assertEqual(status, "deferred", line)
        self.assertEqual(dsn, "4.7.5", line)        # TLS policy lookup TEMP (a milter error: 4.3.5)
        log = self.postfix_mark.text()
        self.assertNotIn("can't reject recipient", log)
        self.assertNotIn("milter-reject", log)
        self.assertEqual(self.milter.mark.lines("held:"), [])

    # ---- failure ----------------------------------------------------------------------
    def test_stopped_milter_loses_no_mail(self):
        dom = "good-testing.test"
        self.start_milter("hold")
        self.assertEqual(self.milter.stop(), 0, self.milter.mark.text())
        self.assertIn("stopped", self.milter.mark.text())
        rc, out, qid, tag = swaks("postmaster@" + dom)
        self.assertEqual(rc, 0, out)
        self.assertEqual(w.result(dom, qid, wait=30)["status"], "delivered")
        mail_with(dom, tag)
        self.assertTrue(self.postfix_mark.lines("Milter service " + PF_MILTER) or
                        self.postfix_mark.lines("milter " + PF_MILTER),
                        "Postfix did not try the milter:\n" + self.postfix_mark.text()[-3000:])
