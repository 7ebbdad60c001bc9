// milter_runner.h - libmilter glue for `stsguard milter`: registers the
// callbacks, opens the listening socket, runs smfi_main() and shuts down
// without leaving a callback inside a destroyed engine.
//
// Threads: libmilter's, inherent to the library and not ours to avoid:
// smfi_main() runs the listener on the calling thread, starts one thread
// per MTA connection (the callbacks of a connection run one at a time)
// and one signal thread that sigwait()s for SIGHUP, SIGTERM and SIGINT
// and stops smfi_main() (HUP and TERM: stop; INT: abort).  Those three
// signals must therefore be blocked in every other thread: block them
// before creating any thread (the DiscoveryPool included).  Our own
// threads are only the DiscoveryPool's.
//
// Global state: libmilter callbacks get no user pointer, only the SMFICTX,
// so the engine is reached through one process-wide gate (set by
// milter_run() for its duration).  Every callback enters the gate; after
// smfi_main() returns the gate is closed, waiters are woken
// (Prefetcher::stop) and milter_run() waits for callbacks still inside.
// Per-connection state is a MilterSession set with smfi_setpriv() in
// xxfi_connect and deleted in xxfi_close.
//
// Safety (Postfix must never be stalled or crashed by us): no exception
// leaves a callback (each catches everything, logs, and answers
// SMFIS_CONTINUE); every internal failure answers SMFIS_CONTINUE; the
// only waiting is Prefetcher's, bounded by milter_wait; I/O with the MTA
// is bounded by milter_timeout (smfi_settimeout).  With Postfix's
// milter_default_action = accept a milter that is down or slow costs no
// mail.
//
// Limits: one libmilter instance per process (libmilter's own state).
#pragma once

#include <chrono>
#include <string>

#include "plugin/milter_engine.h"
#include "plugin/prefetcher.h"

namespace stsguard {

// Registers with libmilter (flags by action: header needs SMFIF_ADDHDRS
// and SMFIF_CHGHDRS) and opens settings.listen, removing a stale unix
// socket; so a bad address or a port in use fails at start-up.  Call once,
// before milter_run().  False and *why on failure.
bool milter_open(const MilterSettings& settings, std::string* why);

// Serves until libmilter's signal thread stops it; then drains.  Returns
// 0 after a normal stop, 1 if smfi_main() failed.  If callbacks are still
// running after drain_timeout (a broken invariant: nothing of ours blocks
// once stopped), the process exits at once rather than free memory they use.
int milter_run(MilterEngine& engine, Prefetcher& prefetcher, std::chrono::milliseconds drain_timeout);

}  // namespace stsguard
