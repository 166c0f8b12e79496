# Helpers for the scenario scripts of the real-kernel suite. Sourced by
# /scenarios/N-*.sh inside the guest (busybox ash). Not run on the host.
#
# Output conventions (parsed by tests/vm/run):
#   LSUS-CHECK pass: TEXT | LSUS-CHECK FAIL: TEXT   one per assertion
#   LSUS-RESULT scenario=N result=pass|fail suspends=K req_ms=X resume_ms=Y
#
# Clock: every figure is taken from the kernel's printk clock (local_clock,
# monotonic, not counting time spent suspended), as stamped on kernel-log
# records. The scenario writes its own markers into the kernel log through
# /dev/kmsg ("lsus-mark: ..."), and every line a client or daemon prints is
# copied there too ("lsus-out NAME: ..."), so user-space events and the
# kernel's own "PM: suspend entry" / "PM: suspend exit" share one clock with
# microsecond resolution (printk.devkmsg=on lifts the rate limit).

RUN=/run/suspend
SYSFS=/sys
# every binary and libsus honour it; the daemons also get --run-dir
export LSUSD_RUN_DIR=$RUN
# this scenario's logs (a systemd boot runs several scenarios, each with its
# own directory)
L=${LSUS_LOG_DIR:-/tmp/lsus}
mkdir -p "$L"
SCEN=${LSUS_SCENARIO:-?}
CHECKS=0
FAILS=0
REQ_MS=-
RESUME_MS=-
SUSP0=$(cat /sys/power/suspend_stats/success)

# ---- output -----------------------------------------------------------------
now() { cut -d' ' -f1 /proc/uptime; }
say() { echo "[$(now)] $*"; }
mark() { echo "lsus-mark: $*" >/dev/kmsg; say "mark: $*"; }

ok() { CHECKS=$((CHECKS + 1)); echo "LSUS-CHECK pass: $*"; }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "LSUS-CHECK FAIL: $*"; }
# check "description" command...: an assertion
check() {
    _d=$1
    shift
    if "$@"; then ok "$_d"; else bad "$_d"; fi
}

suspends() { cat /sys/power/suspend_stats/success; }
suspends_since_start() { echo $(($(suspends) - SUSP0)); }

# ---- waiting ------------------------------------------------------------------
# wait_for SECONDS command...: poll every 0.05 s until the command succeeds,
# for SECONDS of the clock (/proc/uptime, whole seconds, read with
# builtins). Time spent suspended does not use the wait up: when the
# kernel counts a suspend meanwhile, the wait starts again from the resume.
# (The deadline used to be a count of polls, 20 a second; on a loaded host
# one poll of a condition like `systemctl show` takes a second or more, and
# "wait 10 s" lasted minutes.)
wait_for() {
    read -r _wf_t _ </proc/uptime
    read -r _wf_s </sys/power/suspend_stats/success
    _wf_end=$((${_wf_t%.*} + $1 + 1))
    _wf_len=$1
    shift
    while :; do
        "$@" && return 0
        read -r _wf_t _ </proc/uptime
        read -r _wf_s2 </sys/power/suspend_stats/success
        if [ "$_wf_s2" != "$_wf_s" ]; then
            _wf_s=$_wf_s2
            _wf_end=$((${_wf_t%.*} + _wf_len + 1))
        fi
        [ "${_wf_t%.*}" -lt "$_wf_end" ] || break
        sleep 0.05
    done
    "$@"
}

# log_has NAME PATTERN: the output of NAME (see spawn) has a line matching
# the extended regular expression PATTERN
log_has() { grep -Eq -- "$2" "$L/$1.log" 2>/dev/null; }
# log_count NAME PATTERN
log_count() { grep -Ec -- "$2" "$L/$1.log" 2>/dev/null || true; }
# wait_log SECONDS NAME PATTERN
wait_log() { wait_for "$1" log_has "$2" "$3"; }

