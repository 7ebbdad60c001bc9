"""World tests of `stsguard check` and `stsguard dry-run` (docs/checks.md):
the status of every check id for the world's test domains, the JSON
schema, the monitoring exit codes, that `check` and `serve` give Postfix
the same answer, that probes of several stalling MX hosts run in parallel,
and that dry-run sorts good, broken and unknown destinations correctly
(timeouts are "unknown", never "broken").

`check` runs once for every domain in setUpClass (about 7 s: the stall
domains cost one policy_fetch_timeout each); the per-domain tests read
that one JSON document.
"""
import json
import os
import shlex
import time

import worldlib as w

CHECK_IDS = ["dns_record", "policy_fetch", "policy_syntax", "mx_alignment", "mx_certificates",
             "mode", "tlsrpt", "policy_id_hygiene", "dane"]
STATUSES = {"pass", "info", "warn", "fail", "skip", "unknown"}
PROBE_TIMEOUT = 3

# domain -> (domain status, {check id: status}); checks not named must pass,
# except policy_id_hygiene, which skips (no cache) unless named.
EXPECT = {
    "good-enforce.test": ("ok", {}),
    "good-testing.test": ("ok", {}),
    "wildcard-enforce.test": ("ok", {}),
    "txt-cname.test": ("ok", {}),
    "bad-cert-enforce.test": ("critical", {"mx_certificates": "fail", "mode": "fail"}),
    "expired-cert-enforce.test": ("critical", {"mx_certificates": "fail", "mode": "fail"}),
    "selfsigned-mx-enforce.test": ("critical", {"mx_certificates": "fail", "mode": "fail"}),
    "nostarttls-enforce.test": ("critical", {"mx_certificates": "fail", "mode": "fail"}),
    "mx-mismatch-enforce.test": ("critical", {"mx_alignment": "fail", "mode": "fail"}),
    "wildcard-deep.test": ("critical", {"mx_alignment": "fail", "mode": "fail"}),
    "mxname-vs-cert.test": ("critical", {"mx_alignment": "fail", "mx_certificates": "fail", "mode": "fail"}),
    "two-mx-enforce.test": ("critical", {"mx_certificates": "fail", "mode": "warn"}),
    "testing-bad-cert.test": ("warning", {"mx_certificates": "warn", "mode": "warn"}),
    "none-mode.test": ("ok", {"mode": "info", "mx_certificates": "info"}),
}
NO_POLICY_SKIPS = {"policy_syntax": "skip", "mx_alignment": "skip", "mode": "skip"}
# policy_fetch failures: domain -> reason code
FETCH_FAILS = {
    "txt-but-404.test": "http-status",
    "http-500.test": "http-status",
    "sts-https-badcert.test": "https-cert-invalid",
    "https-expired.test": "https-cert-invalid",
    "https-selfsigned.test": "https-cert-invalid",
    "wrong-ctype.test": "http-content-type",
    "redirect-enforce.test": "http-redirect",
    "txt-no-host.test": "policy-host-not-found",
    "oversize.test": "policy-too-large",
    "stall.test": "https-timeout",
    "stall-body.test": "https-timeout",
}
# dns_record failures: domain -> reason code
RECORD_FAILS = {"no-sts.test": "no-txt", "multi-txt.test": "txt-multiple", "tlsa.test": "no-txt"}

ALL = sorted(set(EXPECT) | set(FETCH_FAILS) | set(RECORD_FAILS))


def check(cfg, *args, timeout=60):
    """`stsguard -c CFG check --json ARGS` -> (rc, doc, stderr, seconds)"""
    t0 = time.monotonic()
    rc, out, err = w.stsguard("-c", cfg, "check", "--json", *args, timeout=timeout)
    secs = time.monotonic() - t0
    try:
        doc = json.loads(out)
    except ValueError:
        raise AssertionError("check --json gave no JSON (exit %d)\nstdout: %s\nstderr: %s" % (rc, out, err))
    return rc, doc, err, secs


_lists = [0]


