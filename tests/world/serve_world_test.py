"""World tests of `stsguard serve` as the real Postfix's smtp_tls_policy_maps
service (issue 5, end to end).

For each domain of domains.conf both sides are checked: the socketmap
answer stsguard gives (smq, and `postmap -q` through Postfix's own
socketmap client) and what the sending Postfix 3.7 then did with a real
message (delivered with a Verified TLS session, or deferred with the
reason it logged).  Mails are sent all at once and collected afterwards.

Also: keys that are no domain, a unix-socket listener, a policy cached
before its policy host went down, abusive clients (random bytes, a 1 MB
netstring, 2000 idle and 200 half-written connections, a client that
never reads) measured against a normal client's latency, and SIGTERM.
"""
import json
import os
import signal
import stat
import time

import worldlib as w

GOOD = "good-enforce.test"


METRICS = "inet:127.0.0.1:9461"


def secure(*mx):
    return "OK secure match=%s servername=hostname" % ":".join(mx)


def no_mx_match(domain, mx, pattern):
    return ("TEMP MTA-STS: no MX host of %s (%s) matches its MTA-STS policy (mx: %s)"
            % (domain, mx, pattern))


NOTFOUND = "NOTFOUND "

# domain -> (socketmap answer, Postfix outcome)
CASES = {
    "good-enforce.test": (secure("mx1.good-enforce.test"), "delivered"),
    "bad-cert-enforce.test": (secure("mx.bad-cert-enforce.test"), "deferred"),
    "expired-cert-enforce.test": (secure("mx.expired-cert-enforce.test"), "deferred"),
    "selfsigned-mx-enforce.test": (secure("mx.selfsigned-mx-enforce.test"), "deferred"),
    "nostarttls-enforce.test": (secure("mx.nostarttls-enforce.test"), "deferred"),
    "mx-mismatch-enforce.test": (no_mx_match("mx-mismatch-enforce.test", "mx.mx-mismatch-enforce.test",
                                             "mx.elsewhere.test"), "deferred"),
    "wildcard-enforce.test": (secure("mx7.wildcard-enforce.test"), "delivered"),
    "wildcard-deep.test": (no_mx_match("wildcard-deep.test", "mx.sub.wildcard-deep.test",
                                       "*.wildcard-deep.test"), "deferred"),
    "mxname-vs-cert.test": (no_mx_match("mxname-vs-cert.test", "mx.rogue.test", "mx.legit.test"),
                            "deferred"),
    "two-mx-enforce.test": (secure("mx-a.two-mx-enforce.test", "mx-b.two-mx-enforce.test"), "delivered"),
    "txt-cname.test": (secure("mx.txt-cname.test"), "delivered"),
    "good-testing.test": (NOTFOUND, "delivered"),
    "testing-bad-cert.test": (NOTFOUND, "delivered"),
    "none-mode.test": (NOTFOUND, "delivered"),
    "no-sts.test": (NOTFOUND, "delivered"),
    "tlsa.test": (NOTFOUND, "delivered"),
    # Fetch failures with nothing cached: no policy.  Their MX certificates
    # are wrong, so applying a policy anyway would defer instead.
    "txt-but-404.test": (NOTFOUND, "delivered"),
    "sts-https-badcert.test": (NOTFOUND, "delivered"),
    "https-expired.test": (NOTFOUND, "delivered"),
    "https-selfsigned.test": (NOTFOUND, "delivered"),
    "wrong-ctype.test": (NOTFOUND, "delivered"),
    "redirect-enforce.test": (NOTFOUND, "delivered"),
    "txt-no-host.test": (NOTFOUND, "delivered"),
    "http-500.test": (NOTFOUND, "delivered"),
    "oversize.test": (NOTFOUND, "delivered"),
    "multi-txt.test": (NOTFOUND, "delivered"),
    "stall.test": (NOTFOUND, "delivered"),
    "stall-body.test": (NOTFOUND, "delivered"),
}