# ---- processes ----------------------------------------------------------------
# spawn NAME command...: start command in the background; its stdout and
# stderr go, line by line, to $L/NAME.log and to the kernel log as
# "lsus-out NAME: LINE" (stamped there with the printk clock). The command's
# pid is in $L/NAME.pid. Its stdin is $L/NAME.stdin, an empty file (a daemon
# that closes its stdin to say "ready" is detected with stdin_closed).
spawn() {
    _name=$1
    shift
    : >"$L/$_name.stdin"
    rm -f "$L/$_name.fifo"
    mkfifo "$L/$_name.fifo"
    (
        # builtins only (no fork per line): the copy to the kernel log must
        # be quick, its time stamp is what the latencies are made of
        while IFS= read -r _l; do
            echo "lsus-out $_name: $_l" >/dev/kmsg
            printf '%s\n' "$_l" >>"$L/$_name.log"
        done <"$L/$_name.fifo"
    ) &
    echo $! >"$L/$_name.lpid"
    "$@" <"$L/$_name.stdin" >"$L/$_name.fifo" 2>&1 &
    echo $! >"$L/$_name.pid"
    say "spawned $_name (pid $!): $*"
}
pid_of() { cat "$L/$1.pid"; }
alive() { kill -0 "$(pid_of "$1")" 2>/dev/null; }
# stdin_closed NAME: the process no longer has $L/NAME.stdin as its fd 0
stdin_closed() {
    [ "$(readlink "/proc/$(pid_of "$1")/fd/0" 2>/dev/null)" != "$L/$1.stdin" ]
}
stop() {
    for _n in "$@"; do
        [ -f "$L/$_n.pid" ] && kill "$(pid_of "$_n")" 2>/dev/null
    done
    return 0
}
# wait_exit NAME: wait for NAME to end (it must have been spawned by this
# shell) and for its output to be logged; sets RC to its exit status
wait_exit() {
    wait "$(pid_of "$1")"
    RC=$?
    wait "$(cat "$L/$1.lpid")" 2>/dev/null
    return 0
}

# request NAME [TIMEOUT]: mark "request NAME" in the kernel log, run
# request-suspend (output in $L/NAME.log) and wait for it; sets RC
request() {
    mark "request $1"
    spawn "$1" request-suspend --run-dir "$RUN" --timeout "${2:-40}"
    request_ended "$1"
}
# request_ended NAME: wait for the request-suspend spawned as NAME and log
# how it ended; sets RC
request_ended() {
    wait_exit "$1"
    say "request-suspend ($1) exited $RC: $(tr '\n' ' ' <"$L/$1.log")"
}

# blocked_request NAME: a request made while the guest's blocker.sh holds
# its lock is answered at once (doc/protocol.md §2 step 3): exit 1, the
# blocker's shell named (not the flock(1) that took the lock and exited),
# no suspend counted
blocked_request() {
    mark "request $1"
    spawn "$1" request-suspend --run-dir "$RUN" --timeout 40
    request_ended "$1"
    check "request-suspend exits 1 at once while blocked (got $RC)" [ "$RC" = 1 ]
    check "request-suspend names the blocker's shell, PID $(pid_of blocker)" \
        log_has "$1" "^blocked by PID $(pid_of blocker) \\(sh /scenarios/blocker.sh blocker\\)\$"
    check "no suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 0 ]
}

# release_blocker: the guest's blocker.sh releases its lock; lsusd drops
# the request made while it was held, without a suspend
release_blocker() {
    touch "$L/blocker.release"
    check "blocker released its lock" wait_log 5 blocker '^released'
    check "the request made while blocked is dropped" wait_for 5 absent "$RUN/request"
    check "no suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 0 ]
}

# first_suspend NAME SECONDS [CYCLE]: the request NAME, with the RTC armed
# SECONDS ahead, brings the scenario's first real suspend, and the watcher
# sees the resume as its cycle CYCLE (default 1)
first_suspend() {
    rtc_arm "$2"
    request "$1"
    check "the next request exits 0 (got $RC)" [ "$RC" = 0 ]
    check "exactly one suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
    check "the watcher saw the resume" wait_log 5 watcher "resumed \\(cycle ${3:-1}\\)"
}

need_bins() {
    for _b in "$@"; do
        if ! command -v "$_b" >/dev/null 2>&1; then
            bad "binary $_b is in the initramfs"
            finish
        fi
    done
}

# lock_count FILE READ|WRITE: number of flock locks of that kind held on
# FILE (from /proc/locks; waiters, shown with "->", are not counted)
lock_count() {
    _i=$(stat -c %i "$1" 2>/dev/null) || { echo 0; return 0; }
    awk -v ino="$_i" -v kind="$2" '
        $2 == "FLOCK" && $4 == kind { n = split($6, a, ":"); if (a[n] == ino) c++ }
        END { print c + 0 }' /proc/locks
}
# watchers: shared locks on RUN/watching (each registered watcher holds one)
watchers() { lock_count "$RUN/watching" READ; }
# wait_watchers N [SECONDS]: wait until at least N watchers are registered
watchers_at_least() { [ "$(watchers)" -ge "$1" ]; }
wait_watchers() { wait_for "${2:-10}" watchers_at_least "$1"; }

