#!/usr/bin/python3
"""Edit the world's .test zone file in place (runtime DNS changes).

Usage: zoneedit.py ZONEFILE COMMAND ARGS
  set-txt OWNER TEXT [TEXT...]  OWNER's TXT and CNAME records become these TXT records
  del-txt OWNER                 remove OWNER's TXT and CNAME records
  add 'NAME TTL IN TYPE RDATA'  add one record (NAME absolute, under test.)
  del NAME [TYPE]               remove NAME's records (of TYPE only, if given)

The caller ("world") then reloads the zone and flushes unbound's cache.
The SOA serial is incremented on every edit.  Exit status 2 on bad input.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worldgen import txt_rdata  # noqa: E402

TTL = 300


def die(msg):
    sys.stderr.write("zoneedit: %s\n" % msg)
    sys.exit(2)


def fqdn(name):
    name = name.strip().lower()
    name = name if name.endswith(".") else name + "."
    if name != "test." and not name.endswith(".test."):
        die("%s is not inside the test. zone" % name)
    return name


def parse(line):
    """(owner, type) of a record line, or None for comments/blank lines."""
    if not line.strip() or line.lstrip().startswith(";"):
        return None
    f = line.split(None, 4)
    if len(f) < 5 or f[2].upper() != "IN" or not f[1].isdigit():
        die("unexpected zone line (want 'NAME TTL IN TYPE RDATA'): %r" % line)
    return f[0].lower(), f[3].upper()


def main(argv):
    if len(argv) < 3:
        die(__doc__)
    zonefile, cmd, args = argv[0], argv[1], argv[2:]
    with open(zonefile) as f:
        lines = f.read().splitlines()

    def drop(owner, types):
        keep = []
        for line in lines:
            p = parse(line)
            if p and p[0] == owner and (types is None or p[1] in types):
                continue
            keep.append(line)
        return keep

    if cmd == "set-txt" and len(args) >= 2:
        owner = fqdn(args[0])
        lines = drop(owner, {"TXT", "CNAME"})
        lines += ["%s %d IN TXT %s" % (owner, TTL, txt_rdata(t)) for t in args[1:]]
    elif cmd == "del-txt" and len(args) == 1:
        lines = drop(fqdn(args[0]), {"TXT", "CNAME"})
    elif cmd == "add" and len(args) == 1:
        p = parse(args[0])
        if p is None:
            die("empty record")
        fqdn(p[0])
        if not p[0].endswith("."):
            die("record name must be absolute (end with '.'): %r" % args[0])
        lines.append(args[0].strip())
    elif cmd == "del" and len(args) in (1, 2):
        lines = drop(fqdn(args[0]), {args[1].upper()} if len(args) == 2 else None)
    else:
        die(__doc__)

    # bump the SOA serial (third field of the RDATA)
    for i, line in enumerate(lines):
        p = parse(line)
        if p and p == ("test.", "SOA"):
            f = line.split()
            f[6] = str(int(f[6]) + 1)
            lines[i] = " ".join(f)
    tmp = zonefile + ".edit.tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(tmp, zonefile)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