def postmap(key, policy_map=None):
    """postmap -q KEY through the world Postfix's socketmap client -> Run."""
    pmap = policy_map or "socketmap:inet:%s:%d:postfix" % (w.POLICY_HOST, w.POLICY_PORT)
    return w.run_in_world(["postmap", "-c", w.state_path("postfix", "etc"), "-q", key, pmap],
                          timeout=30)


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def policy_pid():
    with open(w.state_path("pids", "policy.pid")) as f:
        return int(f.read().strip())


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class MailAssertions:
    def assertMail(self, domain, status, tls=None, relay=None, reason=None, dsn=None):
        qid = self.sent[domain]
        r = self.res[domain]
        self.assertEqual(r["status"], status, r)
        if tls:
            self.assertEqual(r["tls"], tls, r)
        if relay == "none":        # Postfix never connected (the policy lookup failed)
            self.assertEqual(r["relay"], "none", r)
        elif relay:
            self.assertTrue(r["relay"].startswith(relay + "["), r)
        if reason:
            self.assertIn(reason, r["reason"], r)
        if dsn:
            self.assertEqual(r["dsn"], dsn, r)
        stored = [f for f in w.mail(domain) if ("id %s" % qid) in read(f)]
        if status == "delivered":
            self.assertEqual(len(stored), 1, "message %s not stored for %s" % (qid, domain))
        else:
            self.assertEqual(stored, [], "message %s was stored for %s" % (qid, domain))