# rtc_arm SECONDS: program the RTC alarm SECONDS from now (clears it first)
rtc_arm() {
    echo 0 >/sys/class/rtc/rtc0/wakealarm
    echo "+$1" >/sys/class/rtc/rtc0/wakealarm
    say "rtc alarm armed +$1 s (wakealarm=$(cat /sys/class/rtc/rtc0/wakealarm))"
}
# rtc_wakeups: how many wakeup events the RTC device signalled (the
# event_count of its wakeup source: its alarm interrupts)
rtc_wakeups() { cat /sys/class/rtc/rtc0/device/wakeup/wakeup*/event_count 2>/dev/null | head -n 1 | grep . || echo 0; }
# rtc_source: the name of the RTC device's wakeup source, as the kernel
# gives it in class/wakeup (lsusd records it so)
rtc_source() { cat /sys/class/rtc/rtc0/device/wakeup/wakeup*/name 2>/dev/null | head -n 1; }
# history_lists KEY NAME [LINE]: lsusd's history record LINE (default: the
# last) lists NAME among the comma-separated values of KEY (woke=, source=)
history_lists() {
    _hl=$(sed -n "${3:-\$}p" "$RUN/log/history" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p")
    case ",$_hl," in *",$2,"*) return 0 ;; esac
    return 1
}
# stats_agree N: `lsusctl stats --json` counts N suspends and the kernel's
# suspend_stats/success moved by as many (doc/protocol.md §6)
stats_agree() {
    _sj=$(lsusctl --run-dir "$RUN" stats --json 2>&1)
    say "lsusctl stats --json: $_sj"
    case "$_sj" in *"\"suspends\":$1,"*"\"kernel_suspends\":$1,\"lsusd_suspends\":$1,\"agree\":true"*) return 0 ;; esac
    return 1
}

# before A B: line numbers A and B are both known and A < B
before() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" -lt "$2" ]; }
# absent PATH: nothing stands at PATH
absent() { [ ! -e "$1" ]; }
# line_of NAME PATTERN [EXCLUDE]: number of the first line of NAME's output
# matching PATTERN (and not EXCLUDE), case-insensitive
line_of() {
    grep -n -i -E -- "$2" "$L/$1.log" 2>/dev/null | grep -v -i -E -- "^[0-9]+:.*(${3:-^$})" |
        head -n 1 | cut -d: -f1
}

# alarm_set NAME: the alarm client NAME has had its time accepted
alarm_set() { log_has "$1" '[0-9]{9,}'; }
wait_alarm_set() { wait_for 10 alarm_set "$1"; }

# start_watcher [ACTION]: start the guest's shell watcher (watcher.sh, a
# client written like the original's) as "watcher", with ACTION (see
# watcher.sh) in $L/watcher.action, and wait until it is registered
start_watcher() {
    _w0=$(watchers)
    [ -z "${1:-}" ] || echo "$1" >"$L/watcher.action"
    spawn watcher sh /scenarios/watcher.sh "$RUN"
    check "the shell watcher registered" wait_watchers $((_w0 + 1))
}

# start_blocker: start blocker.sh (flock(1) on the shell's descriptor of
# RUN/disabled) as "blocker" and wait until it holds its lock; see
# blocked_request, release_blocker
start_blocker() {
    spawn blocker sh /scenarios/blocker.sh blocker
    check "blocker holds its shared lock" wait_log 5 blocker '^blocking'
}

# blocked_with_watcher: lsusd, the shell watcher and the blocker started,
# then request r1 answered "blocked" and lsusd's log saying so (scenarios 2
# and 9). The RTC is armed for 30 s as a safety net only: if lsusd wrongly
# suspended, the guest wakes and the checks fail instead of it sleeping
# forever.
blocked_with_watcher() {
    start_lsusd
    start_watcher
    start_blocker
    check "/proc/locks shows a shared lock on disabled" [ "$(lock_count "$RUN/disabled" READ)" -ge 1 ]
    rtc_arm 30
    blocked_request r1
    check "lsusd logged that suspend is blocked" wait_log 10 lsusd 'blocked by PID'
}

