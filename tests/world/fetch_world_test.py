"""World tests of `stsguard fetch`: RFC 8461 discovery over the world's real
DNS (unbound, plus a SERVFAIL and a silent server) and real HTTPS (nginx
and the stalling fault servers), one domain per behaviour.

Each test asserts the outcome, the stable reason code, the failure kind,
the RFC 8460 result type (docs/discovery.md) and the exit status (0 policy,
1 policy with warnings, 2 no policy or permanent failure, 3 temporary
failure).  No cache is involved: `fetch` always discovers.
"""
import json
import time

import worldlib as w

REDIRECT_TARGET = "https://mta-sts.good-enforce.test/.well-known/mta-sts.txt"


class FetchWorldTest(w.WorldTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cfg = w.stsguard_config("fetch")
        # dns_retries = 0: the silent-DNS case then costs one dns_timeout.
        cls.cfg_fast_dns = w.stsguard_config("fetch-fast-dns", dns_retries="0")
        # The default, as shipped: internal addresses are refused.
        cls.cfg_no_private = w.stsguard_config("fetch-no-private", policy_fetch_allow_private=None)

    def fetch(self, domain, *global_opts, cfg=None, timeout=30):
        """-> (exit status, parsed JSON, stderr, seconds)"""
        t0 = time.monotonic()
        rc, out, err = w.stsguard("-c", cfg or self.cfg, *global_opts, "fetch", "--json", domain,
                                  timeout=timeout)
        secs = time.monotonic() - t0
        try:
            j = json.loads(out)
        except ValueError:
            self.fail("fetch --json %s: no JSON (exit %d)\nstdout: %s\nstderr: %s" % (domain, rc, out, err))
        self.assertEqual(j["domain"], domain, j)
        return rc, j, err, secs

    def assertOutcome(self, j, rc, outcome, code, failure, rfc8460, exit_status):
        got = (j["outcome"], j["reason_code"], j["failure"], j["rfc8460_result_type"], rc)
        self.assertEqual(got, (outcome, code, failure, rfc8460, exit_status),
                         json.dumps(j, indent=1))
        self.assertTrue(j["reason"], j)

    def assertPolicy(self, j, mode, mx, txt_id="20240101T000000"):
        self.assertEqual(j["policy"]["verdict"], "valid", j)
        self.assertEqual(j["policy"]["mode"], mode, j)
        self.assertEqual(j["policy"]["mx"], mx, j)
        self.assertEqual(j["txt"]["id"], txt_id, j)
        self.assertEqual(j["txt"]["verdict"], "valid", j)
        self.assertEqual(j["fetch"]["http_status"], 200, j)
        self.assertEqual(j["fetch"]["content_type"], "text/plain", j)
        self.assertTrue(j["fetch"]["remote_ip"].startswith("127.0.2."), j)
        self.assertIn(j["fetch"]["tls_version"], ("TLSv1.2", "TLSv1.3"), j)

    # ---- valid policies (3.1, 3.2, 3.3) ----------------------------------
    def test_3_valid_enforce_policy_is_fetched(self):
        rc, j, err, _ = self.fetch("good-enforce.test")
        self.assertOutcome(j, rc, "policy", "policy-ok", None, None, 0)
        self.assertPolicy(j, "enforce", ["mx1.good-enforce.test"])
        self.assertEqual(j["policy"]["max_age"], 86400)
        self.assertEqual(j["fetch"]["url"], REDIRECT_TARGET)
        self.assertEqual(j["txt"]["records"], ["v=STSv1; id=20240101T000000"])
        self.assertEqual(j["reason"], "mode enforce, max_age 86400")

    def test_3_2_testing_policy_is_a_policy(self):
        rc, j, err, _ = self.fetch("good-testing.test")
        self.assertOutcome(j, rc, "policy", "policy-ok", None, None, 0)
        self.assertPolicy(j, "testing", ["mx.good-testing.test"])

    def test_3_2_mode_none_is_a_valid_policy(self):
        rc, j, err, _ = self.fetch("none-mode.test")
        self.assertOutcome(j, rc, "policy", "policy-ok", None, None, 0)
        self.assertPolicy(j, "none", ["mx.none-mode.test"])

    def test_3_1_txt_reached_through_a_cname_is_followed(self):
        rc, j, err, _ = self.fetch("txt-cname.test")
        self.assertOutcome(j, rc, "policy", "policy-ok", None, None, 0)
        self.assertPolicy(j, "enforce", ["mx.txt-cname.test"], txt_id="cname1")
        self.assertEqual(j["txt"]["cnames"], ["_mta-sts.cname-target.test"], j)
        # The policy still comes from mta-sts.<the policy domain>, not the CNAME target.
        self.assertEqual(j["fetch"]["url"], "https://mta-sts.txt-cname.test/.well-known/mta-sts.txt")

    # ---- no policy (3.1) ----------------------------------------------------
    def test_3_1_no_txt_record_means_no_policy(self):
        rc, j, err, _ = self.fetch("no-sts.test")
        self.assertOutcome(j, rc, "no-policy", "no-txt", None, None, 2)
        self.assertIn("NXDOMAIN", j["reason"])
        self.assertIsNone(j["fetch"])
        self.assertIsNone(j["policy"])

    def test_3_1_several_sts_txt_records_mean_no_policy(self):
        before = w.https_hits("multi-txt.test")
        rc, j, err, _ = self.fetch("multi-txt.test")
        self.assertOutcome(j, rc, "no-policy", "txt-multiple", None, None, 2)
        self.assertEqual(sorted(j["txt"]["records"]), ["v=STSv1; id=multi1", "v=STSv1; id=multi2"])
        self.assertIsNone(j["txt"]["id"])
        self.assertEqual(w.https_hits("multi-txt.test"), before, "no policy fetch may follow")

    # ---- policy host failures (3.3) ----------------------------------------
    def test_3_3_txt_but_no_policy_host_is_a_permanent_failure(self):
        rc, j, err, _ = self.fetch("txt-no-host.test")
        self.assertOutcome(j, rc, "failed", "policy-host-not-found", "permanent",
                           "sts-policy-fetch-error", 2)
        self.assertIn("mta-sts.txt-no-host.test", j["reason"])
        self.assertEqual(j["txt"]["verdict"], "valid")

    def test_3_3_http_404_is_a_permanent_fetch_error(self):
        rc, j, err, _ = self.fetch("txt-but-404.test")
        self.assertOutcome(j, rc, "failed", "http-status", "permanent", "sts-policy-fetch-error", 2)
        self.assertIn("HTTP status 404", j["reason"])
        self.assertIsNone(j["policy"])

    def test_3_3_http_500_is_a_temporary_fetch_error(self):
        rc, j, err, _ = self.fetch("http-500.test")
        self.assertOutcome(j, rc, "failed", "http-status", "temporary", "sts-policy-fetch-error", 3)
        self.assertIn("HTTP status 500", j["reason"])

    def test_3_3_redirect_is_not_followed_and_named(self):
        before = w.https_hits("good-enforce.test")
        rc, j, err, _ = self.fetch("redirect-enforce.test")
        self.assertOutcome(j, rc, "failed", "http-redirect", "permanent", "sts-policy-fetch-error", 2)
        self.assertIn("301", j["reason"])
        self.assertIn(REDIRECT_TARGET, j["reason"])
        self.assertIsNone(j["policy"])
        self.assertEqual(w.https_hits("good-enforce.test"), before, "the redirect was followed")

    def test_3_2_wrong_content_type_is_an_invalid_policy(self):
        rc, j, err, _ = self.fetch("wrong-ctype.test")
        self.assertOutcome(j, rc, "failed", "http-content-type", "permanent", "sts-policy-invalid", 2)
        self.assertIn("text/html", j["reason"])
        self.assertIsNone(j["policy"])

    def test_3_3_body_over_64_kib_is_policy_too_large(self):
        rc, j, err, secs = self.fetch("oversize.test")
        self.assertOutcome(j, rc, "failed", "policy-too-large", "permanent", "sts-policy-invalid", 2)
        self.assertIn("65536", j["reason"])
        self.assertIsNone(j["policy"])

    def test_3_3_policy_host_that_never_answers_times_out(self):
        # Accepts TCP, never starts TLS: bounded by policy_fetch_connect_timeout (2s).
        rc, j, err, secs = self.fetch("stall.test")
        self.assertOutcome(j, rc, "failed", "https-timeout", "temporary", "sts-policy-fetch-error", 3)
        self.assertIn("mta-sts.stall.test", j["reason"])
        self.assertLess(secs, 2 + 4, "connect timeout not honoured")

    def test_3_3_policy_body_that_stalls_times_out(self):
        # Headers and one line, then nothing: bounded by policy_fetch_timeout (3s).
        rc, j, err, secs = self.fetch("stall-body.test")
        self.assertOutcome(j, rc, "failed", "https-timeout", "temporary", "sts-policy-fetch-error", 3)
        self.assertIsNone(j["policy"], "a partial body must never be parsed")
        self.assertGreaterEqual(secs, 2.5)
        self.assertLess(secs, 3 + 4, "transfer timeout not honoured")

    def test_3_3_policy_host_certificate_must_pass_pkix(self):
        cases = {"sts-https-badcert.test": "hostname mismatch",
                 "https-expired.test": "certificate has expired",
                 "https-selfsigned.test": "self-signed certificate"}
        for domain, why in cases.items():
            with self.subTest(domain):
                rc, j, err, _ = self.fetch(domain)
                self.assertOutcome(j, rc, "failed", "https-cert-invalid", "permanent",
                                   "sts-webpki-invalid", 2)
                self.assertIn("mta-sts." + domain, j["reason"])
                self.assertIn(why, j["reason"])
                self.assertIsNone(j["fetch"])
                self.assertIsNone(j["policy"])

    # ---- DNS failures --------------------------------------------------------
    def test_dns_servfail_is_a_temporary_failure(self):
        rc, j, err, _ = self.fetch("good-enforce.test", "--dns", w.DNS_SERVFAIL)
        self.assertOutcome(j, rc, "failed", "dns-servfail", "temporary", "sts-policy-fetch-error", 3)
        self.assertIn("SERVFAIL", j["reason"])
        self.assertIn(w.DNS_SERVFAIL, j["reason"])
        self.assertIsNone(j["policy"])

    def test_dns_server_that_never_answers_times_out_in_bounded_time(self):
        rc, j, err, secs = self.fetch("good-enforce.test", "--dns", w.DNS_SILENT, cfg=self.cfg_fast_dns)
        self.assertOutcome(j, rc, "failed", "dns-timeout", "temporary", "sts-policy-fetch-error", 3)
        self.assertIn(w.DNS_SILENT, j["reason"])
        self.assertGreaterEqual(secs, 0.9)
        self.assertLess(secs, 1 + 4, "dns_timeout = 1s, dns_retries = 0 not honoured")

    # ---- the private-address guard (address_guard.h) -------------------------
    def test_policy_host_on_an_internal_address_is_refused_by_default(self):
        before = w.https_hits("good-enforce.test")
        rc, j, err, _ = self.fetch("good-enforce.test", cfg=self.cfg_no_private)
        self.assertOutcome(j, rc, "failed", "policy-host-private", "permanent",
                           "sts-policy-fetch-error", 2)
        self.assertIn("mta-sts.good-enforce.test", j["reason"])
        self.assertIn("127.0.2.1 is loopback", j["reason"])
        self.assertIn("policy_fetch_allow_private = no", j["reason"])
        self.assertEqual(w.https_hits("good-enforce.test"), before, "a request reached the policy host")

    # ---- the human form agrees -------------------------------------------------
    def test_human_output_names_the_reason_and_the_rfc8460_type(self):
        rc, out, err = w.stsguard("-c", self.cfg, "fetch", "https-expired.test")
        self.assertEqual(rc, 2, out + err)
        self.assertIn("https-expired.test: failed (https-cert-invalid)", out)
        self.assertIn("permanent, RFC 8460 result type sts-webpki-invalid", out)
        self.assertIn("certificate has expired", out)


if __name__ == "__main__":
    import unittest
    unittest.main()
