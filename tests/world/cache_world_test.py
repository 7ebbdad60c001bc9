"""World tests of the policy cache behind `stsguard serve` (issue 4):
downgrade protection, refresh on a new TXT id, back-off of failing
domains, expiry, all through the real service, the real DNS and HTTPS.

Moving time: there is no clock to set from outside, so a phase that needs
time to pass restarts the service on the same cache under libfaketime
(worldlib.start_serve(time_offset="+2h")), and reads the cache with
`stsguard query` under the same offset.  "+2h" is past txt_check_interval
(1h + 10 % jitter), so the next lookup queues a TXT re-check; "+13h" is
also past half of max_age (86400), so the policy is re-fetched even with
the TXT id unchanged (proactive refresh); "+25h" is past max_age.  The
lookup that finds a refresh due is answered from the cache at once; the
tests then poll `query` until the refresh has been recorded.

`stsguard cache refresh DOMAIN` forces a refresh without moving time;
CacheRefreshCommandWorldTest uses it (and is skipped for a binary that has
no `cache` command).
"""
import json
import time
import unittest

import worldlib as w

GOOD = "good-enforce.test"
GOOD_OK = "OK secure match=mx1.good-enforce.test servername=hostname"
NOTFOUND = "NOTFOUND "
TESTING_POLICY = "version: STSv1\nmode: testing\nmx: mx1.good-enforce.test\nmax_age: 86400\n"
INVALID_POLICY = "version: STSv1\nmode: enforce\nmx: mx1.good-enforce.test\n"   # no max_age


class CacheCase(w.WorldTestCase):
    """A fresh cache per test; world edits and the service undone after it."""

    def setUp(self):
        self.addCleanup(w.reset)
        self.addCleanup(w.stop_policy)
        name = "cache-" + self.id().rsplit(".", 1)[1][5:45]
        self.cfg = w.stsguard_config(name, fresh_cache=True, **self.settings())

    def settings(self):
        return {}

    def cache_good_enforce(self):
        self.log = w.start_serve(self.cfg)
        self.assertEqual(w.smq(GOOD), GOOD_OK)
        rc, got, err = w.query(self.cfg, GOOD)
        self.assertEqual(got[0]["cache"]["last_outcome"]["code"], "policy-ok", got)
        self.assertEqual(got[0]["cache"]["policy_id"], "20240101T000000", got)
        return got[0]

    def wait_cache(self, domain, what, pred, time_offset=None, timeout=20):
        """Poll `query` until pred(its entry for DOMAIN) -> the entry."""
        end = time.monotonic() + timeout
        while True:
            rc, got, err = w.query(self.cfg, domain, time_offset=time_offset)
            if pred(got[0]):
                return got[0]
            if time.monotonic() > end:
                self.fail("cache of %s: no %s after %ds:\n%s\nservice log:\n%s" % (
                    domain, what, timeout, json.dumps(got, indent=1), self.log.text()[-2000:]))
            time.sleep(0.3)

    def wait_outcome(self, domain, code, time_offset=None, timeout=20):
        """Poll `query` until the cached last outcome of DOMAIN is CODE -> entry."""
        return self.wait_cache(domain, "last outcome " + code,
                               lambda e: e.get("cache", {}).get("last_outcome", {}).get("code") == code,
                               time_offset, timeout)

    def later(self, offset, domain=GOOD, answer=GOOD_OK):
        """Restart the service OFFSET ahead; its first lookup must still get
        ANSWER (from the cache) and queues the due refresh."""
        self.offset = offset
        self.log = w.start_serve(self.cfg, time_offset=offset)
        self.assertEqual(w.smq(domain), answer)


