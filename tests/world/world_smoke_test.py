"""Smoke test of the test world itself (no stsguard needed).

Proves each building block that the stsguard world tests rely on: the
resolver and its special records, the fault DNS servers, the policy hosts
(good, bad certificates, odd statuses, stalls), the MX hosts, the sending
Postfix (without and with a policy service), and the runtime edits.
"""
import time
import unittest

import worldlib as w


def curl(url, max_time=5):
    """GET url inside the world -> (rc, http_code, content_type, body, stderr)."""
    r = w.run_in_world(["curl", "-sS", "-m", str(max_time), "-w", "\n%{http_code} %{content_type}",
                        url], timeout=max_time + 10)
    body, _, meta = r.out.rpartition("\n")
    code, _, ctype = meta.partition(" ")
    return r.rc, code, ctype, body, r.err


def policy_url(domain):
    return "https://mta-sts.%s/.well-known/mta-sts.txt" % domain


def domain_cfg(domain):
    return next(d for d in w.world_json()["domains"] if d["domain"] == domain)


class WorldSmokeTest(w.WorldTestCase):

    # ---- isolation -----------------------------------------------------
    def test_world_has_only_lo_and_a_clean_environment(self):
        r = w.run_in_world(["ip", "-o", "link", "show"])
        self.assertEqual(r.rc, 0, r.err)
        self.assertEqual([l.split(":")[1].strip() for l in r.out.splitlines()], ["lo"])
        env = dict(l.split("=", 1) for l in w.run_in_world(["env"]).out.splitlines())
        self.assertEqual(env["SSL_CERT_FILE"], w.ca_file())
        self.assertEqual(env["WORLD_DNS"], w.DNS)
        for leak in ("http_proxy", "HTTPS_PROXY", "NIX_SSL_CERT_FILE", "LD_PRELOAD"):
            self.assertNotIn(leak, env)
        resolv = w.run_in_world(["cat", "/etc/resolv.conf"]).out
        self.assertIn("nameserver 127.0.0.53", resolv)

    # ---- DNS -------------------------------------------------------------
    def test_dns_answers_txt_and_mx_of_good_enforce(self):
        d = w.dig("_mta-sts.good-enforce.test", "TXT")
        self.assertEqual(d.status, "NOERROR", d.out)
        self.assertEqual([a[2] for a in d.answers], ['"v=STSv1; id=20240101T000000"'])
        self.assertIn("ra", d.flags)          # a recursive resolver, not an authority
        self.assertNotIn("aa", d.flags)
        mx = w.dig("good-enforce.test", "MX")
        self.assertEqual([a[2] for a in mx.answers], ["10 mx1.good-enforce.test."])
        a = w.dig("mx1.good-enforce.test", "A")
        self.assertEqual([x[2] for x in a.answers], ["127.0.1.1"])
        tlsrpt = w.dig("_smtp._tls.good-enforce.test", "TXT")
        self.assertEqual([x[2] for x in tlsrpt.answers],
                         ['"v=TLSRPTv1; rua=mailto:tlsrpt@good-enforce.test"'])

    def test_dns_special_cases(self):
        multi = w.dig("_mta-sts.multi-txt.test", "TXT")
        self.assertEqual(sorted(a[2] for a in multi.answers),
                         ['"v=STSv1; id=multi1"', '"v=STSv1; id=multi2"'])
        chain = w.dig("_mta-sts.txt-cname.test", "TXT")
        self.assertEqual([(a[1], a[2]) for a in chain.answers],
                         [("CNAME", "_mta-sts.cname-target.test."),
                          ("TXT", '"v=STSv1; id=cname1"')])
        self.assertEqual(w.dig("mta-sts.txt-cname.test").status, "NOERROR")
        self.assertEqual(w.dig("_mta-sts.txt-no-host.test", "TXT").status, "NOERROR")
        self.assertEqual(w.dig("mta-sts.txt-no-host.test").status, "NXDOMAIN")
        self.assertEqual(w.dig("_mta-sts.no-sts.test", "TXT").status, "NXDOMAIN")

    def test_dns_tlsa_matches_the_mx_key(self):
        t = w.dig("_25._tcp.mx.tlsa.test", "TLSA")
        self.assertEqual(len(t.answers), 1, t.out)
        got = t.answers[0][2].replace(" ", "").lower()
        crt = w.state_path("certs", "good", "mx.tlsa.test.crt")
        r = w.run_in_world("openssl x509 -in '%s' -noout -pubkey | openssl pkey -pubin -outform DER"
                           " | sha256sum" % crt)
        self.assertEqual(got, "311" + r.out.split()[0])

    def test_dns_never_leaves_the_test_tld(self):
        t0 = time.monotonic()
        d = w.dig("www.example.com", "A")
        self.assertEqual(d.status, "NXDOMAIN", d.out)
        self.assertLess(time.monotonic() - t0, 3)       # no recursion, no timeout

    def test_dns_servfail_server(self):
        for tcp in (False, True):
            with self.subTest(tcp=tcp):
                d = w.dig("_mta-sts.good-enforce.test", "TXT", server=w.DNS_SERVFAIL, tcp=tcp)
                self.assertEqual(d.status, "SERVFAIL", d.out)

    def test_dns_silent_server_never_answers(self):
        for tcp in (False, True):
            with self.subTest(tcp=tcp):
                t0 = time.monotonic()
                d = w.dig("_mta-sts.good-enforce.test", "TXT", server=w.DNS_SILENT, tcp=tcp, time_s=1)
                self.assertIsNone(d.status, d.out)
                self.assertEqual(d.rc, 9, d.out)        # dig: no reply from server
                self.assertGreaterEqual(time.monotonic() - t0, 0.9)

    # ---- policy hosts ----------------------------------------------------
    def test_https_good_policy(self):
        rc, code, ctype, body, err = curl(policy_url("good-enforce.test"))
        self.assertEqual((rc, code, ctype), (0, "200", "text/plain"), err)
        self.assertEqual(body, "version: STSv1\nmode: enforce\nmx: mx1.good-enforce.test\n"
                               "max_age: 86400\n")

    def test_https_bad_certificates_fail_verification(self):
        cases = {"sts-https-badcert.test": "no alternative certificate subject name",
                 "https-expired.test": "certificate has expired",
                 "https-selfsigned.test": "self-signed certificate"}
        for dom, msg in cases.items():
            with self.subTest(dom):
                rc, code, _, _, err = curl(policy_url(dom))
                self.assertEqual(rc, 60, err)           # CURLE_PEER_FAILED_VERIFICATION
                self.assertIn(msg, err)
                self.assertEqual(code, "000")

    def test_https_without_sni_gets_the_default_certificate(self):
        ip = domain_cfg("good-enforce.test")["sts_ip"]
        r = w.run_in_world("openssl s_client -connect %s:443 -noservername </dev/null" % ip)
        self.assertIn("CN = default.invalid", r.out)

    def test_https_statuses_types_and_sizes(self):
        rc, code, ctype, _, err = curl(policy_url("http-500.test"))
        self.assertEqual((rc, code), (0, "500"), err)
        rc, code, _, _, err = curl(policy_url("txt-but-404.test"))
        self.assertEqual((rc, code), (0, "404"), err)
        rc, code, ctype, body, err = curl(policy_url("wrong-ctype.test"))
        self.assertEqual((rc, code, ctype), (0, "200", "text/html"), err)
        self.assertTrue(body.startswith("version: STSv1\n"))
        r = w.run_in_world(["curl", "-sS", "-m", "5", "-D", "-", "-o", "/dev/null",
                            policy_url("redirect-enforce.test")])
        self.assertIn("HTTP/1.1 301", r.out)
        self.assertIn("location: https://mta-sts.good-enforce.test/.well-known/mta-sts.txt",
                      r.out.lower())
        rc, code, ctype, body, err = curl(policy_url("oversize.test"))
        self.assertEqual((rc, code, ctype), (0, "200", "text/plain"), err)
        self.assertGreaterEqual(len(body.encode()), 100 * 1024)
        self.assertLess(len(body.encode()), 110 * 1024)
        lines = body.splitlines()
        self.assertEqual(lines[:4], ["version: STSv1", "mode: enforce", "mx: mx.oversize.test",
                                     "max_age: 86400"])
        self.assertTrue(all(l.startswith("x-pad-") for l in lines[4:]))

    def test_https_stalling_hosts(self):
        t0 = time.monotonic()
        rc, code, _, _, err = curl(policy_url("stall.test"), max_time=1)
        self.assertEqual(rc, 28, err)                   # CURLE_OPERATION_TIMEDOUT
        self.assertEqual(code, "000")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        rc, code, ctype, body, err = curl(policy_url("stall-body.test"), max_time=1)
        self.assertEqual(rc, 28, err)
        self.assertEqual((code, ctype), ("200", "text/plain"))
        self.assertEqual(body, "version: STSv1\n")       # first line, then nothing
        self.assertIn("bytes received", err)

    # ---- MX hosts ----------------------------------------------------------
    def test_mx_hosts_offer_starttls_with_each_certificate_kind(self):
        r = w.run_in_world(["swaks", "--server", "mx1.good-enforce.test:25", "--quit-after", "EHLO",
                            "--helo", "probe.world.test"], timeout=20)
        self.assertIn("<-  220 mx1.good-enforce.test", r.out)
        self.assertIn("250-STARTTLS", r.out)
        r = w.run_in_world(["swaks", "--server", "mx.nostarttls-enforce.test:25",
                            "--quit-after", "EHLO"], timeout=20)
        self.assertIn("250 HELP", r.out)
        self.assertNotIn("STARTTLS", r.out)
        cases = {"mx1.good-enforce.test": "Verify return code: 0 (ok)",
                 "mx.bad-cert-enforce.test": "Verify return code: 62 (hostname mismatch)",
                 "mx.expired-cert-enforce.test": "Verify return code: 10 (certificate has expired)",
                 "mx.selfsigned-mx-enforce.test": "Verify return code: 18 (self-signed certificate)"}
        for host, verdict in cases.items():
            with self.subTest(host):
                r = w.run_in_world("openssl s_client -starttls smtp -connect %s:25 -servername %s "
                                   "-verify_hostname %s </dev/null" % (host, host, host), timeout=20)
                self.assertIn(verdict, r.out)

    # ---- sending Postfix --------------------------------------------------
    def test_postfix_defers_when_no_policy_service_answers(self):
        w.stop_policy()
        self.addCleanup(w.clear_queue)
        qid = w.send("good-enforce.test")
        self.assertRegex(qid, r"^[0-9A-Za-z]+$")
        res = w.result("good-enforce.test", qid, wait=20)
        self.assertEqual(res["status"], "deferred", res)
        self.assertEqual(res["dsn"], "4.7.5", res)
        self.assertIn("client TLS configuration problem", res["reason"])
        self.assertTrue(any("policy table lookup error" in l for l in res["details"]), res)
        # Other tests may have delivered to good-enforce.test before: look for this message.
        for f in w.mail("good-enforce.test"):
            with open(f, errors="replace") as fh:
                self.assertNotIn("id %s" % qid, fh.read(), f)

    def test_postfix_follows_a_policy_service(self):
        w.start_policy(w.static_policy_cmd(**{
            "bad-cert-enforce.test": "OK secure match=mx.bad-cert-enforce.test"}))
        self.addCleanup(w.clear_queue)
        self.addCleanup(w.stop_policy)
        self.assertEqual(w.smq("good-enforce.test"), "NOTFOUND ")
        self.assertEqual(w.smq("bad-cert-enforce.test"), "OK secure match=mx.bad-cert-enforce.test")
        good, bad = w.send("good-enforce.test"), w.send("bad-cert-enforce.test")
        res = w.result("good-enforce.test", good, wait=20)
        self.assertEqual((res["status"], res["tls"]), ("delivered", "Trusted"), res)
        self.assertIn("stored by mx1.good-enforce.test", res["reason"])
        stored = [open(f).read() for f in w.mail("good-enforce.test")]
        self.assertTrue(any(("id %s" % good) in m and m.startswith("X-World-Received: "
                                                                 "mx=mx1.good-enforce.test; tls=TLSv1")
                            for m in stored), stored)
        res = w.result("bad-cert-enforce.test", bad, wait=20)
        self.assertEqual((res["status"], res["tls"]), ("deferred", "Untrusted"), res)
        self.assertIn("Server certificate not verified", res["reason"])

    # ---- runtime edits -----------------------------------------------------
    def test_runtime_edits_and_reset(self):
        self.addCleanup(w.reset)
        w.set_txt("good-testing.test", "v=STSv1; id=edit1")
        self.assertEqual([a[2] for a in w.dig("_mta-sts.good-testing.test", "TXT").answers],
                         ['"v=STSv1; id=edit1"'])
        w.set_txt("txt-cname.test", "v=STSv1; id=a", "v=STSv1; id=b")
        self.assertEqual(sorted((a[1], a[2]) for a in w.dig("_mta-sts.txt-cname.test", "TXT").answers),
                         [("TXT", '"v=STSv1; id=a"'), ("TXT", '"v=STSv1; id=b"')])
        w.del_txt("good-enforce.test")
        self.assertEqual(w.dig("_mta-sts.good-enforce.test", "TXT").status, "NXDOMAIN")
        w.dns_add("mta-sts.txt-no-host.test. 300 IN A 127.0.2.1")
        self.assertEqual([a[2] for a in w.dig("mta-sts.txt-no-host.test").answers], ["127.0.2.1"])
        w.policy_host("good-enforce.test", "down")
        self.assertEqual(curl(policy_url("good-enforce.test"))[1], "503")
        w.policy_host("good-enforce.test", "up")
        self.assertEqual(curl(policy_url("good-enforce.test"))[1], "200")
        w.set_policy("good-testing.test", "version: STSv1\nmode: enforce\nmx: x.test\nmax_age: 5\n")
        self.assertEqual(curl(policy_url("good-testing.test"))[3],
                         "version: STSv1\nmode: enforce\nmx: x.test\nmax_age: 5\n")
        w.policy_host("good-enforce.test", "down")
        with self.assertRaises(w.WorldError):
            w.policy_host("stall.test", "down")     # no nginx vhost to take down

        w.reset()
        self.assertEqual([a[2] for a in w.dig("_mta-sts.good-testing.test", "TXT").answers],
                         ['"v=STSv1; id=20240101T000000"'])
        self.assertEqual(len(w.dig("_mta-sts.txt-cname.test", "TXT").answers), 2)  # CNAME + TXT
        self.assertEqual(w.dig("_mta-sts.good-enforce.test", "TXT").status, "NOERROR")
        self.assertEqual(w.dig("mta-sts.txt-no-host.test").status, "NXDOMAIN")
        self.assertEqual(curl(policy_url("good-enforce.test"))[1], "200")
        self.assertEqual(curl(policy_url("good-testing.test"))[3],
                         domain_cfg("good-testing.test")["policy_body"])

    # ---- the helper that runs the binary under test ------------------------
    def test_stsguard_helper_runs_the_binary_in_the_world(self):
        rc, out, err = w.stsguard("--version")      # skipped when STSGUARD is unset
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("stsguard "), out)


if __name__ == "__main__":
    unittest.main()