class ServeWorldTest(MailAssertions, w.WorldTestCase):
    """One service, one fresh cache, one message per domain."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        w.clear_queue()
        cls.cfg = w.stsguard_config("serve", fresh_cache=True)
        cls.log = w.start_serve(cls.cfg)
        cls.sent = w.send_all(list(CASES))
        cls.res = w.results(cls.sent, wait=60)

    @classmethod
    def tearDownClass(cls):
        w.clear_queue()         # deferred mail must not query later tests' services
        w.stop_policy()
        super().tearDownClass()

    def check(self, domain, **mail):
        answer, status = CASES[domain]
        self.assertEqual(w.smq(domain), answer)
        self.assertMail(domain, status, **mail)

    # ---- enforce -----------------------------------------------------------
    def test_4_2_enforce_with_a_valid_mx_certificate_is_delivered_verified(self):
        self.check(GOOD, tls="Verified", relay="mx1.good-enforce.test", reason="stored by mx1")

    def test_4_2_enforce_with_an_invalid_mx_certificate_is_deferred(self):
        for domain in ("bad-cert-enforce.test", "expired-cert-enforce.test",
                       "selfsigned-mx-enforce.test"):
            with self.subTest(domain):
                self.check(domain, relay="mx." + domain, dsn="4.7.5",
                           reason="Server certificate not verified")

    def test_4_2_enforce_without_starttls_is_deferred(self):
        self.check("nostarttls-enforce.test", dsn="4.7.4",
                   reason="TLS is required, but was not offered by host mx.nostarttls-enforce.test")

    def test_4_1_policy_not_covering_the_real_mx_is_deferred(self):
        self.check("mx-mismatch-enforce.test", relay="none", dsn="4.7.5")
        r = self.res["mx-mismatch-enforce.test"]
        self.assertTrue(any("policy table lookup error" in l for l in r["details"]), r)
        self.assertTrue(any("matches its MTA-STS policy (mx: mx.elsewhere.test)" in l
                            for l in r["details"]), r)

    def test_3_2_one_label_wildcard_is_delivered_verified(self):
        self.check("wildcard-enforce.test", tls="Verified", relay="mx7.wildcard-enforce.test")

    def test_3_2_wildcard_does_not_match_an_mx_two_labels_below(self):
        # Postfix's ".wildcard-deep.test" would match; stsguard must not say so.
        self.check("wildcard-deep.test", relay="none", dsn="4.7.5")

    def test_4_1_mx_not_in_the_policy_is_deferred_even_with_a_cert_for_a_policy_name(self):
        self.check("mxname-vs-cert.test", relay="none", dsn="4.7.5")
        self.assertEqual(w.mail("mxname-vs-cert.test"), [])

    def test_two_mx_with_the_first_broken_is_delivered_via_the_second(self):
        self.check("two-mx-enforce.test", tls="Verified", relay="mx-b.two-mx-enforce.test")
        r = self.res["two-mx-enforce.test"]
        self.assertTrue(any("mx-a.two-mx-enforce.test" in l and "certificate" in l for l in r["details"]), r)

    def test_3_1_txt_through_a_cname_is_enforced(self):
        self.check("txt-cname.test", tls="Verified", relay="mx.txt-cname.test")

    # ---- report only / no policy --------------------------------------------
    def test_testing_mode_only_reports_so_a_bad_certificate_is_delivered(self):
        for domain in ("good-testing.test", "testing-bad-cert.test"):
            with self.subTest(domain):
                self.check(domain, relay="mx." + domain)

    def test_mode_none_and_no_policy_are_delivered(self):
        for domain in ("none-mode.test", "no-sts.test", "tlsa.test"):
            with self.subTest(domain):
                self.check(domain, relay="mx." + domain)

    def test_5_fetch_failure_with_nothing_cached_is_no_policy(self):
        for domain in ("txt-but-404.test", "sts-https-badcert.test", "https-expired.test",
                       "https-selfsigned.test", "wrong-ctype.test", "redirect-enforce.test",
                       "txt-no-host.test", "http-500.test", "oversize.test", "multi-txt.test",
                       "stall.test", "stall-body.test"):
            with self.subTest(domain):
                self.check(domain, relay="mx." + domain)

    # ---- the answers, seen three ways ---------------------------------------
    def test_decision_log_names_answer_reason_and_cache(self):
        text = self.log.text()
        for needle in ("good-enforce.test: answer=OK reason=enforce cache=",
                       "mx-mismatch-enforce.test: answer=TEMP reason=no-mx-match cache=",
                       "good-testing.test: answer=NOTFOUND reason=mode-testing cache=",
                       "none-mode.test: answer=NOTFOUND reason=mode-none cache=",
                       "no-sts.test: answer=NOTFOUND reason=no-policy cache=miss (no-txt:",
                       "redirect-enforce.test: answer=NOTFOUND reason=no-policy cache=miss (http-redirect:",
                       "http-500.test: answer=NOTFOUND reason=temp-failure-open cache=miss",
                       "stall.test: answer=NOTFOUND reason=temp-failure-open cache=miss (no usable policy: https-timeout"):
            self.assertIn(needle, text)
        # The first lookup discovered, later ones (smq, retries) hit the cache.
        self.assertIn("good-enforce.test: answer=OK reason=enforce cache=miss", text)
        w.smq(GOOD)
        self.assertIn("good-enforce.test: answer=OK reason=enforce cache=hit", self.log.text())

    def test_postmap_gets_the_same_answers_as_smq(self):
        for domain in (GOOD, "two-mx-enforce.test", "no-sts.test", "good-testing.test",
                       "mx-mismatch-enforce.test"):
            with self.subTest(domain):
                answer = CASES[domain][0]
                r = postmap(domain)
                if answer.startswith("OK "):
                    self.assertEqual((r.rc, r.out), (0, answer[3:] + "\n"), r.err)
                elif answer.startswith("NOTFOUND"):
                    self.assertEqual((r.rc, r.out), (1, ""), r.err)
                else:   # TEMP: Postfix reports the server's temporary error
                    self.assertNotEqual(r.rc, 0)
                    self.assertIn("socketmap server temporary error: " + answer[5:], r.err)

    def test_query_shows_what_serve_answers(self):
        domains = [GOOD, "two-mx-enforce.test", "mx-mismatch-enforce.test", "good-testing.test",
                   "no-sts.test", "http-500.test"]
        rc, got, err = w.query(self.cfg, *domains)
        self.assertEqual([g["reply"] for g in got], [w.smq(d) for d in domains], err)
        self.assertEqual(rc, 2, "a TEMP answer (mx-mismatch) must give exit 2")
        by = {g["domain"]: g for g in got}
        self.assertEqual(by[GOOD]["cache"]["mode"], "enforce")
        self.assertEqual(by[GOOD]["cache"]["mx_hosts"], ["mx1.good-enforce.test"])
        self.assertEqual(by["http-500.test"]["reason_code"], "temp-failure-open")

    def test_keys_that_are_no_domain_get_notfound_without_a_lookup(self):
        mark = w.LogMark(w.state_path("logs", "policy.log"))
        for key in (".test", "[mx1.good-enforce.test]", "127.0.0.1", "[127.0.0.1]:25"):
            with self.subTest(key):
                self.assertEqual(w.smq(key), NOTFOUND)
                self.assertEqual(postmap(key).rc, 1)
                line = mark.wait_for("]: %s: answer=NOTFOUND" % key, timeout=5)
                self.assertIn("reason=not-a-domain cache=none", line)


class ServeLookupWaitWorldTest(w.WorldTestCase):
    """A discovery slower than lookup_wait: the answer does not wait for it
    (on_temp_failure decides), and the discovery still completes into the
    cache."""

    def setUp(self):
        self.addCleanup(w.stop_policy)

    def run_case(self, on_temp_failure, expect, expect_after):
        cfg = w.stsguard_config("serve-wait-" + on_temp_failure, fresh_cache=True, lookup_wait="1s",
                                on_temp_failure=on_temp_failure)
        log = w.start_serve(cfg)
        answer, secs = w.smq_timed("stall.test")  # the policy host stalls for 2 s (connect timeout)
        self.assertEqual(answer, expect)
        self.assertGreaterEqual(secs, 0.9, "answered before lookup_wait (1 s)")
        self.assertLess(secs, 1.8, "the answer waited for the discovery")
        line = log.wait_for("]: stall.test: answer=", timeout=5)
        self.assertIn("cache=miss", line)
        self.assertIn("lookup-wait", line)
        # The discovery finishes in the background and is remembered.
        end = time.monotonic() + 10
        while True:
            rc, got, err = w.query(cfg, "stall.test")
            code = got[0].get("cache", {}).get("last_outcome", {}).get("code")
            if code == "https-timeout" or time.monotonic() > end:
                break
            time.sleep(0.3)
        self.assertEqual(code, "https-timeout", json.dumps(got, indent=1))
        self.assertTrue(got[0]["reply"].startswith(expect_after), got[0])
        self.assertTrue(w.smq("stall.test").startswith(expect_after))

    def test_slow_discovery_answers_notfound_after_lookup_wait_by_default(self):
        self.run_case("notfound", NOTFOUND, NOTFOUND)

    def test_slow_discovery_answers_temp_with_on_temp_failure_temp(self):
        self.run_case("temp", "TEMP MTA-STS policy of stall.test unavailable: "
                              "policy discovery did not finish within lookup_wait",
                      "TEMP MTA-STS policy of stall.test unavailable: https://mta-sts.stall.test/")


class ServeUnixSocketWorldTest(MailAssertions, w.WorldTestCase):
    """listen = unix:PATH, and Postfix asking through socketmap:unix:."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        w.clear_queue()
        cls.sock = w.state_path("stsguard", "serve-unix.sock")
        cls.map = "socketmap:unix:%s:postfix" % cls.sock
        cls.cfg = w.stsguard_config("serve-unix", fresh_cache=True, listen="unix:" + cls.sock)
        w.start_serve(cls.cfg, policy_map=cls.map)
        cls.sent = w.send_all([GOOD, "bad-cert-enforce.test", "no-sts.test"])
        cls.res = w.results(cls.sent, wait=40)

    @classmethod
    def tearDownClass(cls):
        w.clear_queue()
        w.stop_policy()
        # Back to the inet map, as every other test expects.
        w.run_in_world(["postconf", "-c", w.state_path("postfix", "etc"), "-e",
                        "smtp_tls_policy_maps = socketmap:inet:%s:%d:postfix"
                        % (w.POLICY_HOST, w.POLICY_PORT)])
        w.run_in_world(["postfix", "-c", w.state_path("postfix", "etc"), "reload"])
        super().tearDownClass()

    def test_unix_socket_listener_answers_postfix(self):
        st = os.stat(self.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o666)   # unix_socket_mode default
        self.assertEqual(w.smq(GOOD, policy_map=self.map), secure("mx1.good-enforce.test"))
        self.assertEqual(w.smq("no-sts.test", policy_map=self.map), NOTFOUND)
        r = postmap(GOOD, policy_map=self.map)
        self.assertEqual((r.rc, r.out.strip()), (0, secure("mx1.good-enforce.test")[3:]), r.err)
        self.assertMail(GOOD, "delivered", tls="Verified", relay="mx1.good-enforce.test")
        self.assertMail("bad-cert-enforce.test", "deferred", dsn="4.7.5",
                        reason="Server certificate not verified")
        self.assertMail("no-sts.test", "delivered")


