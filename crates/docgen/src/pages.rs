//! The hand-written sections of the man pages (markup of `roff::render`).

/// Sections shared by the three daemons.
macro_rules! daemon_common {
    () => {
        "# SIGNALS
SIGTERM, SIGINT and SIGHUP end the daemon cleanly: it leaves the files and
sockets in the run directory in a state that a restarted daemon accepts.
No client loses a block meanwhile: a shared lock on `RUN/disabled` belongs
to the client and lives on while the daemons restart.

# ENVIRONMENT
* LSUSD_RUN_DIR
  The run directory, when `--run-dir` is not given.
* RUST_LOG
  The log filter (overrides `-v` and `-q`), e.g. `debug`.
* JOURNAL_STREAM
  Set by systemd: when it names standard error, each log line starts with a
  syslog priority (`<3>` to `<7>`) and has no timestamp, so
  `journalctl -p warning` works.
* NOTIFY_SOCKET
  Set by systemd for `Type=notify`: the daemon sends `READY=1` when it is
  ready, and `STOPPING=1` when it stops.

# EXIT STATUS
0 after a shutdown signal; 1 when the daemon cannot start (another instance
runs on the run directory, a file cannot be created) or a fatal error ends
it; 2 for a bad command line (also a number out of range, and for lsusd a
--sysfs without power/state or power/wakeup_count, unless --dry-run, and a
--run-dir whose parent directory does not exist).
"
    };
}

/// lsusd(8).
pub const LSUSD_8: &str = concat!(
    "# FILES
* RUN/disabled
  A shared `flock` on it blocks suspend; a read of it aborts an attempt in
  progress. lsusd creates it and reuses it across restarts (same inode), so
  a lock taken before a restart stays in force.
* RUN/immediate
  Exists and locked by its owner: suspend whenever nothing blocks.
* RUN/request
  Exists: try one suspend; removed when the attempt ends.
* RUN/watching, RUN/watching-next
  The watchers' files (lsusd(7)).
* RUN/records/outcome
  The outcome of the last attempt, one line; `RUN/outcome` is a link to
  it, made at start-up. In a subdirectory so that writing it wakes no
  watcher of RUN.
* RUN/log/history
  The last 100 outcomes, oldest first (`lsusctl history`), in a
  subdirectory so that writing it wakes no watcher.
* RUN/.staging
  Where the outcome and status files are written before they are renamed
  into `RUN/records`, so that their readers see one event per update.
* RUN/lsusd.pid
  The PID, locked exclusively while lsusd runs: one lsusd per run directory.
* SYS/power/wakeup_count, SYS/power/state
  The kernel's race-free suspend interface.

",
    daemon_common!(),
    "
# SEE ALSO
lsusd(7), lsused(8), wakealarmd(8), lsusctl(1), request-suspend(1),
systemd-analyze(1)
"
);

/// lsused(8).
pub const LSUSED_8: &str = concat!(
    "# FILES
* RUN/registration
  The socket clients connect to (mode from `--socket-mode`).
* RUN/records/lsused.status
  One line, `clients=N descriptors=M`, rewritten when the counts change and
  removed at exit (`lsusctl status`); `RUN/lsused.status` is a link to it
  while lsused runs.
* RUN/lsused.pid
  The PID, locked exclusively while lsused runs.

# RESTARTS
When lsused stops, every client's connection ends. EOF is the client's cue
to connect again: libsus does so by itself and registers the same
descriptors again.

",
    daemon_common!(),
    "
# SEE ALSO
lsusd(7), lsusd(8), wakealarmd(8), lsusctl(1)
"
);

/// wakealarmd(8).
pub const WAKEALARMD_8: &str = concat!(
    "# FILES
* RUN/wakealarm
  The socket clients connect to (mode from `--socket-mode`).
* RUN/records/wakealarmd.status
  One line, `connections=N pending=P blocking=B [next=TIME]`, rewritten
  when it changes and removed at exit (`lsusctl status`);
  `RUN/wakealarmd.status` is a link to it while wakealarmd runs.
* RUN/wakealarmd.pid
  The PID, locked exclusively while wakealarmd runs.
* SYSFS/class/rtc/RTC/wakealarm, SYSFS/class/rtc/RTC/since_epoch
  The RTC programmed before a suspend.

",
    daemon_common!(),
    "
# SEE ALSO
lsusd(7), lsusd(8), lsused(8), lsusctl(1)
"
);

