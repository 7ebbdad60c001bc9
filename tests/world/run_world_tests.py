#!/usr/bin/python3
"""Runs the world tests: tests/world/*_test.py (unittest TestCases).

Usage: run_world_tests.py [PATTERN...]
  PATTERN: a substring of test ids ("serve_world_test", "ServeRobustness",
  "test_3_1_"), or a test file (tests/world/fetch_world_test.py); a test
  runs if any pattern matches.  No pattern: every test.

Without root, or without `ip netns`, every test is reported as skipped.
As root: brings up one private world (a fresh WORLD_STATE under /tmp and a
unique namespace stsguard-world-<pid>), runs every test against it, and
always takes it down again (finally + SIGTERM/SIGINT/SIGHUP), so no process
or namespace is left behind.  If the world does not come up, every test
fails with the reason.

Output: one line per test, "PASS name", "FAIL name" (followed by the
failure, indented) or "SKIP name (reason)", then the summary line
    world-tests: P passed, F failed, S skipped
Exit status 1 if any test failed.

Environment: STSGUARD (the binary the tests run; passed through),
WORLD_TEST_TIMEOUT (seconds per test, default 120), WORLD_KEEP=1 (keep the
world up and its state after the run, for debugging; the state dir is also
kept when a test failed).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class Interrupted(KeyboardInterrupt):
    """A signal: unittest lets KeyboardInterrupt through, so the run stops."""
    pass


class TestTimeout(AssertionError):
    pass


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def discover(patterns):
    """Every test whose id contains one of PATTERNS (all without any).  A
    pattern may be a file name: "tests/world/serve_world_test.py" selects
    the ids starting with "serve_world_test."."""
    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="*_test.py", top_level_dir=HERE)
    tests = list(flatten(suite))
    pats = []
    for p in patterns:
        base = os.path.basename(p)
        pats.append(base[:-3] + "." if base.endswith("_test.py") else p)
    if pats:
        tests = [t for t in tests if any(p in t.id() for p in pats)]
    return tests


def indent(text):
    return "".join("    " + l + "\n" for l in text.rstrip("\n").splitlines())


class LineResult(unittest.TestResult):
    """Prints one line per test; counts per test method."""

    def __init__(self, per_test_timeout):
        super().__init__()
        self.timeout = per_test_timeout
        self.reported = set()
        self.passed = self.failed = self.skipped = 0
        self.class_errors = []      # (description, text) of setUpClass & co
        self.class_skips = {}       # "module.Class" -> reason (SkipTest in setUpClass)
        self.sub_failures = {}

    def _alarm(self, signum, frame):
        raise TestTimeout("test did not finish within %ds" % self.timeout)

    def startTest(self, test):
        super().startTest(test)
        self.t0 = time.monotonic()
        signal.signal(signal.SIGALRM, self._alarm)
        signal.alarm(self.timeout)

    def stopTest(self, test):
        signal.alarm(0)
        subs = self.sub_failures.pop(test.id(), None)
        if subs and test.id() not in self.reported:
            self._fail(test, "".join("[%s]\n%s" % (s, e) for s, e in subs))
        super().stopTest(test)

    def _secs(self):
        return " (%.1fs)" % (time.monotonic() - self.t0)

    def _fail(self, test, text):
        self.reported.add(test.id())
        self.failed += 1
        print("FAIL %s%s" % (test.id(), self._secs()), flush=True)
        print(indent(text), end="", flush=True)

    def addSuccess(self, test):
        self.reported.add(test.id())
        self.passed += 1
        print("PASS %s%s" % (test.id(), self._secs()), flush=True)

    def addFailure(self, test, err):
        self._fail(test, self._exc_info_to_string(err, test))

    def addError(self, test, err):
        if isinstance(test, unittest.TestCase):
            self._fail(test, self._exc_info_to_string(err, test))
        else:   # setUpClass / setUpModule / tearDownClass ... (_ErrorHolder)
            text = "".join(traceback.format_exception(*err))
            self.class_errors.append((str(test), text))
            print("ERROR %s" % test, flush=True)
            print(indent(text), end="", flush=True)

    def addSkip(self, test, reason):
        if not isinstance(test, unittest.TestCase):
            # setUpClass raised SkipTest: its tests are reported in run_tests().
            desc = str(test)
            if "(" in desc:
                self.class_skips[desc[desc.index("(") + 1:].rstrip(")")] = reason
            return
        self.reported.add(test.id())
        self.skipped += 1
        print("SKIP %s (%s)" % (test.id(), reason), flush=True)

    def addExpectedFailure(self, test, err):
        self.addSuccess(test)

    def addUnexpectedSuccess(self, test):
        self._fail(test, "unexpected success")

    def addSubTest(self, test, subtest, err):
        if err is not None:
            self.sub_failures.setdefault(test.id(), []).append(
                (subtest._subDescription(), self._exc_info_to_string(err, test)))


def run_tests(tests, res):
    suite = unittest.TestSuite(tests)
    suite.run(res)
    # Tests of a class whose setUpClass skipped are skipped.
    for t in tests:
        reason = res.class_skips.get(t.id().rpartition(".")[0])
        if reason is not None and t.id() not in res.reported:
            res.reported.add(t.id())
            res.skipped += 1
            print("SKIP %s (%s)" % (t.id(), reason), flush=True)
    # Tests that never ran (their setUpClass failed) count as failed.
    unreported = [t for t in tests if t.id() not in res.reported]
    why = "\n".join("%s:\n%s" % e for e in res.class_errors) or "test did not run"
    for t in unreported:
        res.failed += 1
        print("FAIL %s (not run)" % t.id(), flush=True)
        print(indent(why.splitlines()[-1] if why else ""), end="", flush=True)
    if not unreported and res.class_errors:
        res.failed += len(res.class_errors)       # e.g. tearDownClass failed
    return res


def summary(p, f, s):
    print("world-tests: %d passed, %d failed, %d skipped" % (p, f, s), flush=True)


def netns_usable():
    if shutil.which("ip") is None:
        return False
    try:
        return subprocess.run(["ip", "netns", "list"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def world_cmd(cmd, env, timeout):
    t0 = time.monotonic()
    try:
        r = subprocess.run([os.path.join(HERE, "world"), cmd], env=env, timeout=timeout,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, start_new_session=True)
        rc, out = r.returncode, r.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, out = -1, (e.stdout or b"").decode(errors="replace") + "\n(timed out after %ds)" % timeout
    return rc, out, time.monotonic() - t0


def main(argv):
    tests = discover(argv)

    if os.geteuid() != 0 or not netns_usable():
        why = "not root" if os.geteuid() != 0 else "ip netns unavailable"
        for t in tests:
            print("SKIP %s (%s: the world needs a network namespace)" % (t.id(), why))
        summary(0, 0, len(tests))
        return 0

    keep = os.environ.get("WORLD_KEEP") == "1"
    state = tempfile.mkdtemp(prefix="stsguard-world-", dir="/tmp")
    os.chmod(state, 0o755)          # the postfix user must reach its queue
    ns = "stsguard-world-%d" % os.getpid()
    os.environ["WORLD_STATE"] = state
    os.environ["WORLD_NS"] = ns
    env = dict(os.environ)
    per_test = int(os.environ.get("WORLD_TEST_TIMEOUT", "120"))

    def on_signal(signum, frame):
        raise Interrupted("signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    passed = failed = skipped = 0
    interrupted = None
    res = LineResult(per_test)
    print("world: state %s, namespace %s" % (state, ns), flush=True)
    try:
        rc, out, secs = world_cmd("up", env, 180)
        print("world up: %.1fs (exit %d)" % (secs, rc), flush=True)
        if rc != 0:
            reason = "world up failed (exit %d):\n%s" % (rc, out[-3000:])
            for t in tests:
                print("FAIL %s" % t.id())
                print(indent(reason), end="")
            failed = len(tests)
        else:
            t0 = time.monotonic()
            run_tests(tests, res)
            passed, failed, skipped = res.passed, res.failed, res.skipped
            print("world tests: %.1fs" % (time.monotonic() - t0), flush=True)
    except Interrupted as e:
        interrupted = e
        print("world: interrupted (%s), taking the world down" % e, flush=True)
        passed, failed, skipped = res.passed, max(failed, res.failed) + 1, res.skipped
    finally:
        # Ignore further signals while cleaning up: down must finish.
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        if keep:
            print("world: WORLD_KEEP=1: left up; take it down with: "
                  "WORLD_STATE=%s WORLD_NS=%s %s/world down" % (state, ns, HERE), flush=True)
        else:
            rc, out, secs = world_cmd("down", env, 120)
            print("world down: %.1fs (exit %d)" % (secs, rc), flush=True)
            if rc != 0 or os.path.exists("/run/netns/" + ns):
                print(indent("world down failed:\n" + out), end="", flush=True)
                failed += 1
            if failed and not interrupted:
                print("world: state kept for inspection: %s" % state, flush=True)
            else:
                shutil.rmtree(state, ignore_errors=True)
    summary(passed, failed, skipped)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