class ServeCachedPolicyWorldTest(MailAssertions, w.WorldTestCase):
    """RFC 8461 5: a cached, unexpired policy stays in force when its
    policy host goes down.  The refresh is made due by running the service
    13 hours ahead (libfaketime): past txt_check_interval and past half of
    max_age (86400), so the service re-fetches with the TXT id unchanged."""

    DOMAINS = (GOOD, "bad-cert-enforce.test")

    def setUp(self):
        w.clear_queue()
        self.addCleanup(w.reset)
        self.addCleanup(w.clear_queue)
        self.addCleanup(w.stop_policy)
        self.cfg = w.stsguard_config("serve-cached", fresh_cache=True)

    def test_5_cached_enforce_policy_is_kept_when_the_policy_host_goes_down(self):
        w.start_serve(self.cfg)
        for d in self.DOMAINS:
            self.assertEqual(w.smq(d), CASES[d][0])
        hits = {d: w.https_hits(d) for d in self.DOMAINS}
        for d in self.DOMAINS:
            w.policy_host(d, "down")

        later = "+13h"
        w.start_serve(self.cfg, time_offset=later)
        for d in self.DOMAINS:
            self.assertEqual(w.smq(d), CASES[d][0])       # answered from the cache at once
        # The lookups made the refresh due; wait until it failed on the 503.
        end = time.monotonic() + 20
        while True:
            rc, got, err = w.query(self.cfg, *self.DOMAINS, time_offset=later)
            codes = [g["cache"]["last_outcome"]["code"] for g in got]
            if codes == ["http-status", "http-status"] or time.monotonic() > end:
                break
            time.sleep(0.3)
        self.assertEqual(codes, ["http-status", "http-status"], json.dumps(got, indent=1))
        for d, g in zip(self.DOMAINS, got):
            self.assertGreater(w.https_hits(d), hits[d], "no refresh reached the policy host")
            self.assertEqual(g["reply"], CASES[d][0])
            self.assertEqual(g["cache"]["mode"], "enforce")
            self.assertIn("HTTP status 503", g["cache"]["last_outcome"]["text"])
            self.assertEqual(w.smq(d), CASES[d][0])

        # Postfix still enforces: the bad certificate defers, the good one is Verified.
        self.sent = w.send_all(self.DOMAINS)
        self.res = w.results(self.sent, wait=40)
        self.assertMail(GOOD, "delivered", tls="Verified")
        self.assertMail("bad-cert-enforce.test", "deferred", dsn="4.7.5",
                        reason="Server certificate not verified")


