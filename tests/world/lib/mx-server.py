#!/usr/bin/python3
"""Receiving MX hosts of the test world (aiosmtpd, one asyncio loop).

Usage: mx-server.py STATE_DIR/mx/mx.json

Every host listens on <ip>:25 with its own EHLO name and (unless its cert
kind is "nostarttls") offers STARTTLS with its certificate.  Each accepted
message is stored as MAILDIR/<recipient-domain>/<time>-<mxhost>.eml with a
prepended "X-World-Received:" header that records MX host and TLS details.
"""
import asyncio
import json
import os
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP


class Store:
    def __init__(self, maildir, host):
        self.maildir = maildir
        self.host = host

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        tls = "none"
        if session.ssl:
            obj = session.ssl.get("ssl_object")
            if obj is not None:
                c = obj.cipher()
                tls = "%s %s" % (obj.version(), c[0] if c else "?")
            else:
                tls = "yes"
        stamp = "%.6f" % time.time()
        hdr = ("X-World-Received: mx=%s; tls=%s; from=<%s>; to=%s; helo=%s; t=%s\r\n"
               % (self.host["name"], tls, envelope.mail_from,
                  ",".join("<%s>" % r for r in envelope.rcpt_tos),
                  session.host_name, stamp))
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        for dom in sorted({r.rpartition("@")[2].lower() for r in envelope.rcpt_tos}):
            d = os.path.join(self.maildir, dom)
            os.makedirs(d, exist_ok=True)
            fn = os.path.join(d, "%s-%s.eml" % (stamp, self.host["name"]))
            with open(fn + ".tmp", "wb") as f:
                f.write(hdr.encode() + data)
            os.rename(fn + ".tmp", fn)
        print("stored mail for %s via %s tls=%s" % (envelope.rcpt_tos, self.host["name"], tls),
              flush=True)
        return "250 2.0.0 Ok: stored by %s" % self.host["name"]


async def main(cfgfile):
    with open(cfgfile) as f:
        cfg = json.load(f)
    loop = asyncio.get_running_loop()
    servers = []
    for h in cfg["hosts"]:
        ctx = None
        if h.get("crt"):
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(h["crt"], h["key"])
        handler = Store(cfg["maildir"], h)

        def factory(handler=handler, ctx=ctx, name=h["name"]):
            return SMTP(handler, hostname=name, tls_context=ctx,
                        require_starttls=False, enable_SMTPUTF8=True,
                        ident="stsguard test world MX")
        srv = await loop.create_server(factory, host=h["ip"], port=25)
        servers.append(srv)
        print("MX %s listening on %s:25 cert=%s" % (h["name"], h["ip"], h["cert_kind"]),
              flush=True)
    print("READY", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except KeyboardInterrupt:
        pass
