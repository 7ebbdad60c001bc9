#!/usr/bin/python3
"""What did the sending Postfix do with the newest (or a given) message to DOMAIN?

Usage: result.py STATE_DIR DOMAIN [QUEUE_ID] [--wait SECONDS] [--json]

Reads STATE_DIR/logs/postfix.log (the test instance's maillog_file) and
prints: STATUS  tls=LEVEL  relay=RELAY  dsn=DSN  reason=(...)  [details]
STATUS is delivered | deferred | bounced | pending | unknown.
LEVEL is the trust level of the TLS session to the relay that took (or last
refused) the message: Verified | Trusted | Untrusted | Anonymous | none.
Exit status: 0 delivered, 1 deferred, 2 bounced, 3 pending/unknown.
"""
import json
import os
import re
import sys
import time

LINE = re.compile(r"postfix-world/(?P<svc>[\w/-]+)\[(?P<pid>\d+)\]: (?P<msg>.*)$")
STATUS = re.compile(r"^(?P<qid>[0-9A-Za-z]+): to=<(?P<rcpt>[^>]*)>, (?:orig_to=<[^>]*>, )?"
                    r"relay=(?P<relay>[^,]*), .*?dsn=(?P<dsn>[^,]*), "
                    r"status=(?P<status>\w+) (?P<reason>.*)$")
TLSEST = re.compile(r"^(?P<level>\w+) TLS connection established to (?P<host>[^:\s]+(?:\[[^\]]*\])?)")
DETAIL = re.compile(r"certificate|TLS|policy|socketmap|warning|STARTTLS|loops back", re.I)
SEVERITIES = {"warning", "error", "fatal", "panic"}
MAP = {"sent": "delivered", "deferred": "deferred", "bounced": "bounced",
       "expired": "bounced"}


def latest_qid(state, domain):
    qid = None
    try:
        with open(os.path.join(state, "sent.log")) as f:
            for line in f:
                p = line.split()
                if len(p) >= 2 and p[0] == domain:
                    qid = p[1]
    except FileNotFoundError:
        pass
    return qid


def analyse(logfile, domain, qid):
    res = {"domain": domain, "qid": qid, "status": "pending", "tls": "none",
           "relay": "", "dsn": "", "reason": "", "details": [], "attempts": 0}
    buf = {}      # smtp pid -> lines since its last status line
    try:
        f = open(logfile, errors="replace")
    except FileNotFoundError:
        res["status"] = "unknown"
        return res
    with f:
        for line in f:
            m = LINE.search(line.rstrip("\n"))
            if not m:
                continue
            svc, pid, msg = m.group("svc"), m.group("pid"), m.group("msg")
            s = STATUS.match(msg)
            if s:
                lines = buf.pop(pid, [])
                if s.group("qid") != qid or not s.group("rcpt").lower().endswith("@" + domain):
                    continue
                res["attempts"] += 1
                res["status"] = MAP.get(s.group("status"), s.group("status"))
                res["relay"] = s.group("relay")
                res["dsn"] = s.group("dsn")
                res["reason"] = s.group("reason")
                relayhost = s.group("relay").split("[")[0]
                tls = "none"
                for l in lines:
                    t = TLSEST.match(l)
                    if t and (relayhost in ("none", "") or t.group("host").startswith(relayhost)):
                        tls = t.group("level")
                if tls == "none" and lines:
                    for l in lines:
                        t = TLSEST.match(l)
                        if t:
                            tls = t.group("level")
                res["tls"] = tls
                res["details"] = [l for l in lines if DETAIL.search(l)]
            elif svc == "smtp" or svc.endswith("/smtp"):
                # keep this message's lines, warnings and TLS lines; drop
                # lines about other queue ids of the same smtp process
                p = re.match(r"^(\w+): ", msg)
                if not p or p.group(1) == qid or p.group(1) in SEVERITIES:
                    buf.setdefault(pid, []).append(msg)
    return res


def main(argv):
    args, wait, as_json = [], 0.0, False
    it = iter(argv)
    for a in it:
        if a == "--wait":
            wait = float(next(it))
        elif a == "--json":
            as_json = True
        else:
            args.append(a)
    if len(args) < 2:
        sys.exit(__doc__)
    state, domain = args[0], args[1].lower().rstrip(".")
    qid = args[2] if len(args) > 2 else latest_qid(state, domain)
    if not qid:
        print("unknown: no message sent to %s yet" % domain)
        return 3
    logfile = os.path.join(state, "logs", "postfix.log")
    end = time.time() + wait
    while True:
        res = analyse(logfile, domain, qid)
        if res["status"] not in ("pending", "unknown") or time.time() >= end:
            break
        time.sleep(0.25)
    if as_json:
        print(json.dumps(res))
    else:
        print("%s\ttls=%s\trelay=%s\tdsn=%s\treason=%s" % (
            res["status"], res["tls"], res["relay"], res["dsn"], res["reason"]))
        for d in res["details"]:
            print("    " + d)
    return {"delivered": 0, "deferred": 1, "bounced": 2}.get(res["status"], 3)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
