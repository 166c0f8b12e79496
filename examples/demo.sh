#!/bin/sh
# demo.sh — lsusd at work, as an ordinary user, on a simulated kernel.
#
#   examples/demo.sh
#
# Builds the workspace, makes a temp directory with a fake sysfs tree
# (power/state, power/wakeup_count, class/rtc/rtc0/{wakealarm,since_epoch}),
# starts lsusd (--dry-run: it never writes power/state), lsused and
# wakealarmd (--dry-run: it never writes the RTC) on a temp run directory,
# then runs real clients and prints a numbered transcript of what happens
# and why. Nothing needs root: nothing outside the temp directory is written.
#
# Environment:
#   LSUS_BIN_DIR   use the binaries in this directory instead of building
#   CARGO_TARGET_DIR  where cargo builds (default: target/ of the workspace)
#
# Exit status: 0 if every step happened as described, 1 otherwise (with a
# message saying which step and the daemons' logs), 2 if a tool is missing.

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
started=$(date +%s)

# ---------------------------------------------------------------- helpers

T=
pids=
cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null
    done
    for p in $pids; do
        wait "$p" 2>/dev/null
    done
    [ -n "$T" ] && rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Remembers a background process so that the trap ends it.
track() { pids="$pids $1"; }

say() { printf '%s\n' "$*"; }
step_no=0
step() {
    step_no=$((step_no + 1))
    printf '\n== %d. %s\n' "$step_no" "$1"
    shift
    for why in "$@"; do
        printf '   %s\n' "$why"
    done
}
# `run CMD…` shows a command line as the user would type it.
show_cmd() { printf '   $ %s\n' "$*"; }
# Indents a file (or stdin) under a label: what a program printed.
show_out() {
    label=$1
    shift
    sed "s/^/   $label| /" "$@"
}
# lsusd's, lsused's or wakealarmd's log lines since line $2 that match $3,
# without the time stamp.
show_log() {
    tail -n +"$(($2 + 1))" "$T/$1.log" | grep -E -- "$3" |
        sed -E 's/^[0-9T:.Z-]+ +[A-Z]+ +//; s/^/   '"$1"'| /'
}
lines() { wc -l <"$1" | tr -d ' '; }

fail() {
    printf '\nDEMO FAILED at step %d: %s\n' "$step_no" "$*" >&2
    if [ -n "$T" ]; then
        for d in lsusd lsused wakealarmd; do
            [ -f "$T/$d.log" ] || continue
            printf -- '--- %s log (last 15 lines):\n' "$d" >&2
            tail -n 15 "$T/$d.log" | sed 's/^/  /' >&2
        done
        printf -- '--- run directory:\n' >&2
        ls -la "$T/run" 2>/dev/null | sed 's/^/  /' >&2
    fi
    exit 1
}