class CacheDowngradeWorldTest(CacheCase):
    """RFC 8461 5 (and 10.2): a cached, unexpired policy is never weakened by
    what an attacker in the path can do: drop the TXT record, block the
    policy host, serve a broken policy."""

    def assertStillEnforced(self, entry, code):
        self.assertEqual(entry["reply"], GOOD_OK, entry)
        self.assertEqual(entry["reason_code"], "enforce", entry)
        self.assertEqual(entry["cache"]["state"], "policy", entry)
        self.assertEqual(entry["cache"]["mode"], "enforce", entry)
        self.assertEqual(entry["cache"]["policy_id"], "20240101T000000", entry)
        self.assertEqual(entry["cache"]["last_outcome"]["code"], code, entry)
        self.assertEqual(w.smq(GOOD), GOOD_OK)

    def test_5_removed_txt_record_keeps_the_cached_enforce_policy(self):
        self.cache_good_enforce()
        hits = w.https_hits(GOOD)
        w.del_txt(GOOD)
        self.later("+2h")
        e = self.wait_outcome(GOOD, "no-txt", time_offset=self.offset)
        self.assertStillEnforced(e, "no-txt")
        self.assertEqual(w.https_hits(GOOD), hits, "no policy fetch is needed for a TXT re-check")

    def test_5_policy_host_down_under_a_new_id_keeps_the_cached_enforce_policy(self):
        self.cache_good_enforce()
        hits = w.https_hits(GOOD)
        w.set_txt(GOOD, "v=STSv1; id=down2")        # a new id makes the fetch due
        w.policy_host(GOOD, "down")
        self.later("+2h")
        e = self.wait_outcome(GOOD, "http-status", time_offset=self.offset)
        self.assertStillEnforced(e, "http-status")
        self.assertIn("HTTP status 503", e["cache"]["last_outcome"]["text"])
        self.assertEqual(e["cache"]["last_outcome"]["kind"], "temporary")
        self.assertEqual(w.https_hits(GOOD), hits + 1)

    def test_5_invalid_policy_at_proactive_refresh_keeps_the_cached_enforce_policy(self):
        self.cache_good_enforce()
        hits = w.https_hits(GOOD)
        w.set_policy(GOOD, INVALID_POLICY)              # same TXT id
        self.later("+13h")
        e = self.wait_outcome(GOOD, "policy-invalid", time_offset=self.offset)
        self.assertStillEnforced(e, "policy-invalid")
        self.assertIn("max_age", e["cache"]["last_outcome"]["text"])
        self.assertEqual(w.https_hits(GOOD), hits + 1)

    def test_5_expired_policy_is_not_used_when_the_refresh_fails(self):
        self.cache_good_enforce()
        w.policy_host(GOOD, "down")
        # Past max_age: even before the service looks, query must not use it.
        rc, got, err = w.query(self.cfg, GOOD, time_offset="+25h")
        self.assertEqual(got[0]["reply"], NOTFOUND, got)
        self.later("+25h", answer=NOTFOUND)             # discovers now: 503, nothing usable
        e = self.wait_outcome(GOOD, "http-status", time_offset=self.offset)
        self.assertEqual(e["reply"], NOTFOUND, e)
        self.assertEqual(e["reason_code"], "temp-failure-open", e)
        self.assertIn("]: good-enforce.test: answer=NOTFOUND reason=temp-failure-open cache=miss",
                      self.log.text())


class CacheRefreshWorldTest(CacheCase):
    """RFC 8461 3.1/3.3: the TXT id is the signal that the policy changed."""

    def test_3_1_new_txt_id_replaces_the_cached_policy(self):
        self.cache_good_enforce()
        w.set_policy(GOOD, TESTING_POLICY)
        w.set_txt(GOOD, "v=STSv1; id=changed1")
        self.later("+2h")                               # still the cached enforce policy
        e = self.wait_cache(GOOD, "policy id changed1",
                            lambda e: e.get("cache", {}).get("policy_id") == "changed1",
                            time_offset=self.offset)
        self.assertEqual(e["cache"]["last_outcome"]["code"], "policy-ok", e)
        self.assertEqual(e["cache"]["mode"], "testing", e)
        self.assertEqual((e["reply"], e["reason_code"]), (NOTFOUND, "mode-testing"), e)
        self.assertEqual(w.smq(GOOD), NOTFOUND)

    def test_3_1_unchanged_id_does_not_refetch_before_half_of_max_age(self):
        self.cache_good_enforce()
        hits = w.https_hits(GOOD)
        w.set_policy(GOOD, TESTING_POLICY)              # body changed, id not
        self.later("+2h")
        e = self.wait_outcome(GOOD, "txt-id-unchanged", time_offset=self.offset)
        self.assertEqual(e["reply"], GOOD_OK, e)
        self.assertEqual(e["cache"]["mode"], "enforce", e)
        self.assertEqual(w.https_hits(GOOD), hits, "the policy was fetched although the id is unchanged")


