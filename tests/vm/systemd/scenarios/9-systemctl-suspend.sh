# Scenario 9 (systemd): systemctl suspend goes through lsusd: refused while a flock -s blocker holds (the unit fails naming it), else a real S3 cycle; watcher and lsused client told.
# With the project's drop-in, systemd-suspend.service runs request-suspend
# instead of writing /sys/power/state. While `flock -s RUN/disabled sh -c
# …` holds, `systemctl suspend` does not suspend: suspend_stats/success
# unchanged, the unit fails and the journal has the blocker's name (what
# request-suspend printed). (systemctl itself exits 0: logind answers once
# the job is queued; systemd/README.md says so.) Without the blocker: a
# real S3 cycle woken by the RTC, the lsusd watcher (the shell watcher)
# told before and after, and an lsused client (event_test, its FIFO
# readable when the attempt comes) sent S, then A after the resume.
. /scenarios/systemd.sh

wait_units
wait_logind

# refused while a blocker holds
spawn fblock flock -s "$RUN/disabled" sh -c "echo blocking; while [ ! -e $L/fblock.release ]; do sleep 0.05; done"
check "a shared lock with flock -s $RUN/disabled sh -c ..." wait_log 30 fblock '^blocking'
fpid=$(pid_of fblock)
s0=$(suspends)
suspend_unit_mark
mark "systemctl suspend (blocked)"
systemctl suspend >"$L/sc1.log" 2>&1
rc=$?
say "systemctl suspend exited $rc: $(cat "$L/sc1.log")"
wait_suspend_unit 120
check "systemd-suspend.service failed" su_journal_has '^systemd-suspend\.service: Failed with result'
check "its journal names the blocker: blocked by PID $fpid (flock -s ...)" \
    su_journal_has "blocked by PID $fpid \\(flock -s $RUN/disabled sh -c echo blocking; "
check "suspend_stats/success unchanged ($s0 -> $(suspends))" [ "$(suspends)" = "$s0" ]
touch "$L/fblock.release"
wait_exit fblock
check "the request made while blocked is dropped" wait_for 30 absent "$RUN/request"

# without: a real S3 cycle; the watcher and an lsused client are told
start_watcher
mkfifo "$L/input.fifo"
spawn ev event_test "$L/input.fifo"
check "event_test registered its FIFO with lsused" wait_log 30 ev '^registered'
evpid=$(pid_of ev)
kill -STOP "$evpid"
printf 'hello\n' >"$L/input.fifo" &
# (a safety net: should lsused go on without the stopped client after its
# --reply-timeout, 30 s, the RTC still wakes the machine; the checks fail)
rtc_arm 90
rtc0=$(rtc_wakeups)
suspend_unit_mark
mark "systemctl suspend"
systemctl suspend >"$L/sc2.log" 2>&1
rc=$?
say "systemctl suspend exited $rc: $(cat "$L/sc2.log")"
check "systemctl suspend exits 0 (got $rc)" [ "$rc" = 0 ]
check "lsused sent S to the client (its descriptor readable)" \
    wait_for 120 journal_has lsused info 'sent S to 1 client'
check "no suspend while the client has not answered" [ "$(suspends)" = "$s0" ]
rtc_arm 8
mark "client continued"
kill -CONT "$evpid"
wait_suspend_unit 120
check "systemd-suspend.service ended successfully" suspend_unit_ok
check "one suspend counted ($s0 -> $(suspends))" [ "$(suspends)" = $((s0 + 1)) ]
check "the RTC woke the guest ($rtc0 -> $(rtc_wakeups))" [ "$(rtc_wakeups)" -gt "$rtc0" ]
check "the watcher was told: imminent, then resumed" sh -c "
    grep -q 'suspend imminent (cycle 1)' '$L/watcher.log' && grep -q 'resumed (cycle 1)' '$L/watcher.log'"
check "event_test got S and read its input" sh -c "
    grep -q '^suspend: handling wake event' '$L/ev.log' && grep -q 'read 6 bytes' '$L/ev.log'"
check "event_test got A after the resume" wait_log 30 ev '^awake'
check "the suspend came after the client was let go" \
    after_ts "$(kts 'lsus-mark: client continued')" "$(kts 'PM: suspend entry')"
stop watcher ev

latency_request_to_state "client continued"
latency_resume_to_notified 'lsus-mark: watcher: resumed'
sd_finish
