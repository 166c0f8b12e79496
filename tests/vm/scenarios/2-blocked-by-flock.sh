# Scenario 2: a shell script holding flock -s on disabled blocks suspend.
# blocker.sh takes the shared lock exactly as PROTOCOL.md §1 shows for shell
# (util-linux flock; busybox has none). A request made meanwhile must not
# suspend: request-suspend waits until the blocker goes away and then exits 1
# ("blocked"), with suspend_stats unchanged. After the release the next
# request suspends (the RTC is armed by this script: wakealarmd is not part
# of this scenario) and exits 0.
. /scenarios/lib.sh
need_bins lsusd request-suspend

start_lsusd
w0=$(watchers)
spawn watcher sh /scenarios/watcher.sh "$RUN"
check "the shell watcher registered" wait_watchers $((w0 + 1))

spawn blocker sh /scenarios/blocker.sh blocker
check "blocker holds its shared lock" wait_log 5 blocker '^blocking'
check "/proc/locks shows a shared lock on disabled" [ "$(lock_count "$RUN/disabled" READ)" -ge 1 ]

# safety net only: if lsusd wrongly suspended now, the RTC wakes the guest in
# 30 s and the checks below fail, instead of the guest sleeping forever
rtc_arm 30
mark "request r1"
spawn r1 request-suspend --run-dir "$RUN" --timeout 40
check "lsusd logged that suspend is blocked" wait_log 10 lsusd 'blocked'
sleep 1
check "request-suspend still waits while the blocker holds its lock" alive r1
check "no suspend while blocked" [ "$(suspends_since_start)" = 0 ]
check "the watcher was not notified while blocked" [ -z "$(line_of watcher 'suspend imminent')" ]

touch "$L/blocker.release"
check "blocker released its lock" wait_log 5 blocker '^released'
wait_exit r1
say "request-suspend (r1) exited $RC: $(tr '\n' ' ' <"$L/r1.log")"
check "request-suspend exits 1 after the blocker went away (got $RC)" [ "$RC" = 1 ]
check "request-suspend reports the block" log_has r1 '[Bb]lock'
check "no suspend counted ($(suspends_since_start))" [ "$(suspends_since_start)" = 0 ]

rtc_arm 5
request r2
check "the next request exits 0 (got $RC)" [ "$RC" = 0 ]
check "exactly one suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
check "the watcher saw the resume" wait_log 5 watcher 'resumed \(cycle 1\)'

latency_request_to_state "request r2"
latency_resume_to_notified 'lsus-mark: watcher: resumed \(cycle 1\)'
finish