class CacheBackoffWorldTest(CacheCase):
    """A failing domain is discovered once, then answered from the cache
    until its back-off (failure_backoff_min = 5 min) ends."""

    LOOKUPS = 5

    def lookups(self, domain, answer):
        for _ in range(self.LOOKUPS):
            self.assertEqual(w.smq(domain), answer)

    def decisions(self, domain):
        lines = self.log.lines("]: %s: answer=" % domain)
        return (sum("cache=miss" in l for l in lines), sum("cache=hit" in l for l in lines))

    def test_5_1_failing_policy_fetch_is_retried_only_after_back_off(self):
        domains = ("http-500.test", "txt-but-404.test")     # temporary, permanent
        hits = {d: w.https_hits(d) for d in domains}
        self.log = w.start_serve(self.cfg)
        for d in domains:
            self.lookups(d, NOTFOUND)
            self.assertEqual(w.https_hits(d), hits[d] + 1, "%s: one discovery for %d lookups"
                             % (d, self.LOOKUPS))
            self.assertEqual(self.decisions(d), (1, self.LOOKUPS - 1))
        self.later("+6m", domain="http-500.test", answer=NOTFOUND)   # back-off over: discovers
        self.lookups("txt-but-404.test", NOTFOUND)
        self.lookups("http-500.test", NOTFOUND)
        for d in domains:
            # One more discovery: on a lookup, or by the sweep 5 s after start.
            self.assertEqual(w.https_hits(d), hits[d] + 2, "%s: one more discovery after the back-off" % d)
            self.assertLessEqual(self.decisions(d)[0], 1)
        # The second failure doubles the back-off (10 min): 6 min on, nothing.
        rc, got, err = w.query(self.cfg, "http-500.test", time_offset="+12m")
        self.assertEqual(got[0]["cache"]["state"], "temporary-failure", got)
        self.assertEqual(got[0]["cache"]["refresh"], "none", got)

    def test_5_1_failing_txt_lookup_is_retried_only_after_back_off(self):
        cfg = w.stsguard_config("cache-backoff-dns", fresh_cache=True, dns_servers=w.DNS_SERVFAIL,
                                on_temp_failure="temp")
        self.cfg = cfg
        query = "query servfail udp _mta-sts.%s TXT" % GOOD
        before = w.fault_hits(query)
        self.log = w.start_serve(cfg)
        answer = w.smq(GOOD)
        self.assertTrue(answer.startswith("TEMP MTA-STS policy of good-enforce.test unavailable: SERVFAIL"),
                        answer)
        first = w.fault_hits(query) - before
        self.assertGreaterEqual(first, 1)
        self.lookups(GOOD, answer)
        self.assertEqual(w.fault_hits(query) - before, first, "the TXT query was repeated")
        self.assertEqual(self.decisions(GOOD), (1, self.LOOKUPS))
        rc, got, err = w.query(cfg, GOOD)
        self.assertEqual(rc, 2, got)        # TEMP
        self.assertEqual(got[0]["cache"]["last_outcome"]["code"], "dns-servfail", got)


def has_cache_refresh():
    try:
        rc, out, err = w.stsguard("cache", "refresh", "--help", timeout=10)
    except unittest.SkipTest:
        return False
    return rc == 0 and "refresh" in out


class CacheRefreshCommandWorldTest(CacheCase):
    """The same downgrade and id-change rules, refreshed now with
    `stsguard cache refresh DOMAIN` while the service runs."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not has_cache_refresh():
            raise unittest.SkipTest("this stsguard has no `cache refresh` command")

    def refresh(self, exit_status, says, domain=GOOD):
        """`cache refresh DOMAIN` (exit 0 done, 1 a temporary failure) -> query entry."""
        rc, out, err = w.stsguard("-c", self.cfg, "cache", "refresh", domain, timeout=30)
        self.assertEqual(rc, exit_status, out + err)
        self.assertIn("%s: %s" % (domain, says), out)
        rc, got, err = w.query(self.cfg, domain)
        return got[0]

    def test_5_refresh_after_txt_removal_keeps_the_cached_enforce_policy(self):
        self.cache_good_enforce()
        w.del_txt(GOOD)
        e = self.refresh(0, "permanent no-txt")
        self.assertIn("cached policy mode enforce until", w.stsguard("-c", self.cfg, "cache", "refresh", GOOD)[1])
        self.assertEqual(e["cache"]["last_outcome"]["code"], "no-txt", e)
        self.assertEqual(e["reply"], GOOD_OK, e)
        self.assertEqual(w.smq(GOOD), GOOD_OK)

    def test_5_refresh_with_the_policy_host_down_keeps_the_cached_enforce_policy(self):
        self.cache_good_enforce()
        hits = w.https_hits(GOOD)
        w.set_txt(GOOD, "v=STSv1; id=down3")
        w.policy_host(GOOD, "down")
        e = self.refresh(1, "temporary http-status")
        self.assertEqual(w.https_hits(GOOD), hits + 1)
        self.assertEqual(e["cache"]["last_outcome"]["code"], "http-status", e)
        self.assertEqual(e["reply"], GOOD_OK, e)
        self.assertEqual(w.smq(GOOD), GOOD_OK)

    def test_5_refresh_with_an_invalid_policy_keeps_the_cached_enforce_policy(self):
        self.cache_good_enforce()
        w.set_txt(GOOD, "v=STSv1; id=invalid3")
        w.set_policy(GOOD, INVALID_POLICY)
        e = self.refresh(0, "permanent policy-invalid")
        self.assertEqual(e["cache"]["last_outcome"]["code"], "policy-invalid", e)
        self.assertEqual(e["reply"], GOOD_OK, e)
        self.assertEqual(w.smq(GOOD), GOOD_OK)

    def test_3_1_refresh_after_an_id_change_fetches_the_new_policy(self):
        self.cache_good_enforce()
        w.set_txt(GOOD, "v=STSv1; id=changed3")
        w.set_policy(GOOD, TESTING_POLICY)
        e = self.refresh(0, "ok policy-ok")
        self.assertEqual((e["cache"]["policy_id"], e["cache"]["mode"]), ("changed3", "testing"), e)
        self.assertEqual(e["reply"], NOTFOUND, e)
        self.assertEqual(w.smq(GOOD), NOTFOUND)


if __name__ == "__main__":
    unittest.main()
