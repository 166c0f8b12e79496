# Scenario 5: abort by read of disabled, on the guest's real tmpfs /run.
# /run is a tmpfs with default options (relatime), where the original lsusd's
# atime comparison is unreliable; the port detects the read with inotify
# IN_ACCESS. A watcher written in shell (watcher.sh, doc/protocol.md §1.4) reads
# one byte of disabled while it is notified: that attempt must be aborted
# (request-suspend exits 1, no suspend counted), the watcher must still get
# "resumed" (rename of watching-next), and the next request, with a watcher
# that reads nothing, must suspend.
. /scenarios/lib.sh
need_bins lsusd request-suspend

say "/run: $(grep ' /run ' /proc/mounts)"
check "/run is a relatime tmpfs" sh -c "grep ' /run ' /proc/mounts | grep -q 'tmpfs.*relatime'"
start_lsusd
start_watcher read-disabled

rtc_arm 30 # safety net only (see scenario 2)
request r1
check "request-suspend exits 1 (got $RC)" [ "$RC" = 1 ]
check "request-suspend reports the abort" log_has r1 '[Aa]bort'
check "lsusd logged the abort" log_has lsusd 'abort'
check "no suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 0 ]
check "the watcher read disabled while notified" log_has watcher 'read one byte of disabled \(cycle 1\)'
check "the watcher was told the attempt ended" wait_log 5 watcher 'resumed \(cycle 1\)'

echo none >"$L/watcher.action"
first_suspend r2 5 2

latency_request_to_state "request r2"
latency_resume_to_notified 'lsus-mark: watcher: resumed \(cycle 2\)'
finish
