# The guest library of the systemd flavour: sourced by /scenarios/N-*.sh of
# tests/vm/systemd/scenarios inside the systemd guest (bash is not needed:
# dash runs it). It sources lib.sh, the library both flavours share
# (LSUS-CHECK/LSUS-RESULT output, wait_for, spawn, request, rtc and
# kernel-log figures), and adds what concerns the installed units.
#
# The daemons here are the ones systemd started from the units that
# systemd/install.sh installed (enabled with systemctl enable): scenarios
# never start lsusd, lsused or wakealarmd themselves.
. /scenarios/lib.sh
. /scenarios/journal-mark.sh

UNITS="lsusd lsused wakealarmd"

# prop UNIT PROPERTY: a property of UNIT.service (systemctl show -P)
prop() { systemctl show -P "$2" "$1.service"; }
# unit_running UNIT: active (running)
unit_running() { [ "$(prop "$1" ActiveState)/$(prop "$1" SubState)" = active/running ]; }
# unit_state UNIT: "ActiveState/SubState NRestarts=N MainPID=P", for messages
unit_state() { echo "$(prop "$1" ActiveState)/$(prop "$1" SubState) NRestarts=$(prop "$1" NRestarts) MainPID=$(prop "$1" MainPID)"; }
# main_pid UNIT
main_pid() { prop "$1" MainPID; }

# wait_units [SECONDS]: the three units are active (running); fails the
# scenario (finish) if one is not
wait_units() {
    for _u in $UNITS; do
        if wait_for "${1:-60}" unit_running "$_u"; then
            ok "$_u.service is active (running): $(unit_state "$_u")"
        else
            bad "$_u.service is active (running): $(unit_state "$_u")"
            systemctl status --no-pager "$_u.service" 2>&1 | sed 's/^/    | /'
            finish
        fi
    done
}

# The journal of this scenario: from the mark run-scenario wrote as it
# began (journal_mark; the first scenario of a boot gets none: the whole
# boot)
JCUR=${LSUS_JOURNAL_CURSOR:-}
# jctl ARGS...: journalctl -b -q --no-pager of this scenario's entries
jctl() {
    if [ -n "$JCUR" ]; then
        journalctl -b -q --no-pager --cursor="$JCUR" "$@"
    else
        journalctl -b -q --no-pager "$@"
    fi
}
# journal UNIT PRIORITY: the messages of UNIT.service in this scenario at
# PRIORITY or more urgent (journalctl -p), without decoration
journal() { jctl -o cat -p "$2" -u "$1.service"; }
# journal_has UNIT PRIORITY PATTERN: one of those messages matches the
# extended regular expression PATTERN
journal_has() { journal "$1" "$2" | grep -Eq -- "$3"; }
# no_warnings: journalctl -p warning is empty for the three units
no_warnings() {
    _w=$(jctl -o short-monotonic -p warning -u lsusd.service -u lsused.service -u wakealarmd.service)
    if [ -z "$_w" ]; then
        ok "journalctl -p warning is empty for lsusd, lsused and wakealarmd"
    else
        bad "journalctl -p warning is empty for lsusd, lsused and wakealarmd; it holds:"
        printf '%s\n' "$_w" | sed 's/^/    | /'
    fi
}

# as USER COMMAND...: run COMMAND as USER (with USER's groups)
as() {
    _u=$1
    shift
    runuser -u "$_u" -- env LSUSD_RUN_DIR="$RUN" PATH="$PATH" "$@"
}
# member NAME: make a user NAME in the group suspend (useradd), as an
# administrator would: useradd -m -G suspend NAME (a scenario earlier in the
# same boot may have made NAME already)
member() {
    if id "$1" >/dev/null 2>&1; then
        check "$1 (made earlier in this boot) is in suspend" sh -c "id -nG $1 | grep -qw suspend"
    else
        check "useradd -m -G suspend $1" useradd -m -G suspend "$1"
    fi
}
# outsider NAME: a user NAME who is not in the group suspend
outsider() {
    if id "$1" >/dev/null 2>&1; then
        check "$1 (made earlier in this boot) is not in suspend" not sh -c "id -nG $1 | grep -qw suspend"
    else
        check "useradd -m $1 (not in suspend)" useradd -m "$1"
    fi
}

# ctl NAME ARGS...: `lsusctl ARGS...` as root, output in $L/NAME.log (so that
# log_has NAME works) and on the console; sets CTL_RC
ctl() {
    _c=$1
    shift
    lsusctl "$@" >"$L/$_c.log" 2>&1
    CTL_RC=$?
    say "lsusctl $* (exit $CTL_RC):"
    sed 's/^/    | /' "$L/$_c.log"
}
not() { ! "$@"; }

# alarm_suspend NAME [SECONDS]: a real suspend woken by a wake alarm set
# through wakealarmd: alarm_test (as NAME-alarm) asks for a time SECONDS
# (default 15) ahead, then request-suspend (as NAME) must exit 0, the kernel
# count one more suspend and the alarm client get Now. (wakealarmd keeps
# the machine awake for an alarm less than 4 s ahead, refusing the request
# then, as it must: on a loaded host starting request-suspend took 4 s, so
# 6 s ahead was not enough.)
alarm_suspend() {
    _s0=$(suspends)
    spawn "$1-alarm" alarm_test "${2:-15}"
    check "alarm_test ($1-alarm) set its alarm through wakealarmd" wait_alarm_set "$1-alarm"
    request "$1"
    check "request-suspend ($1) exits 0 (got $RC)" [ "$RC" = 0 ]
    check "one more suspend counted ($_s0 -> $(suspends))" [ "$(suspends)" = $((_s0 + 1)) ]
    check "the alarm client got Now" wait_log 30 "$1-alarm" '^Now'
}