# `wait_until WHAT SECS CMD…`: runs CMD until it succeeds; fails the demo
# after SECS seconds. Every wait in this script is on a condition.
wait_until() {
    what=$1
    limit=$(($2 * 50))
    shift 2
    n=0
    until "$@"; do
        n=$((n + 1))
        [ "$n" -ge "$limit" ] && fail "timed out waiting for: $what"
        sleep 0.02
    done
}
has() { grep -q -- "$2" "$1" 2>/dev/null; }
count() { grep -c -- "$2" "$1" 2>/dev/null || true; }
at_least() { [ "$(count "$1" "$2")" -ge "$3" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
not() { ! "$@"; }

# `finish PID`: waits for a tracked process (at most 10 s) and sets $rc.
finish() {
    wait_until "process $1 to exit" 10 gone "$1"
    rc=0
    wait "$1" || rc=$?
}

# `request EXPECTED`: runs request-suspend, shows what it printed and its
# exit status, and fails the demo unless that is EXPECTED.
request() {
    show_cmd "request-suspend"
    rc=0
    request-suspend >"$T/req.out" 2>&1 || rc=$?
    show_out "request-suspend" "$T/req.out"
    say "   (exit status $rc)"
    [ "$rc" = "$1" ] || fail "request-suspend exited $rc, expected $1"
}

for tool in flock mkfifo python3; do
    command -v "$tool" >/dev/null 2>&1 || {
        say "demo.sh: $tool is needed but not installed" >&2
        exit 2
    }
done

# ---------------------------------------------------------------- set-up

if [ -n "${LSUS_BIN_DIR:-}" ]; then
    BIN=$LSUS_BIN_DIR
else
    say "Building the workspace (cargo build --workspace --bins)..."
    (cd "$root" && cargo build --workspace --bins --quiet) || {
        say "demo.sh: the build failed" >&2
        exit 2
    }
    BIN=${CARGO_TARGET_DIR:-$root/target}/debug
fi
for b in lsusd lsused wakealarmd request-suspend watch_test block_test event_test alarm_test; do
    [ -x "$BIN/$b" ] || {
        say "demo.sh: $BIN/$b is missing" >&2
        exit 2
    }
done
PATH=$BIN:$PATH

T=$(mktemp -d "${TMPDIR:-/tmp}/lsus-demo.XXXXXX") || exit 2
RUN=$T/run
SYS=$T/sys
mkdir -p "$SYS/power" "$SYS/class/rtc/rtc0"
: >"$SYS/power/state"
echo 42 >"$SYS/power/wakeup_count"
: >"$SYS/class/rtc/rtc0/wakealarm"
date +%s >"$SYS/class/rtc/rtc0/since_epoch"
# Every client finds the run directory here (libsus, block.sh, suspend.py).
LSUSD_RUN_DIR=$RUN
export LSUSD_RUN_DIR
unset NOTIFY_SOCKET RUST_LOG

say "lsusd demo: the Linux SUSpend Daemon and its clients, on a simulated kernel"
say "   work directory   $T"
say "   fake sysfs       $SYS (power/state, power/wakeup_count, class/rtc/rtc0)"
say "   run directory    $RUN (LSUSD_RUN_DIR)"

step "Start the daemons" \
    "lsusd owns suspend; --dry-run does everything but the final write to power/state," \
    "and each \"suspend\" then lasts --dry-run-sleep (default 1 s; 0.2 s here to keep the demo short)." \
    "lsused and wakealarmd are lsusd's watchers that serve sockets; wakealarmd" \
    "--dry-run logs the RTC writes instead of making them."
show_cmd "lsusd --run-dir $RUN --sysfs $SYS --dry-run --dry-run-sleep 0.2 &"
lsusd --run-dir "$RUN" --sysfs "$SYS" --dry-run --dry-run-sleep 0.2 >"$T/lsusd.log" 2>&1 &
track $!
wait_until "lsusd to be ready" 10 has "$T/lsusd.log" "ready"
show_cmd "lsused --run-dir $RUN &"
lsused --run-dir "$RUN" >"$T/lsused.log" 2>&1 &
track $!
wait_until "lsused to be ready" 10 has "$T/lsused.log" "ready"
show_cmd "wakealarmd --run-dir $RUN --sysfs $SYS --dry-run &"
wakealarmd --run-dir "$RUN" --sysfs "$SYS" --dry-run >"$T/wakealarmd.log" 2>&1 &
track $!
wait_until "wakealarmd to be ready" 10 has "$T/wakealarmd.log" "ready"
show_log lsusd 0 "ready"
show_log lsused 0 "ready"
show_log wakealarmd 0 "ready"
say "   run directory now: $(cd "$RUN" && ls | tr '\n' ' ')"

# ---------------------------------------------------------------- 1
step "A watcher hears of suspend and resume; a request suspends (dry run)" \
    "watch_test holds a shared lock on RUN/watching. lsusd writes one byte to it," \
    "waits until every watcher has moved its lock to watching-next (\"ready\")," \
    "then suspends, and renames watching-next over watching after resume."
mark=$(lines "$T/lsusd.log")
show_cmd "watch_test &"
watch_test >"$T/watch.out" 2>&1 &
w=$!
track $w
wait_until "watch_test to register" 10 has "$T/watch.out" "watching"
request 0
wait_until "watch_test to hear of the resume" 10 has "$T/watch.out" "resumed"
show_out "watch_test" "$T/watch.out"
show_log lsusd "$mark" "suspend \\(|dry run"
[ -s "$SYS/power/state" ] && fail "power/state was written despite --dry-run"
say "   power/state is still empty: --dry-run"
kill "$w"

# ---------------------------------------------------------------- 2
step "A shell script blocks suspend with flock(1); the request is refused" \
    "examples/block.sh: suspend_block is 'exec 9< RUN/disabled; flock -s 9'." \
    "lsusd finds disabled share-locked, waits until the lock goes, drops the" \
    "request and names the blocker. request-suspend exits 1."
mark=$(lines "$T/lsusd.log")
mkfifo "$T/release"
show_cmd "sh -c '. examples/block.sh; suspend_block; …; read <release; suspend_allow' &"
BLOCK_SH=$here/block.sh RELEASE=$T/release sh -c '
    . "$BLOCK_SH"
    suspend_block || exit 2
    echo "suspend blocked by PID $$ (shared flock on disabled)"
    read _ <"$RELEASE"
    suspend_allow
    echo "suspend allowed"
' >"$T/shell.out" 2>&1 &
s=$!
track $s
wait_until "the shell client to block" 10 has "$T/shell.out" "blocked by PID"
show_cmd "request-suspend &"
request-suspend >"$T/req.out" 2>&1 &
r=$!
track $r
wait_until "lsusd to see the block" 10 has "$T/lsusd.log" "blocked by PID"
show_log lsusd "$mark" "blocked"
say "   (/proc/locks gives the PID of flock(1), which took the lock on the shell's"
say "   descriptor and exited; lsusd names the shell $s, which holds it now)"
say "   ... the shell client lets go:"
echo go >"$T/release"
finish "$s"
finish "$r"
show_out "shell" "$T/shell.out"
show_out "request-suspend" "$T/req.out"
say "   (exit status $rc)"
[ "$rc" = 1 ] || fail "request-suspend exited $rc, expected 1 (blocked)"
has "$T/req.out" "blocked by PID" || fail "request-suspend did not say who blocked"

# ---------------------------------------------------------------- 3
step "A watcher reads disabled: the attempt is aborted" \
    "Reading RUN/disabled during an attempt tells lsusd someone objects (lsusd" \
    "sees the read with inotify IN_ACCESS). The watchers still hear 'resumed'."
mark=$(lines "$T/lsusd.log")
show_cmd "watch_test --abort --count 1 &"
watch_test --abort --count 1 >"$T/abort.out" 2>&1 &
w=$!
track $w
wait_until "watch_test --abort to register" 10 has "$T/abort.out" "watching"
request 1
has "$T/req.out" "aborted" || fail "request-suspend did not say aborted"
finish "$w"
show_out "watch_test" "$T/abort.out"
show_log lsusd "$mark" "suspend \\("

# ---------------------------------------------------------------- 4
step "A Python watcher and requester, standard library only" \
    "examples/suspend.py follows the same protocol with fcntl.flock and waits" \
    "with dnotify (fcntl F_NOTIFY), as the original's suspend.py did."
show_cmd "python3 examples/suspend.py watch --count 1 &"
python3 "$here/suspend.py" watch --count 1 >"$T/py.out" 2>&1 &
p=$!
track $p
wait_until "the Python watcher to register" 10 has "$T/py.out" "watching"
show_cmd "python3 examples/suspend.py request"
rc=0
python3 "$here/suspend.py" request >"$T/pyreq.out" 2>&1 || rc=$?
show_out "suspend.py request" "$T/pyreq.out"
say "   (exit status $rc)"
[ "$rc" = 0 ] || fail "suspend.py request exited $rc, expected 0"
finish "$p"
show_out "suspend.py watch" "$T/py.out"
has "$T/py.out" "suspend imminent" || fail "the Python watcher missed the suspend"
has "$T/py.out" "resumed" || fail "the Python watcher missed the resume"

# ---------------------------------------------------------------- 5
step "A wake event: lsused hands unread input to its client before suspend" \
    "event_test registers a FIFO with lsused. When suspend is imminent and the" \
    "FIFO has unread input, lsused sends S and waits for R; after resume, A." \
    "(event_test is stopped for a moment so that its input stays unread.)"
mark=$(lines "$T/lsused.log")
mkfifo "$T/events"
show_cmd "event_test $T/events &"
event_test "$T/events" >"$T/ev.out" 2>&1 &
e=$!
track $e
wait_until "event_test to register" 10 has "$T/ev.out" "registered"
# Read-write: opening does not wait for a reader, and the FIFO stays open.
exec 7<>"$T/events"
kill -STOP "$e"
show_cmd "echo ring > $T/events; request-suspend"
echo ring >&7
request-suspend >"$T/req.out" 2>&1 &
r=$!
track $r
wait_until "lsused to send S" 10 has "$T/lsused.log" "sent S to 1 client"
kill -CONT "$e"
finish "$r"
exec 7>&-
show_out "request-suspend" "$T/req.out"
say "   (exit status $rc)"
[ "$rc" = 0 ] || fail "request-suspend exited $rc, expected 0"
wait_until "event_test to hear A" 10 has "$T/ev.out" "awake"
show_out "event_test" "$T/ev.out"
show_log lsused "$mark" "sent S|every S|sent A"
kill "$e"

# ---------------------------------------------------------------- 6
step "A wake alarm: wakealarmd programs the RTC before suspend" \
    "alarm_test asks wakealarmd for an alarm 60 s ahead. An alarm more than 4 s" \
    "away does not block suspend: wakealarmd sets the RTC to wake the machine" \
    "2 s early (--dry-run: logged, not written) and is ready."
mark=$(lines "$T/wakealarmd.log")
show_cmd "alarm_test 60 &"
alarm_test 60 >"$T/alarm.out" 2>&1 &
a=$!
track $a
wait_until "alarm_test to set its alarm" 10 has "$T/alarm.out" "Alarm set for"
show_out "alarm_test" "$T/alarm.out"
request 0
wait_until "wakealarmd to log the RTC programming" 10 \
    has "$T/wakealarmd.log" "dry run: not writing"
show_log wakealarmd "$mark" "suspend imminent"
[ -s "$SYS/class/rtc/rtc0/wakealarm" ] && fail "the RTC was written despite --dry-run"
kill "$a"

# ---------------------------------------------------------------- 7
step "Immediate mode: suspend whenever nothing blocks" \
    "While RUN/immediate exists and someone holds a lock on it, lsusd suspends" \
    "again and again (here: flock -x from the shell). Released, it stops."
mark=$(lines "$T/lsusd.log")
mkfifo "$T/leave"
show_cmd "flock -x $RUN/immediate sh -c 'read _ <leave' &"
flock -x "$RUN/immediate" sh -c 'read _ <"$1"' sh "$T/leave" &
i=$!
track $i
at_least_since() { [ "$(tail -n +"$(($2 + 1))" "$T/$1.log" | grep -c -- "$3")" -ge "$4" ]; }
wait_until "two suspends in immediate mode" 10 \
    at_least_since lsusd "$mark" "suspend (immediate mode)" 2
echo leave >"$T/leave"
finish "$i"
# Unlocked now: lsusd removes the file as stale (after a grace period of
# about 1 s for a young file), and no further cycle can start.
exists() { [ -e "$1" ]; }
wait_until "lsusd to remove the unlocked immediate" 10 not exists "$RUN/immediate"
n=$(tail -n +"$((mark + 1))" "$T/lsusd.log" | grep -c "suspend (immediate mode)")
show_log lsusd "$mark" "suspend \\(immediate mode\\)" | head -n 2
say "   ... $n suspend cycles in all while the lock was held; released:"
show_log lsusd "$mark" "stale immediate"

elapsed=$(($(date +%s) - started))
printf '\nAll %d steps behaved as described (%d s). The daemons stop now.\n' "$step_no" "$elapsed"
