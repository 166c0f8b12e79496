#!/usr/bin/env python3
"""suspend.py -- talk to lsusd from Python 3, standard library only.

The original shipped suspend.py and dnotify.py to show that any language
can be a client: everything is files and flock in the run directory
(doc/protocol.md section 1.1). This module offers the same as a library and a
command line:

    suspend.py watch [--count N] [--delay MS]   print "suspend imminent" / "resumed"
    suspend.py block SECS                       keep the machine awake SECS seconds
    suspend.py request                          ask for one suspend (exit 0 if it happened)
    suspend.py immediate SECS                   immediate mode for SECS seconds

    import suspend
    w = suspend.Watcher()
    while True:
        if w.wait() == suspend.SUSPEND:
            ...; w.ready()

RUN is --run-dir, else $LSUSD_RUN_DIR, else /run/suspend.

Waiting uses dnotify, as the original's dnotify.py did (inotify is not in
the standard library): fcntl(F_NOTIFY) on the run directory raises SIGIO
on every change in it, Python's signal wake-up descriptor turns the
signal into a readable pipe, and select() sleeps on that pipe. Nothing
polls. The price: the wake-up descriptor is process-wide and must be set
from the main thread, so create the first DirNotify there (a program that
already uses signal.set_wakeup_fd should not use this module's waits).

Exit status of the command line: 0 on success, 1 when a requested
suspend did not happen, 2 on error (lsusd not running, ...).
"""

import argparse
import contextlib
import errno
import fcntl
import os
import select
import signal
import sys
import time

DEFAULT_RUN_DIR = "/run/suspend"

DISABLED = "disabled"
WATCHING = "watching"
WATCHING_NEXT = "watching-next"
REQUEST = "request"
IMMEDIATE = "immediate"
OUTCOME = "outcome"
RECORDS = "records"

# Events of a Watcher.
SUSPEND = "suspend"
RESUMED = "resumed"

_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class NotRunning(Exception):
    """lsusd is not running on the run directory (its files are missing)."""


def run_dir(run=None):
    """Returns the run directory: RUN if given, else $LSUSD_RUN_DIR, else
    /run/suspend."""
    return run or os.environ.get("LSUSD_RUN_DIR") or DEFAULT_RUN_DIR


def _open(run, name, flags=0, mode=0o644):
    try:
        return os.open(os.path.join(run, name), _OPEN | flags, mode)
    except FileNotFoundError:
        raise NotRunning("lsusd is not running on %s (no %s)" % (run, name)) from None