/// lsus-logind(8).
pub const LSUS_LOGIND_8: &str = concat!(
    "# LOGIND INHIBITORS
A desktop program keeps a systemd machine awake with a systemd-logind
inhibitor (`systemd-inhibit --what=sleep --mode=block`, or the
`Inhibit` call on D-Bus). lsus-logind follows logind's inhibitors by
signal (`PropertiesChanged` of `BlockInhibited` and `DelayInhibited`, then
`ListInhibitors`; never by polling) and holds a shared `flock` on
`RUN/disabled` while at least one inhibitor in mode `block` includes
`sleep` in its `what`. lsusd then does not suspend, and `request-suspend`,
`lsusctl status` and lsusd's log name the inhibitor instead of
lsus-logind: `blocked by logind inhibitor \"WHY\" (WHO, PID N, user U)`.

When logind runs a suspend of its own it sends `PrepareForSleep(true)`:
it has already checked its block inhibitors, or chosen to override them
(the lid switch, `systemctl suspend -i`). lsus-logind then lets go of
`disabled`, and only after that of the delay inhibitor it keeps on sleep,
so the suspend that logind started and that the drop-in for
systemd-suspend.service hands to lsusd (`request-suspend`) is not refused
for an inhibitor logind overrode. `PrepareForSleep(false)` ends it.

When logind or the bus goes away, the last known inhibitors stay in force
(logind restores its inhibitors when it restarts) and lsus-logind
connects again after 1 s, doubling up to 30 s.

# FILES
* RUN/disabled
  Locked shared while a logind block inhibitor on sleep exists.
* RUN/records/lsus-logind.status
  Every inhibitor logind lists, one line each after a summary line
  (lsusd(7)); written before the lock is taken, removed at exit;
  `RUN/lsus-logind.status` is a link to it.
* RUN/lsus-logind.pid
  The PID, locked exclusively while lsus-logind runs.

",
    daemon_common!(),
    "
# SEE ALSO
lsusd(7), lsusd(8), lsusctl(1), request-suspend(1), systemd-inhibit(1),
systemd-logind(8)
"
);

/// lsus-idle(8).
pub const LSUS_IDLE_8: &str = concat!(
    "# IDLE
The machine is idle after `--idle` seconds without a key, a motion or a
switch on any input device watched (`INPUT_DIR/event*`, through evdev,
opened read-only and never grabbed, so the display server and the console
see all input as before; accelerometers are left out). The count runs on
the clock that stops while the machine sleeps. Input only notes its time:
the one deadline moves when it passes, so input faster than the idle time
sets no timer. New devices are followed by inotify on INPUT_DIR (also when
udev gives a node its permissions later); a device that goes or fails a
read is dropped, with one log line.

When idle, lsus-idle holds immediate mode (`RUN/immediate`, as libsus
does): lsusd suspends whenever nothing blocks, again after each resume,
until the next input lets go. Input while an attempt is imminent
(`RUN/watching` not empty) and lsus-idle holds immediate mode aborts that
attempt by a read of `RUN/disabled`; immediate mode is let go when the
attempt is over, so lsusd records it as `aborted`.

# FILES
* INPUT_DIR/event*
  The input devices (`/dev/input` unless `--input-dir`).
* RUN/immediate
  Created and locked (shared) while idle.
* RUN/records/lsus-idle.status
  One line, `timeout=S devices=N idle=yes|no holding=yes|no
  idle_since=SECONDS` (the last input on CLOCK_MONOTONIC), rewritten when
  it changes (at most once a second while input arrives) and removed at
  exit (`lsusctl status`: idle for how long, of how long).
* RUN/lsus-idle.pid
  The PID, locked exclusively while lsus-idle runs.

",
    daemon_common!(),
    "
# SEE ALSO
lsusd(7), lsusd(8), lsusctl(1)
"
);

/// request-suspend(1).
pub const REQUEST_SUSPEND_1: &str = "# EXIT STATUS
* 0
  The machine suspended and resumed (or, with lsusd in `--dry-run`, would
  have). With an lsusd that keeps no outcome record (the original, which
  keeps no `RUN/lsusd.pid` either): a suspend cycle ran to the end, which an
  aborted attempt also does; the message says so.