# ---- the daemons --------------------------------------------------------------
lsusd_ready() {
    [ -e "$RUN/watching" ] && [ -e "$RUN/disabled" ] && { stdin_closed lsusd || [ -e "$RUN/lsusd.pid" ]; }
}
start_lsusd() {
    spawn lsusd lsusd --run-dir "$RUN" --sysfs "$SYSFS" -v "$@"
    if wait_for 15 lsusd_ready; then ok "lsusd is ready"; else bad "lsusd is ready"; finish; fi
}
# lsused and wakealarmd log their ready line ("… INFO ready: …") once their
# socket listens and they have registered as watchers of lsusd (a request
# before that would not wait for them); not any line with "ready" in it
# ("already running")
daemon_ready() { [ -S "$RUN/$2" ] && log_has "$1" ' INFO ready: '; }
start_lsused() {
    spawn lsused lsused --run-dir "$RUN" "$@"
    if wait_for 15 daemon_ready lsused registration; then ok "lsused is ready"; else bad "lsused is ready"; finish; fi
}
start_wakealarmd() {
    spawn wakealarmd wakealarmd --run-dir "$RUN" --sysfs "$SYSFS" "$@"
    if wait_for 15 daemon_ready wakealarmd wakealarm; then ok "wakealarmd is ready"; else bad "wakealarmd is ready"; finish; fi
}

# ---- figures from the kernel log ----------------------------------------------
# kts PATTERN [AFTER]: printk timestamp (seconds) of the first kernel-log
# record matching PATTERN whose timestamp is >= AFTER (default: the start of
# this scenario, KT0); empty if none
kts() {
    # the pattern goes through the environment: awk -v would eat its
    # backslashes
    dmesg | KTS_PAT="$1" awk -v after="${2:-${KT0:-0}}" '
        { if (match($0, /^\[ *[0-9]+\.[0-9]+\]/)) {
              t = substr($0, 2, RLENGTH - 2) + 0
              if (t >= after + 0 && $0 ~ ENVIRON["KTS_PAT"]) { printf "%.6f\n", t; exit } } }'
}
# ms_between T1 T2: (T2 - T1) in milliseconds, one decimal
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'; }

# latency_request_to_state MARK: from the "lsus-mark: MARK" record to the next
# "PM: suspend entry" (the kernel prints it as soon as SYS/power/state is
# written)
latency_request_to_state() {
    _a=$(kts "lsus-mark: $1\$")
    [ -n "$_a" ] || return 0
    _b=$(kts "PM: suspend entry" "$_a")
    [ -n "$_b" ] && REQ_MS=$(ms_between "$_a" "$_b")
    return 0
}
# latency_resume_to_notified PATTERN [AFTER]: from the first "PM: suspend
# exit" after AFTER (default: the start of this scenario, KT0; a systemd
# boot runs several) to the next kernel-log record matching PATTERN, e.g.
# 'lsus-out watch: .*resumed' (a line of watch_test's output)
latency_resume_to_notified() {
    _a=$(kts "PM: suspend exit" "${2:-${KT0:-0}}")
    [ -n "$_a" ] || return 0
    _b=$(kts "$1" "$_a")
    [ -n "$_b" ] && RESUME_MS=$(ms_between "$_a" "$_b")
    return 0
}

# The start of this scenario on the printk clock: every figure and every
# count of kernel-log records (kts, kts_count) begins there, since a
# systemd boot runs several scenarios
KT0=0
mark "scenario $SCEN begins"
KT0=$(kts "lsus-mark: scenario $SCEN begins\$" 0)
KT0=${KT0:-0}
# kts_count PATTERN: kernel-log records matching PATTERN since KT0
kts_count() {
    dmesg | KTS_PAT="$1" awk -v after="$KT0" '
        { if (match($0, /^\[ *[0-9]+\.[0-9]+\]/)) {
              t = substr($0, 2, RLENGTH - 2) + 0
              if (t >= after + 0 && $0 ~ ENVIRON["KTS_PAT"]) c++ } }
        END { print c + 0 }'
}

# ---- end ------------------------------------------------------------------------
finish() {
    [ "$CHECKS" -gt 0 ] || bad "the scenario checked something"
    _r=pass
    [ "$FAILS" -eq 0 ] || _r=fail
    _line="LSUS-RESULT scenario=$SCEN result=$_r suspends=$(suspends_since_start) req_ms=$REQ_MS resume_ms=$RESUME_MS checks=$CHECKS failed=$FAILS"
    echo "$_line" >"$L/result"
    echo "$_line"
    exit 0
}