def _names(run, name, fd):
    """True if and only if RUN/name is the file open as fd."""
    try:
        st = os.stat(os.path.join(run, name), follow_symlinks=False)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return own.st_nlink > 0 and (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _flock(fd, op):
    # PEP 475 retries EINTR; a signal handler that raises still ends it.
    fcntl.flock(fd, op)


class DirNotify:
    """Change notification for one directory through dnotify.

    Call clear(), then look at the files, then wait(): a change after
    clear() makes wait() return at once, so nothing is missed.
    """

    _pipe = None

    # Every change in the directory (what request() waits with).
    ALL = (
        fcntl.DN_MODIFY
        | fcntl.DN_CREATE
        | fcntl.DN_DELETE
        | fcntl.DN_RENAME
        | fcntl.DN_ATTRIB
    )

    def __init__(self, path, events=ALL):
        if DirNotify._pipe is None:
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            # Without a handler SIGIO would kill us; the C-level handler
            # writes the signal number to the wake-up pipe.
            signal.signal(signal.SIGIO, lambda signum, frame: None)
            signal.set_wakeup_fd(w, warn_on_full_buffer=False)
            DirNotify._pipe = (r, w)
        self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.fcntl(self._fd, fcntl.F_NOTIFY, events | fcntl.DN_MULTISHOT)

    def clear(self):
        """Forgets the changes seen so far."""
        r = DirNotify._pipe[0]
        while True:
            try:
                if not os.read(r, 4096):
                    return
            except BlockingIOError:
                return

    def wait(self, timeout=None):
        """Sleeps until a change since the last clear(), or timeout seconds
        (None: no limit). Returns True if and only if something changed."""
        ready, _, _ = select.select([DirNotify._pipe[0]], [], [], timeout)
        return bool(ready)

    def close(self):
        """Stops the notification for this directory."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Watcher:
    """A watcher of lsusd (doc/protocol.md section 1.4, watching/watching-next).

    wait() returns SUSPEND when a suspend is imminent -- do the pre-suspend
    work (take a Blocker's block first to say "not now"), then call ready()
    -- and RESUMED after resume or an aborted attempt. While registered,
    every suspend waits for this watcher's ready(): answer promptly.
    """

    def __init__(self, run=None):
        self.run = run_dir(run)
        if not os.path.isdir(self.run):
            raise NotRunning("lsusd is not running on %s (no such directory)" % self.run)
        # DN_MODIFY alone, as the original's watchers: the byte of
        # "imminent" and the two bytes of the end (after the rename), two
        # wake-ups a cycle (doc/protocol.md section 1.4).
        self._notify = DirNotify(self.run, fcntl.DN_MODIFY)
        self._current = self._register()
        self._next = None
        self._state = "awake"

    def _register(self):
        # Open watching, lock it shared, check it is still the empty file
        # at that path; otherwise a suspend is in progress: wait and retry.
        while True:
            self._notify.clear()
            fd = _open(self.run, WATCHING)
            _flock(fd, fcntl.LOCK_SH)
            if _names(self.run, WATCHING, fd) and os.fstat(fd).st_size == 0:
                return fd
            os.close(fd)
            self._notify.wait()

    def poll_event(self):
        """Returns the next event, or None if there is none now."""
        if self._state == "awake":
            if os.fstat(self._current).st_size > 0:
                # Register for the next cycle before anything else: lsusd
                # cannot rename while we hold the current file.
                fd = _open(self.run, WATCHING_NEXT)
                _flock(fd, fcntl.LOCK_SH)
                self._next = fd
                self._state = "imminent"
                return SUSPEND
            if not _names(self.run, WATCHING, self._current):
                # lsusd restarted on a fresh directory: register anew.
                os.close(self._current)
                self._current = self._register()
            return None
        if self._state == "ready":
            # Resumed when watching is now our watching-next (the rename),
            # or when lsusd wrote its two bytes to the old file.
            if (
                _names(self.run, WATCHING, self._next)
                or os.fstat(self._current).st_size >= 3
            ):
                os.close(self._current)
                self._current, self._next = self._next, None
                self._state = "awake"
                return RESUMED
        return None

    def ready(self):
        """Says "ready for suspend" after SUSPEND: releases the lock on the
        old watching. Does nothing at other times."""
        if self._state == "imminent":
            _flock(self._current, fcntl.LOCK_UN)
            self._state = "ready"

    def wait(self, timeout=None):
        """Returns the next event; None if timeout seconds pass first."""
        if self._state == "imminent":
            # lsusd waits for us: waiting here would wait forever.
            raise RuntimeError("call ready() after SUSPEND before waiting again")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._notify.clear()
            event = self.poll_event()
            if event is not None:
                return event
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._notify.wait(left)

    def close(self):
        """Unregisters (the same happens when the process exits)."""
        for fd in (self._current, self._next):
            if fd is not None:
                os.close(fd)
        self._current = self._next = None
        self._notify.close()


class Blocker:
    """A handle on RUN/disabled: block() keeps the machine awake until
    allow(); abort() aborts the suspend attempt in progress, if any."""

    def __init__(self, run=None):
        self.run = run_dir(run)
        self._fd = _open(self.run, DISABLED)

    def block(self):
        """Blocks suspend. If a suspend is being entered right now, waits
        until the machine has resumed."""
        _flock(self._fd, fcntl.LOCK_SH)

    def allow(self):
        """Allows suspend again."""
        _flock(self._fd, fcntl.LOCK_UN)

    def abort(self):
        """Aborts the suspend attempt in progress by reading disabled."""
        os.pread(self._fd, 1, 0)

    def close(self):
        """Closes the handle (which also allows suspend)."""
        os.close(self._fd)


_default_blocker = None


def _blocker():
    global _default_blocker
    if _default_blocker is None:
        _default_blocker = Blocker()
    return _default_blocker


def block():
    """Blocks suspend (on the default run directory) until allow()."""
    _blocker().block()


def allow():
    """Allows suspend again after block()."""
    _blocker().allow()


def abort():
    """Aborts the suspend attempt in progress, if any."""
    _blocker().abort()


def _lsusd_alive(run):
    """False if and only if lsusd's PID file exists and nobody locks it."""
    try:
        fd = _open(run, "lsusd.pid")
    except NotRunning:
        return True  # an lsusd without a PID file, like the original
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _outcome(run):
    """Returns lsusd's last outcome record as a dict, or None: RUN/records/outcome,
    or the RUN/outcome of an older lsusd (never through the link RUN/outcome
    that a newer lsusd keeps for the readers of the old path)."""
    for name in (os.path.join(RECORDS, OUTCOME), OUTCOME):
        try:
            fd = _open(run, name)
            break
        except NotRunning:
            continue
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                continue
            raise
    else:
        return None
    try:
        text = os.read(fd, 4096).decode("ascii", "replace")
    finally:
        os.close(fd)
    return dict(w.split("=", 1) for w in text.split() if "=" in w)


def request(run=None, timeout=None):
    """Asks lsusd for one suspend and waits until the attempt is over.

    Returns (suspended, what): suspended is True if and only if the machine
    suspended and resumed (or, with lsusd --dry-run, would have); what is
    lsusd's outcome word ("suspended", "dry-run", "blocked", "aborted",
    ...), or "cycle" / "dropped" if lsusd keeps no outcome record. Raises
    TimeoutError (after withdrawing the request) when timeout seconds pass.
    """
    run = run_dir(run)
    notify = DirNotify(run) if os.path.isdir(run) else None
    if notify is None:
        raise NotRunning("lsusd is not running on %s (no such directory)" % run)
    watching = _open(run, WATCHING)
    if not _lsusd_alive(run):
        raise NotRunning("lsusd is not running on %s (stale files)" % run)
    before = (_outcome(run) or {}).get("seq")
    fd = _open(run, REQUEST, os.O_CREAT)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            notify.clear()
            if not _names(run, REQUEST, fd):
                break
            # lsusd's death would leave the request in place: look now and then.
            wait = 1.0
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    if _names(run, REQUEST, fd):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(os.path.join(run, REQUEST))
                    raise TimeoutError("no answer from lsusd after %s s" % timeout)
            if not notify.wait(wait) and not _lsusd_alive(run):
                raise NotRunning("lsusd on %s stopped" % run)
        cycle_ran = not _names(run, WATCHING, watching)
    finally:
        os.close(fd)
        os.close(watching)
        notify.close()
    record = _outcome(run) or {}
    if record.get("seq") not in (None, before):
        what = record.get("outcome", "?")
        if what == "blocked" and record.get("pids"):
            what = "blocked by PID " + record["pids"].replace(",", ", ")
        return what in ("suspended", "dry-run"), what
    return cycle_ran, "cycle" if cycle_ran else "dropped"


@contextlib.contextmanager
def immediate(run=None):
    """Immediate mode while the with-block runs: lsusd suspends whenever
    nothing blocks it.

    Creates RUN/immediate, then takes LOCK_EX on it, then checks that the
    path still names the file it locked (lsusd may have removed it as
    stale in between); retries if not.
    """
    run = run_dir(run)
    path = os.path.join(run, IMMEDIATE)
    if not os.path.isdir(run):
        raise NotRunning("lsusd is not running on %s (no such directory)" % run)
    while True:
        fd = _open(run, IMMEDIATE, os.O_CREAT)
        with contextlib.suppress(PermissionError):
            os.utime(fd)  # lsusd's grace period for a young file starts now
        _flock(fd, fcntl.LOCK_EX)
        if _names(run, IMMEDIATE, fd):
            break
        os.close(fd)
    try:
        yield
    finally:
        # Remove it while still holding the lock, then close.
        if _names(run, IMMEDIATE, fd):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        os.close(fd)


def _say(line):
    print(line, flush=True)


def _cmd_watch(args):
    w = Watcher(args.run_dir)
    _say("watching %s" % w.run)
    cycles = 0
    while args.count == 0 or cycles < args.count:
        event = w.wait()
        if event == SUSPEND:
            _say("suspend imminent")
            if args.delay:
                time.sleep(args.delay / 1000.0)
            w.ready()
            _say("ready")
        else:
            _say("resumed")
            cycles += 1
    w.close()
    return 0


def _cmd_block(args):
    b = Blocker(args.run_dir)
    b.block()
    _say("suspend blocked for %g s" % args.secs)
    time.sleep(args.secs)
    b.allow()
    _say("suspend allowed")
    return 0


_WORDS = {
    "suspended": "suspended and resumed",
    "dry-run": "would have suspended (lsusd --dry-run)",
    "aborted": "aborted: a process read disabled",
    "withdrawn": "request withdrawn before suspend",
    "wakeup-event": "wakeup event: the kernel rejected the wakeup count",
    "write-failed": "writing the sleep state failed",
    "cycle": "a suspend cycle ran (lsusd keeps no outcome record)",
    "dropped": "not suspended: the request was dropped",
}


def _cmd_request(args):
    suspended, what = request(args.run_dir, args.timeout)
    _say("request: %s" % _WORDS.get(what, what))
    return 0 if suspended else 1


def _cmd_immediate(args):
    with immediate(args.run_dir):
        _say("immediate mode for %g s" % args.secs)
        time.sleep(args.secs)
    _say("immediate mode off")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="suspend.py", description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", metavar="DIR", help="run directory of lsusd")
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("watch", help="print a line for each suspend and resume")
    w.add_argument("--count", type=int, default=0, metavar="N", help="exit after N cycles")
    w.add_argument("--delay", type=int, default=0, metavar="MS", help="wait MS ms before ready")
    w.set_defaults(func=_cmd_watch)
    b = sub.add_parser("block", help="block suspend for SECS seconds")
    b.add_argument("secs", type=float, metavar="SECS")
    b.set_defaults(func=_cmd_block)
    r = sub.add_parser("request", help="ask for one suspend")
    r.add_argument("--timeout", type=float, metavar="SECS", help="give up after SECS")
    r.set_defaults(func=_cmd_request)
    i = sub.add_parser("immediate", help="immediate mode for SECS seconds")
    i.add_argument("secs", type=float, metavar="SECS")
    i.set_defaults(func=_cmd_immediate)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except (NotRunning, TimeoutError) as e:
        print("suspend.py: %s" % e, file=sys.stderr)
        return 2
    except OSError as e:
        print("suspend.py: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