* 1
  It did not: blocked, aborted, a wakeup event, the state write refused, or
  the request refused. The reason is printed. A blocked request is answered
  as soon as lsusd finds the block, with one line `blocked by PID N
  (command)` for every holder, also when request-suspend itself runs under
  the block (`lsusctl block -- request-suspend`).
* 2
  An error: lsusd is not running (no run directory, no `RUN/disabled`, or
  nobody holds the lock on `RUN/lsusd.pid`), lsusd stopped while the request
  waited (noticed within a second), permission denied, time-out (the
  request is withdrawn). With `--via-logind` also: the system bus or logind
  cannot be reached, logind refused to suspend (polkit, another operation
  in progress), its suspend did not end within `--timeout`, or logind
  suspended but lsusd recorded no new attempt (the drop-in of `install.sh
  --with-logind` is not installed, so systemd-sleep wrote the state itself).
* 130, 143, 129
  Interrupted by SIGINT (Ctrl-C), SIGTERM or SIGHUP: the request was
  withdrawn (as after a time-out), and that is said on standard error.

# EXAMPLES
    request-suspend && echo slept
Suspend as soon as the backup has finished:
    lsusctl block --why backup -- rsync -a /home /mnt/backup &
    request-suspend --wait

# SEE ALSO
lsusd(7), lsusd(8), lsusctl(1)
";

/// lsusctl(1).
pub const LSUSCTL_1: &str = "# EXIT STATUS
* 0
  Success.
* 1
  A failure without a code of its own (the message says what).
* 2
  A bad command line.
* 3
  lsusd is not running on the run directory (it does not exist, or nobody
  holds the lock on `RUN/lsusd.pid`).
* 4
  Permission denied: only root and members of the run directory's group
  (`suspend` with the systemd units) may use it.
* CMD's status
  For `block`: the command's exit status, 128+N when signal N ended it,
  127 when it was not found, 126 when it could not be run.