class ServeRobustnessWorldTest(w.WorldTestCase):
    """Issue 5 "done when": abusive clients never crash the service nor
    delay the answers to a well-behaved client."""

    EXPECT = secure("mx1.good-enforce.test")

    def setUp(self):
        self.addCleanup(w.stop_policy)
        self.cfg = w.stsguard_config("serve-robust", fresh_cache=True, metrics_listen=METRICS)
        self.log = w.start_serve(self.cfg)
        self.assertEqual(w.smq(GOOD), self.EXPECT)      # cached: answers need no I/O

    def test_abusive_clients_never_delay_other_clients_nor_crash_the_service(self):
        pid = policy_pid()
        rss0 = rss_kib(pid)
        r = w.run_in_world([w.PY, os.path.join(w.LIB, "abuse.py"), "--idle", "2000", "--half", "200",
                            "--random", "50", "--big", "--noread", "--seconds", "4",
                            "inet:%s:%d" % (w.POLICY_HOST, w.POLICY_PORT), "postfix", GOOD,
                            self.EXPECT], timeout=90)
        self.assertEqual(r.rc, 0, r.err)
        a = json.loads(r.out)
        detail = json.dumps(a, indent=1)
        self.assertEqual(a["held_connections"], 2200, detail)
        self.assertEqual(a["connect_error_count"], 0, detail)
        for phase in ("baseline", "under_abuse", "after"):
            self.assertEqual(a[phase]["bad_count"], 0, "%s: wrong answers\n%s" % (phase, detail))
        ua = a["under_abuse"]
        self.assertGreaterEqual(ua["kept"]["count"], 20, detail)
        self.assertGreaterEqual(ua["fresh"]["count"], 4, detail)
        self.assertLess(ua["kept"]["max"], 1.0, "a normal client waited >= 1 s\n" + detail)
        self.assertLess(ua["fresh"]["max"], 1.0, "a new client waited >= 1 s\n" + detail)
        self.assertEqual(a["random_closed"], a["random_total"], detail)
        self.assertIs(a["big_closed"], True, detail)
        self.assertEqual(a["noread"].get("requests_sent", 0) > 0, True, detail)
        # Still the same process, still answering, memory bounded.
        self.assertTrue(alive(pid), "the service died:\n" + self.log.text()[-3000:])
        self.assertEqual(policy_pid(), pid)
        self.assertEqual(w.smq(GOOD), self.EXPECT)
        self.assertLess(rss_kib(pid) - rss0, 64 * 1024, "RSS grew by more than 64 MiB")
        self.assertIn("closed: bad request", self.log.text())
        for bad in ("fatal", "handler bug", "terminate called", "AddressSanitizer", "runtime error"):
            self.assertNotIn(bad, self.log.text())

    def test_idle_and_half_written_connections_are_closed_after_idle_timeout(self):
        cfg = w.stsguard_config("serve-idle", fresh_cache=True, idle_timeout="2s")
        w.start_serve(cfg)
        script = r"""
import socket, time
def conn():
    return socket.create_connection(("%s", %d), timeout=6)
idle, half, busy = conn(), conn(), conn()
half.sendall(b"30:postfix good-enf")          # slowloris: never completes
t0 = time.monotonic()
closed = {}
busy_ok = 0
while time.monotonic() - t0 < 4.5:
    busy.sendall(b"25:postfix good-enforce.test,")
    if busy.recv(4096):
        busy_ok += 1
    for name, s in (("idle", idle), ("half", half)):
        if name in closed:
            continue
        s.setblocking(False)
        try:
            if s.recv(4096) == b"":
                closed[name] = round(time.monotonic() - t0, 2)
        except BlockingIOError:
            pass
        except OSError:
            closed[name] = round(time.monotonic() - t0, 2)
    time.sleep(0.25)
print(closed.get("idle"), closed.get("half"), busy_ok)
""" % (w.POLICY_HOST, w.POLICY_PORT)
        r = w.run_in_world([w.PY, "-c", script], timeout=30)
        self.assertEqual(r.rc, 0, r.err)
        idle, half, busy_ok = r.out.split()
        self.assertNotEqual(idle, "None", "an idle connection outlived idle_timeout (2 s)")
        self.assertNotEqual(half, "None", "a half-written request outlived idle_timeout (2 s)")
        self.assertGreaterEqual(float(idle), 1.5)
        self.assertGreaterEqual(float(half), 1.5)
        self.assertGreaterEqual(int(busy_ok), 15, "the busy connection was not served throughout")

    def wait_exit(self, pid, seconds):
        end = time.monotonic() + seconds
        while alive(pid) and time.monotonic() < end:
            time.sleep(0.05)
        return not alive(pid)

    # ---- operations ----------------------------------------------------------
    def scrape(self):
        r = w.run_in_world(["curl", "-sS", "--max-time", "5", "http://%s/metrics" % METRICS[5:]])
        self.assertEqual(r.rc, 0, r.err)
        values = {}
        for line in r.out.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def test_metrics_endpoint_counts_lookups_by_reply_and_reason(self):
        ok = 'stsguard_lookups_total{reply="OK",reason="enforce"}'
        before = self.scrape()
        self.assertGreaterEqual(before.get(ok, 0), 1, "the enforce lookup of setUp is not counted")
        self.assertIn("stsguard_open_connections", before)
        self.assertIn('stsguard_lookup_duration_seconds_bucket{le="+Inf"}', before)
        w.smq(GOOD)
        after = self.scrape()
        self.assertEqual(after[ok], before[ok] + 1)
        self.assertGreater(after['stsguard_cache_lookups_total{result="hit"}'],
                           before['stsguard_cache_lookups_total{result="hit"}'])
        r = w.run_in_world(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                            "http://%s/nothing" % METRICS[5:]])
        self.assertEqual(r.out, "404")

    def test_sigterm_drains_and_stops(self):
        pid = policy_pid()
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(self.wait_exit(pid, 8), "still running 8 s after SIGTERM")
        text = self.log.text()
        self.assertIn("stopping: draining connections", text,
                      "SIGTERM did not reach the drain (killed by the default action?)")
        self.assertTrue(text.rstrip().endswith("stopped"), text[-2000:])

    def test_sighup_reloads_and_keeps_serving(self):
        pid = policy_pid()
        os.kill(pid, signal.SIGHUP)
        time.sleep(0.5)
        self.assertTrue(alive(pid), "SIGHUP killed the service:\n" + self.log.text()[-2000:])
        self.log.wait_for("reloaded configuration", timeout=5)
        self.assertEqual(w.smq(GOOD), self.EXPECT)


class ServeStartupWorldTest(w.WorldTestCase):
    """A bad listener setting stops start-up with exit 3 and a message
    naming the setting; nothing is left listening."""

    def test_bad_listen_settings_fail_start_up_clearly(self):
        cases = {
            "listen-garbage": (dict(listen="inet:nonsense"), "listen = inet:nonsense"),
            "metrics-unix": (dict(metrics_listen="unix:/tmp/stsguard-metrics.sock"),
                             "metrics_listen = unix:/tmp/stsguard-metrics.sock: must be inet:HOST:PORT"),
            "metrics-port-taken": (dict(listen="inet:127.0.0.1:9470", metrics_listen="inet:127.0.0.1:9470"),
                                   "metrics_listen = inet:127.0.0.1:9470"),
        }
        for name, (settings, expect) in cases.items():
            with self.subTest(name):
                cfg = w.stsguard_config("serve-startup-" + name, fresh_cache=True, **settings)
                rc, out, err = w.stsguard("-c", cfg, "serve", "--log-to-stderr", timeout=15)
                self.assertEqual(rc, 3, err)
                self.assertIn("stsguard serve: " + expect, err)


if __name__ == "__main__":
    import unittest
    unittest.main()
