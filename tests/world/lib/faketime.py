"""faketime.py - run a command under libfaketime, without the faketime wrapper.

The wrapper (/usr/bin/faketime) keeps a POSIX semaphore and shared memory
named after its PID.  They leak when a wrapped process is killed (tests kill
services), and a later wrapper that gets the same PID then fails with
"sem_open: File exists".  Preloading the library directly needs neither.
"""

import os

LIB_DIRS = ("/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/faketime")


def faketime_env(spec, threads=False):
    """KEY=VALUE strings for env(1) that run a command with its wall clock
    set by SPEC, as FAKETIME takes it: "+2h" moves it, "@2020-01-01 00:00:00"
    starts it there.  threads: the thread-safe library (for services).
    Raises FileNotFoundError if libfaketime is not installed."""
    name = "libfaketimeMT.so.1" if threads else "libfaketime.so.1"
    for d in LIB_DIRS:
        path = os.path.join(d, name)
        if os.path.exists(path):
            return ["LD_PRELOAD=" + path, "FAKETIME=" + spec]
    raise FileNotFoundError("%s not found in %s; install the faketime package" % (name, " or ".join(LIB_DIRS)))