# FILES
* RUN/disabled
  `status` lists the holders of locks on it from /proc/locks, as
  `systemd-inhibit --list` lists inhibitors: PID, user, command line. A
  lock whose taker has exited (flock(1) on a shell's descriptor) is shown
  held by the processes that share the descriptor, from /proc/PID/fdinfo.
* RUN/log/history, RUN/records/outcome
  Written by lsusd; read by `history` and `status`.
* RUN/records/lsused.status, RUN/records/wakealarmd.status
  Written by lsused and wakealarmd; read by `status`.

# EXAMPLES
Why won't this machine sleep?
    lsusctl status
Keep it awake during a backup:
    lsusctl block --why backup -- rsync -a /home /mnt/backup
Log every suspend and resume as JSON:
    lsusctl watch --json >>/var/log/suspend.jsonl

# SEE ALSO
lsusctl-status(1), lsusctl-block(1), lsusctl-watch(1), lsusctl-history(1),
lsusd(7), lsusd(8), request-suspend(1), systemd-inhibit(1)
";

/// The hand-written part of the page of `lsusctl SUB`.
pub fn subcommand(bin: &str, sub: &str) -> String {
    let body = match sub {
        "status" => {
            "# OUTPUT
Whether suspend is blocked and by whom (PID, user, command line, and the
text of `--why` for an `lsusctl block`), whether a suspend is being
entered, immediate mode and its holder, the watchers, the counts lsused and
wakealarmd publish, and the last outcomes. `--json` prints the same as one
object.
"
        }
        "block" => {
            "# EXAMPLES
    lsusctl block --why \"burning a DVD\" -- growisofs -Z /dev/sr0 -R -J ~/iso
"
        }
        "watch" => {
            "# OUTPUT
One line per event: the local time and `suspend`, or the local time,
`resume`, the time since the suspend line and the outcome lsusd recorded.
With `--json`, one object per line:
    {\"event\":\"suspend\",\"time\":1764067262.123}
    {\"event\":\"resume\",\"time\":1764067265.456,\"duration\":3.333,...}
"
        }
        "history" => {
            "# OUTPUT
One line per attempt: the local time and what happened (suspended for N s,
blocked by PIDs, aborted, wakeup event, write failed). The history keeps
the last 100 attempts and survives a restart of lsusd.
"
        }
        _ => "",
    };
    format!("{body}\n# SEE ALSO\n{bin}(1), lsusd(7)\n")
}

/// lsusd(7): the protocol.
pub const LSUSD_7: &str = "# NAME
lsusd - the protocol between lsusd, lsused, wakealarmd and their clients

# DESCRIPTION
lsusd alone decides when the machine sleeps. Every other program talks to
it through files in the run directory RUN (`/run/suspend`, or
`$LSUSD_RUN_DIR`, or `--run-dir`) and two sockets. The protocol is that of
the original lsusd (2011), so its clients, shell scripts and C programs
work unchanged.

This page is a summary. The full contract, byte by byte, with the order of
the steps of an attempt, the outcome record and history formats and every
deliberate difference from the original and its reason, is the file
`doc/protocol.md` of the lsusd source tree; the sections cited below are its
sections.

# BLOCKING SUSPEND
Any process that holds a shared `flock` on `RUN/disabled` prevents suspend.
The kernel drops the lock when the process exits, so a crashed client never
leaves suspend blocked. From a shell:
    exec 9< /run/suspend/disabled; flock --shared 9
    ... work ...
    flock --unlock 9; exec 9<&-
or simply `lsusctl block -- CMD`. A process that reads `disabled` aborts
the suspend attempt in progress (section 1.1).

# ASKING FOR SUSPEND
Creating `RUN/request` asks for one suspend; lsusd removes it when the
attempt ends (`request-suspend` does this and reports the outcome, section 7).
While `RUN/immediate` exists and its creator holds a lock on it, lsusd
suspends whenever nothing blocks (sections 1.2 and 1.3).

# WATCHING
A watcher opens `RUN/watching`, takes a shared lock and checks that it is
still the empty file at that path. Before a suspend lsusd writes one byte to
it and waits for an exclusive lock: each watcher moves its lock to
`RUN/watching-next`, does its work and releases `watching`. After the
resume lsusd renames `watching-next` over `watching` and writes two more
bytes to the old file (section 1.4). Nothing else the daemons write during
a cycle changes RUN: a watcher of RUN is woken for the byte and for the
end.

# THE SUSPEND LOOP
lsusd waits for a request, checks that nothing blocks, reads
`/sys/power/wakeup_count`, tells the watchers, then suspends only if
nothing blocks, the request stands, nobody read `disabled`, and the kernel
accepts the wakeup count back (no wakeup event happened meanwhile) (section 2).

# SOCKETS
* RUN/registration (lsused, section 3)
  Bytes: the server sends `A` on accept and after each registration; the
  client sends `W` with descriptors (SCM_RIGHTS); before a suspend the
  server sends `S` to each client with a readable descriptor and waits for
  its `R`; after the resume it sends `A`. EOF means: connect again.
* RUN/wakealarm (wakealarmd, section 4)
  Lines: the server sends `0`; the client writes a time (seconds since the
  epoch), echoed back; at that time the server sends `Now`. A connection
  blocks suspend until it has written a time, and again after `Now`.

# FILES ADDED BY THIS PORT
* RUN/records/outcome
  One line: `seq=N time=T outcome=WORD` and details (section 6).
  `RUN/outcome` is a symbolic link to it, for the readers of the old path
  (section 1.5).
* RUN/log/history
  The last 100 such lines, oldest first (section 6).
* RUN/records/lsused.status, RUN/records/wakealarmd.status
  One line of `key=value` counts, rewritten when they change, removed when
  the daemon stops; `RUN/NAME.status` links to them. A killed daemon leaves
  its file: readers check the daemon's lock on `RUN/NAME.pid` first.
* RUN/NAME.pid
  Each daemon's PID, locked exclusively for its whole life.

# PERMISSIONS
Installed with the systemd units, RUN is `root:suspend`, mode 2770: only
root and members of the group `suspend` may enter it, and every file and
socket created in it belongs to that group. Members may block, watch,
request suspend and use both sockets; nobody else may. lsusd and
wakealarmd run as root without any capability (they write files in sysfs
that root owns); lsused runs as the user `lsused`, a member of `suspend`.

# SEE ALSO
lsusd(8), lsused(8), wakealarmd(8), lsusctl(1), request-suspend(1), flock(1),
and `doc/protocol.md` in the lsusd source tree
";
