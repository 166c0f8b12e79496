# Scenario 2: a shell script holding flock -s on disabled blocks suspend.
# blocker.sh takes the shared lock exactly as doc/protocol.md §1.1 shows for shell
# (util-linux flock; busybox has none). A request made meanwhile must not
# suspend: request-suspend is answered at once (doc/protocol.md §2 step 3),
# exits 1 naming the blocker's shell, with suspend_stats unchanged; lsusd
# drops the request when the blocker goes away. After the release the next
# request suspends (the RTC is armed by this script: wakealarmd is not part
# of this scenario) and exits 0.
. /scenarios/lib.sh
need_bins lsusd request-suspend

blocked_with_watcher
check "the request is still there, for lsusd to drop" [ -e "$RUN/request" ]
check "the watcher was not notified while blocked" [ -z "$(line_of watcher 'suspend imminent')" ]

release_blocker

first_suspend r2 5

latency_request_to_state "request r2"
latency_resume_to_notified 'lsus-mark: watcher: resumed \(cycle 1\)'
finish