# sd_finish: the checks every scenario of this flavour ends with, then
# finish. The machine suspended to S3: mem_sleep selects [deep] and there is
# one "PM: suspend entry (deep)" per suspend counted (at least one), both
# since this scenario began.
sd_finish() {
    check "mem_sleep selects deep ($(cat /sys/power/mem_sleep))" grep -q '\[deep\]' /sys/power/mem_sleep
    _n=$(kts_count 'PM: suspend entry \(deep\)')
    _k=$(suspends_since_start)
    check "a real suspend: $_k counted, $_n 'PM: suspend entry (deep)'" sh -c "[ $_k -ge 1 ] && [ $_n = $_k ]"
    finish
}

# ---- lsus-logind and the real systemd-logind (issue #14) ------------------------
# The guest is installed with install.sh --with-logind: lsus-logind.service
# (enabled) runs beside the three, and systemd-suspend.service has the
# drop-in that sends logind's suspends (systemctl suspend) through lsusd.

# logind_says PATTERN: the summary line of lsus-logind's status file
# (doc/protocol.md §1.13: logind=connected inhibitors=N blocking=B
# holding=yes|no sleeping=yes|no) matches the extended regex PATTERN
logind_says() { head -n 1 "$RUN/lsus-logind.status" 2>/dev/null | grep -Eq -- "$1"; }
# logind_lists PATTERN: one of its inhibitor lines matches PATTERN
logind_lists() { grep -Eq -- "$1" "$RUN/lsus-logind.status" 2>/dev/null; }
# wait_logind: lsus-logind.service is active (running) through READY=1 and
# connected to the system bus; fails the scenario (finish) otherwise
wait_logind() {
    if wait_for 60 unit_running lsus-logind && wait_for 30 logind_says '^logind=connected '; then
        ok "lsus-logind.service is active (running), connected to logind: $(unit_state lsus-logind); $(head -n 1 "$RUN/lsus-logind.status")"
    else
        bad "lsus-logind.service is active (running), connected to logind: $(unit_state lsus-logind); status: $(head -n 1 "$RUN/lsus-logind.status" 2>&1)"
        systemctl status --no-pager lsus-logind.service 2>&1 | sed 's/^/    | /'
        finish
    fi
}
# inhibitors NAME: `systemd-inhibit --list` (logind's own view) into
# $L/NAME.log and on the console
inhibitors() {
    systemd-inhibit --list --no-pager >"$L/$1.log" 2>&1
    say "systemd-inhibit --list:"
    sed 's/^/    | /' "$L/$1.log"
}
# bus_ready NAME PATH: send a signal on the system bus at PATH and say
# whether the monitor NAME (spawned, its match rules taking PATH) printed it
bus_ready() {
    dbus-send --system --type=signal "$2" lsus.Test.Ready 2>/dev/null
    log_has "$1" "path=$2;"
}
# sleep_monitor NAME: `dbus-monitor --system` on logind's PrepareForSleep,
# spawned as NAME (so each of its lines reaches the kernel log, stamped
# with the printk clock), and waits until it is subscribed (it has printed
# a signal sent to /lsus/ready/NAME after it started)
sleep_monitor() {
    spawn "$1" stdbuf -oL dbus-monitor --system \
        "type='signal',interface='org.freedesktop.login1.Manager',member='PrepareForSleep'" \
        "type='signal',path='/lsus/ready/$1'"
    if wait_for 30 bus_ready "$1" "/lsus/ready/$1"; then
        ok "dbus-monitor --system ($1) is subscribed"
    else
        bad "dbus-monitor --system ($1) is subscribed"
        finish
    fi
}
# suspend_unit_mark: a journal cursor, from which suspend_unit_done and
# wait_suspend_unit read what systemd logged about systemd-suspend.service.
# (Not the unit's properties: once it ends successfully, the inactive unit
# is unloaded by systemd's garbage collection, and `systemctl show` then
# gives the defaults: ExecMainExitTimestampMonotonic=0, as before it ran.)
suspend_unit_mark() { SU_CUR=$(journal_mark "suspend unit mark"); }
# su_journal: the messages about systemd-suspend.service since the mark
su_journal() { journalctl -q --no-pager -o cat --cursor="$SU_CUR" -u systemd-suspend.service; }
# su_journal_has PATTERN: one of those messages matches the extended regex
su_journal_has() { su_journal | grep -Eq -- "$1"; }
# suspend_unit_done: systemd-suspend.service has run and stopped since
# suspend_unit_mark (a oneshot: systemd logs "Deactivated successfully"
# after success, "Failed with result" after a refused attempt)
suspend_unit_done() {
    su_journal | grep -Eq '^systemd-suspend\.service: (Deactivated successfully|Failed with result)'
}
# wait_suspend_unit SECONDS: check that systemd-suspend.service has run and
# stopped since suspend_unit_mark, saying how
wait_suspend_unit() {
    if wait_for "$1" suspend_unit_done; then
        ok "systemd-suspend.service ran and stopped: $(su_journal | grep -E '^systemd-suspend\.service: (Deactivated|Failed|Main process)' | tr '\n' ' ')"
    else
        bad "systemd-suspend.service ran and stopped within $1 s: $(unit_state systemd-suspend); its journal since:"
        su_journal | sed 's/^/    | /'
    fi
}
# suspend_unit_ok: systemd logged that systemd-suspend.service ended
# successfully since suspend_unit_mark, and no failure
suspend_unit_ok() {
    su_journal | grep -q '^systemd-suspend\.service: Deactivated successfully' &&
        ! su_journal | grep -q '^systemd-suspend\.service: Failed with result'
}
# after_ts A B: kernel-log stamps A and B are both known and A < B
after_ts() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