def dry_run(cfg, text, *global_opts, timeout=90):
    """`stsguard -c CFG [OPTS] dry-run --json FILE` -> (rc, doc, stderr, seconds)"""
    _lists[0] += 1
    path = w.state_path("stsguard", "dry-run-%d.txt" % _lists[0])
    with open(path, "w") as f:
        f.write(text)
    t0 = time.monotonic()
    rc, out, err = w.stsguard("-c", cfg, *global_opts, "dry-run", "--json", path, timeout=timeout)
    secs = time.monotonic() - t0
    try:
        doc = json.loads(out)
    except ValueError:
        raise AssertionError("dry-run --json gave no JSON (exit %d)\nstdout: %s\nstderr: %s" % (rc, out, err))
    return rc, doc, err, secs


class CheckWorldTest(w.WorldTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cfg = w.stsguard_config("check", fresh_cache=True, dns_retries="0",
                                    probe_timeout="%ds" % PROBE_TIMEOUT, policy_fetch_timeout="3s")
        cls.rc, cls.doc, cls.err, cls.secs = check(cls.cfg, *ALL, timeout=110)
        cls.by = {d["domain"]: d for d in cls.doc["domains"]}

    def dom(self, name):
        self.assertIn(name, self.by, self.err)
        return self.by[name]

    def assertChecks(self, name, status, expect):
        d = self.dom(name)
        got = {c: d["checks"][c]["status"] for c in CHECK_IDS}
        want = {c: "pass" for c in CHECK_IDS}
        want["policy_id_hygiene"] = "skip"
        want.update(expect)
        self.assertEqual((d["status"], got), (status, want),
                         "\n".join("%s: %s" % (c, d["checks"][c]["summary"]) for c in CHECK_IDS))

    # ---- every check id, per test domain -------------------------------
    def test_policy_domains_have_the_expected_status_per_check(self):
        for name, (status, expect) in EXPECT.items():
            with self.subTest(domain=name):
                self.assertChecks(name, status, expect)

    def test_3_3_policy_fetch_failures_name_the_reason_code(self):
        for name, code in FETCH_FAILS.items():
            with self.subTest(domain=name):
                expect = dict(NO_POLICY_SKIPS, policy_fetch="fail")
                d = self.dom(name)
                # A domain without a policy: MX problems are information only.
                expect["mx_certificates"] = d["checks"]["mx_certificates"]["status"]
                self.assertIn(expect["mx_certificates"], ("pass", "info"), d["checks"]["mx_certificates"])
                self.assertChecks(name, "critical", expect)
                pf = d["checks"]["policy_fetch"]
                self.assertEqual(pf["details"]["reason_code"], code, pf)
                self.assertTrue(pf["fix"], pf)
                self.assertEqual(d["postfix_answer"]["reply"], "NOTFOUND ", d["postfix_answer"])

    def test_3_3_redirect_names_the_location_and_is_not_followed(self):
        pf = self.dom("redirect-enforce.test")["checks"]["policy_fetch"]
        self.assertIn("https://mta-sts.good-enforce.test/.well-known/mta-sts.txt", pf["summary"])

    def test_3_1_missing_or_multiple_records_fail_dns_record(self):
        for name, code in RECORD_FAILS.items():
            with self.subTest(domain=name):
                d = self.dom(name)
                self.assertEqual(d["checks"]["dns_record"]["status"], "fail", d["checks"]["dns_record"])
                self.assertEqual(d["checks"]["dns_record"]["details"]["reason_code"], code)
                self.assertEqual(d["status"], "critical")
                for c in ("policy_fetch", "policy_syntax", "mx_alignment", "mode"):
                    self.assertEqual(d["checks"][c]["status"], "skip", c)
        self.assertEqual(self.dom("multi-txt.test")["checks"]["dns_record"]["details"]["sts_records"], 2)

    def test_3_1_cname_chain_is_reported(self):
        rec = self.dom("txt-cname.test")["checks"]["dns_record"]
        self.assertEqual(rec["details"]["cnames"], ["_mta-sts.cname-target.test"], rec)
        self.assertEqual(rec["details"]["id"], "cname1")
        self.assertIn("via CNAME", rec["summary"])

    def test_4_1_one_label_wildcard_and_the_deep_mx(self):
        ok = self.dom("wildcard-enforce.test")["checks"]["mx_alignment"]
        self.assertEqual(ok["details"]["mx"][0]["covered_by"], "*.wildcard-enforce.test")
        deep = self.dom("wildcard-deep.test")["checks"]["mx_alignment"]
        self.assertIsNone(deep["details"]["mx"][0]["covered_by"])
        self.assertIn("exactly one label", deep["details"]["mx"][0]["why"])
        self.assertIn("mx-pattern-unused", [f["code"] for f in deep["findings"]])

    def test_4_1_mx_not_in_policy_fails_even_with_a_cert_for_the_policy_name(self):
        c = self.dom("mxname-vs-cert.test")["checks"]
        self.assertEqual(c["mx_alignment"]["details"]["mx"][0]["host"], "mx.rogue.test")
        self.assertIn("cert-name-mismatch", [f["code"] for f in c["mx_certificates"]["findings"]])

    def test_4_2_certificate_failures_are_named(self):
        cases = {"expired-cert-enforce.test": ("cert-invalid", "cert-expired"),
                 "bad-cert-enforce.test": ("cert-invalid", "cert-name-mismatch"),
                 "selfsigned-mx-enforce.test": ("cert-invalid", "cert-chain-invalid"),
                 "nostarttls-enforce.test": ("no-starttls", None)}
        for name, (result, problem) in cases.items():
            with self.subTest(domain=name):
                probe = self.dom(name)["checks"]["mx_certificates"]["details"]["hosts"][0]["probes"][0]
                self.assertEqual(probe["result"], result, probe)
                self.assertTrue(probe["address"].startswith("127.0.1."), probe)
                if problem:
                    self.assertIn(problem, probe["problems"], probe)
        good = self.dom("good-enforce.test")["checks"]["mx_certificates"]["details"]["hosts"][0]["probes"][0]
        self.assertIn(good["tls_version"], ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(good["certificate"]["name"], "matches")
        self.assertEqual(good["certificate"]["chain"], "trusted")

    def test_two_mx_one_broken_is_degraded_not_deferred(self):
        d = self.dom("two-mx-enforce.test")
        mode = d["checks"]["mode"]
        self.assertEqual(mode["details"]["delivery_if_enforced"]["verdict"], "degraded", mode)
        self.assertEqual(d["checks"]["mx_certificates"]["details"]["counts"]["ok"], 1)

    def test_5_mode_advice(self):
        testing = self.dom("good-testing.test")["checks"]["mode"]
        self.assertIn("ready for mode enforce", testing["summary"])
        self.assertIn("mode: enforce", testing["fix"])
        self.assertIn("withdrawn", self.dom("none-mode.test")["checks"]["mode"]["summary"])
        deferred = self.dom("expired-cert-enforce.test")["checks"]["mode"]
        self.assertIn("deferring mail", deferred["summary"])

    def test_rfc8460_tlsrpt_record_is_read(self):
        t = self.dom("good-enforce.test")["checks"]["tlsrpt"]
        self.assertEqual(t["details"]["rua"], ["mailto:tlsrpt@good-enforce.test"], t)

    def test_dane_tlsa_records_are_information(self):
        dane = self.dom("tlsa.test")["checks"]["dane"]
        self.assertEqual(dane["status"], "info", dane)
        rec = dane["details"]["hosts"][0]["records"][0]
        self.assertEqual((rec["usage"], rec["selector"], rec["matching"]), (3, 1, 1))
        self.assertEqual(self.dom("good-enforce.test")["checks"]["dane"]["status"], "pass")

    # ---- schema and exit status ----------------------------------------
    def test_json_schema(self):
        self.assertEqual(set(self.doc), {"status", "domains"})
        self.assertEqual(self.doc["status"], "critical")
        self.assertEqual(self.rc, 2)
        self.assertEqual(len(self.doc["domains"]), len(ALL))
        for d in self.doc["domains"]:
            with self.subTest(domain=d["domain"]):
                self.assertIn(d["status"], ("ok", "warning", "critical", "unknown"))
                self.assertEqual(set(d["checks"]), set(CHECK_IDS))
                self.assertIn("reply", d["postfix_answer"])
                self.assertIn(d["mode"], (None, "enforce", "testing", "none"))
                for cid, c in d["checks"].items():
                    self.assertEqual(set(c), {"status", "summary", "details", "fix", "findings"}, cid)
                    self.assertIn(c["status"], STATUSES, cid)
                    self.assertTrue(c["summary"], cid)
                    self.assertIsInstance(c["details"], dict, cid)
                    self.assertTrue(c["fix"] is None or isinstance(c["fix"], str), cid)

    def test_exit_codes_ok_warning_critical_unknown(self):
        cfg = self.cfg
        self.assertEqual(check(cfg, "good-enforce.test")[0], 0)
        self.assertEqual(check(cfg, "testing-bad-cert.test")[0], 1)
        self.assertEqual(check(cfg, "expired-cert-enforce.test")[0], 2)
        rc, out, err = w.stsguard("-c", cfg, "--dns", w.DNS_SILENT, "check", "--json", "good-enforce.test")
        doc = json.loads(out)
        self.assertEqual((rc, doc["status"]), (3, "unknown"), out)
        self.assertEqual(doc["domains"][0]["checks"]["dns_record"]["status"], "unknown")
        self.assertEqual(doc["domains"][0]["postfix_answer"]["reason_code"], "temp-failure-open")
        # worst over the domains: critical outranks unknown, unknown outranks warning
        rc, out, err = w.stsguard("-c", cfg, "--dns", w.DNS_SERVFAIL, "check", "good-enforce.test")
        self.assertEqual(rc, 3, out + err)
        self.assertEqual(check(cfg, "good-enforce.test", "testing-bad-cert.test")[0], 1)
        self.assertEqual(check(cfg, "testing-bad-cert.test", "expired-cert-enforce.test")[0], 2)
        rc, doc, _, _ = check(cfg, "good-enforce.test", "bad..name")
        self.assertEqual(rc, 3)
        self.assertIn("invalid domain", doc["domains"][1]["error"])

    def test_table_output_has_every_check_and_a_summary_line(self):
        rc, out, err = w.stsguard("-c", self.cfg, "check", "expired-cert-enforce.test")
        self.assertEqual(rc, 2, err)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("expired-cert-enforce.test: CRITICAL - MTA-STS mode enforce"), out)
        for cid in CHECK_IDS:
            self.assertIn(cid, out)
        self.assertIn("fix: ", out)
        self.assertNotIn("\033[", out)      # not a terminal: no colour
        self.assertIn("postfix answer (postfix, cold cache): OK secure match=mx.expired-cert-enforce.test", out)

    def test_verbose_json_has_the_smtp_transcript(self):
        rc, doc, err, _ = check(self.cfg, "--verbose", "good-enforce.test")
        probe = doc["domains"][0]["checks"]["mx_certificates"]["details"]["hosts"][0]["probes"][0]
        self.assertTrue(any(l.startswith("S: 220") for l in probe["transcript"]), probe)
        self.assertTrue(any(l.startswith("C: STARTTLS") for l in probe["transcript"]), probe)


class CheckAgreesWithServeTest(w.WorldTestCase):
    """The postfix_answer of `check` is what `serve` answers on a cold cache;
    then policy_id_hygiene against the cache serve filled."""

    DOMAINS = ["good-enforce.test", "good-testing.test", "mx-mismatch-enforce.test", "wildcard-deep.test",
               "wildcard-enforce.test", "two-mx-enforce.test", "none-mode.test", "no-sts.test",
               "txt-but-404.test", "multi-txt.test", "txt-cname.test"]

    def test_check_and_serve_give_postfix_the_same_answer_then_id_hygiene(self):
        cfg = w.stsguard_config("check-serve", fresh_cache=True, dns_retries="0",
                                probe_timeout="%ds" % PROBE_TIMEOUT)
        rc, doc, err, _ = check(cfg, *self.DOMAINS)
        mine = {d["domain"]: d["postfix_answer"]["reply"] for d in doc["domains"]}
        for d in doc["domains"]:
            self.assertEqual(d["checks"]["policy_id_hygiene"]["status"], "skip")  # no cache yet
        self.addCleanup(w.stop_policy)
        w.start_serve(cfg)
        for domain in self.DOMAINS:
            with self.subTest(domain=domain):
                self.assertEqual(w.smq(domain), mine[domain])

        # serve has cached good-enforce.test and good-testing.test now.
        self.addCleanup(w.reset)
        w.set_policy("good-enforce.test",
                     "version: STSv1\nmode: testing\nmx: mx1.good-enforce.test\nmax_age: 86400\n")
        rc, doc, err, _ = check(cfg, "good-enforce.test", "good-testing.test")
        by = {d["domain"]: d["checks"]["policy_id_hygiene"] for d in doc["domains"]}
        changed = by["good-enforce.test"]
        self.assertEqual(changed["status"], "warn", changed)
        self.assertEqual(changed["details"]["changes"], ["mode enforce -> testing"], changed)
        self.assertEqual(changed["details"]["cached_id"], changed["details"]["fresh_id"])
        self.assertEqual(by["good-testing.test"]["status"], "pass", by["good-testing.test"])


class CheckStallingMxTest(w.WorldTestCase):
    """Several MX hosts that accept TCP and never send a banner: the check
    takes about one probe_timeout, not one per MX.  The world has no
    stalling SMTP host, so this test starts listeners that never accept
    (the kernel completes the handshake) on 127.0.3.1-3:25 for 40 s."""

    STALL = ["127.0.3.1", "127.0.3.2", "127.0.3.3"]

    def setUp(self):
        script = ("import socket,time\n"
                  "s=[socket.create_server((a,25)) for a in %r]\n"
                  "open(%r,'w').close()\n"
                  "time.sleep(40)\n") % (self.STALL, self.ready_file())
        try:
            os.unlink(self.ready_file())
        except FileNotFoundError:
            pass
        w.run_in_world("setsid %s -c %s </dev/null >/dev/null 2>&1 &" % (w.PY, shlex.quote(script)), timeout=10)
        end = time.monotonic() + 10
        while not os.path.exists(self.ready_file()):
            if time.monotonic() > end:
                self.fail("stall listeners did not start")
            time.sleep(0.1)
        self.addCleanup(w.reset)
        for i, addr in enumerate(self.STALL, 1):
            w.dns_add("stall%d.stall-mx.test. 300 IN A %s" % (i, addr))
        w.dns_add("stall-mx.test. 300 IN MX 10 stall1.stall-mx.test.")
        w.dns_add("stall-mx.test. 300 IN MX 20 stall2.stall-mx.test.")
        w.dns_add("stall-mx.test. 300 IN MX 30 stall3.stall-mx.test.")
        w.dns_add("stall-mx.test. 300 IN MX 40 mx1.good-enforce.test.")

    def ready_file(self):
        return w.state_path("stsguard", "stall-listeners.ready")

    def test_probes_of_several_stalling_mx_run_in_parallel(self):
        cfg = w.stsguard_config("check-stall", dns_retries="0", probe_timeout="%ds" % PROBE_TIMEOUT)
        rc, doc, err, secs = check(cfg, "stall-mx.test", timeout=60)
        d = doc["domains"][0]
        probes = {h["host"]: h["probes"][0] for h in d["checks"]["mx_certificates"]["details"]["hosts"]}
        for i in (1, 2, 3):
            p = probes["stall%d.stall-mx.test" % i]
            self.assertEqual((p["result"], p["failure"]["code"]), ("unreachable", "mx-timeout"), p)
            self.assertGreaterEqual(p["seconds"], PROBE_TIMEOUT - 0.5, p)
        self.assertEqual(probes["mx1.good-enforce.test"]["result"], "ok")
        # Unreachable is reported apart from TLS failures: a warning, not a failure.
        self.assertEqual(d["checks"]["mx_certificates"]["status"], "warn", d["checks"]["mx_certificates"])
        # Three stalled probes in sequence would take 3 x 3 s.
        self.assertLess(secs, 2 * PROBE_TIMEOUT + 1.5, "check took %.1f s" % secs)


class DryRunWorldTest(w.WorldTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cfg = w.stsguard_config("dry-run", dns_retries="0", probe_timeout="%ds" % PROBE_TIMEOUT,
                                    policy_fetch_timeout="3s", check_concurrency="8")

    def test_mixed_list_is_sorted_by_what_would_break(self):
        text = ("# destinations\n"
                "good-enforce.test\nexpired-cert-enforce.test\ntwo-mx-enforce.test\ngood-testing.test\n"
                "testing-bad-cert.test\nno-sts.test\nstall.test\nnone-mode.test\nwildcard-deep.test\n"
                "not a domain\n"
                "Mar  1 12:00:00 mx postfix/smtp[1]: 4F: to=<a@good-enforce.test>, relay=x, status=sent\n"
                "Mar  1 12:00:00 mx postfix/local[2]: 4G: to=<root@localhost.test>, status=sent\n")
        rc, doc, err, secs = dry_run(self.cfg, text)
        verdicts = {d["domain"]: d["verdict"] for d in doc["domains"]}
        self.assertEqual(verdicts, {
            "good-enforce.test": "ok", "good-testing.test": "ok",
            "expired-cert-enforce.test": "would-fail", "wildcard-deep.test": "would-fail",
            "testing-bad-cert.test": "would-fail", "two-mx-enforce.test": "degraded",
            "stall.test": "unknown", "none-mode.test": "mode-none", "no-sts.test": "no-policy"}, doc)
        order = [d["verdict"] for d in doc["domains"]]
        rank = ["would-fail", "degraded", "unknown", "ok", "mode-none", "no-policy"]
        self.assertEqual(order, sorted(order, key=rank.index))
        by = {d["domain"]: d for d in doc["domains"]}
        self.assertTrue(by["expired-cert-enforce.test"]["enforced_now"])
        self.assertFalse(by["testing-bad-cert.test"]["enforced_now"])
        self.assertEqual(by["good-enforce.test"]["count"], 2)
        self.assertEqual(by["stall.test"]["reason_code"], "https-timeout")
        self.assertEqual(by["wildcard-deep.test"]["reason_code"], "no-mx-match")
        self.assertEqual(by["expired-cert-enforce.test"]["checks"]["mx_certificates"]["status"], "fail")
        self.assertEqual(doc["summary"], {"would-fail": 3, "degraded": 1, "unknown": 1, "ok": 2,
                                          "mode-none": 1, "no-policy": 1})
        self.assertEqual(doc["input"]["problem_count"], 1)
        self.assertEqual(doc["input"]["problems"][0]["line"], 11)
        self.assertEqual(doc["input"]["log_lines"], 1)
        self.assertEqual(doc["input"]["ignored"], 1)
        self.assertEqual((rc, doc["status"]), (2, "critical"))
        # Concurrent: the 3 s stall does not add to the rest.
        self.assertLess(secs, 12, "dry-run took %.1f s" % secs)

    def test_lookups_that_time_out_are_unknown_not_broken(self):
        text = "good-enforce.test\nexpired-cert-enforce.test\nno-sts.test\nwildcard-deep.test\n"
        rc, doc, err, secs = dry_run(self.cfg, text, "--dns", w.DNS_SILENT)
        self.assertEqual({d["verdict"] for d in doc["domains"]}, {"unknown"}, doc)
        self.assertEqual({d["reason_code"] for d in doc["domains"]}, {"dns-timeout"})
        self.assertEqual((rc, doc["status"]), (3, "unknown"))
        # dns_timeout = 1s, no retries, 4 domains checked at once.
        self.assertLess(secs, 6, "dry-run took %.1f s" % secs)

    def test_human_output_and_exit_status(self):
        path = w.state_path("stsguard", "dry-run-human.txt")
        with open(path, "w") as f:
            f.write("good-enforce.test\ntwo-mx-enforce.test\n")
        rc, out, err = w.stsguard("-c", self.cfg, "dry-run", path, timeout=60)
        self.assertEqual(rc, 1, out + err)     # degraded only: a warning
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("VERDICT"), out)
        self.assertTrue(lines[1].startswith("degraded"), out)
        self.assertIn("1 degraded, 1 ok", lines[-1])
        self.assertNotIn("\r", err)            # no progress line when stderr is not a terminal
        rc, out, err = w.stsguard("-c", self.cfg, "dry-run", "/nonexistent/list", timeout=30)
        self.assertEqual(rc, 3)
        self.assertIn("cannot read", err)
        rc, out, err = w.stsguard("-c", self.cfg, "dry-run", "-", input="good-enforce.test\n", timeout=60)
        self.assertEqual(rc, 0, out + err)
