# Scenario 2: a shell script holding flock -s on disabled blocks suspend.
# blocker.sh takes the shared lock exactly as doc/protocol.md §1.1 shows for shell
# (util-linux flock; busybox has none). A request made meanwhile must not
# suspend: request-suspend waits until the blocker goes away and then exits 1
# ("blocked"), with suspend_stats unchanged. After the release the next
# request suspends (the RTC is armed by this script: wakealarmd is not part
# of this scenario) and exits 0.
. /scenarios/lib.sh
need_bins lsusd request-suspend

start_lsusd
start_watcher

start_blocker
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

release_blocker_refuses r1

first_suspend r2 5

latency_request_to_state "request r2"
latency_resume_to_notified 'lsus-mark: watcher: resumed \(cycle 1\)'
finish
