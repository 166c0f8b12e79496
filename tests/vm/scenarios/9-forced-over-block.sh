# Scenario 9: a forced request suspends over a held `flock -s` (issue #17,
# doc/protocol.md §12). blocker.sh holds a shared lock on disabled; a plain
# request is refused at once (exit 1), then `request-suspend --force --why
# test` (as root: root may always force) really suspends the guest (S3,
# "PM: suspend entry (deep)", suspend_stats/success +1), woken by the RTC
# armed by this script. lsusd's record says forced=1 why=test and names the
# blocker's shell in overrode=, and the blocker still holds its lock after
# the resume: it was told nothing.
. /scenarios/lib.sh
need_bins lsusd request-suspend lsusctl

blocked_with_watcher

# The forced request, while lsusd waits for the blocker: a real suspend.
rtc0=$(rtc_wakeups)
rtc_arm 5
mark "request f1"
spawn f1 request-suspend --run-dir "$RUN" --timeout 60 --force --why test
request_ended f1
check "request-suspend --force exits 0 (got $RC)" [ "$RC" = 0 ]
check "it says what it went over: the blocker's shell, PID $(pid_of blocker)" \
    log_has f1 "forced over the block of PID $(pid_of blocker) \\(sh\\)"
check "exactly one suspend counted (suspend_stats/success +$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
check "the kernel logged \"PM: suspend entry (deep)\"" [ "$(kts_count 'PM: suspend entry \(deep\)')" = 1 ]
check "the RTC alarm woke it: its wakeup source counted an event ($rtc0 -> $(rtc_wakeups))" [ "$(rtc_wakeups)" -gt "$rtc0" ]
say "outcome: $(cat "$RUN/outcome" 2>/dev/null)"
check "the record says outcome=suspended forced=1 why=test" \
    grep -q 'outcome=suspended .*forced=1 why=test by=0' "$RUN/outcome"
check "the record names the blocker's shell in overrode=" history_lists overrode "$(pid_of blocker):sh"
check "lsusd logged that it went over the block" log_has lsusd 'forced request by UID 0 \(test\): going over the block of PID'
check "the watcher was told and saw the resume" wait_log 5 watcher 'resumed \(cycle 1\)'
check "the blocker is still there" alive blocker
check "and still holds its shared lock on disabled" [ "$(lock_count "$RUN/disabled" READ)" -ge 1 ]
check "lsusctl history shows the forced suspend" \
    sh -c "lsusctl --run-dir '$RUN' history | grep -q 'forced by UID 0 (test); over the block of PID $(pid_of blocker) (sh)'"

# Plain requests are blocked again.
rtc_arm 30
mark "request r2"
spawn r2 request-suspend --run-dir "$RUN" --timeout 40
request_ended r2
check "a plain request after it is still refused (got $RC)" [ "$RC" = 1 ]
check "still exactly one suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
touch "$L/blocker.release"

latency_request_to_state "request f1"
latency_resume_to_notified 'lsus-mark: watcher: resumed \(cycle 1\)'
finish
