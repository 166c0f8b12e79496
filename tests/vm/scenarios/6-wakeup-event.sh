# Scenario 6: a wakeup event between the count read and the state write.
# How the event is caused: lsusd reads SYS/power/wakeup_count before it
# notifies watchers (doc/protocol.md §2 step 4) and writes it back just before
# the state write (step 7). A watcher (watcher.sh, action rtc-event) programs
# the RTC alarm 1 s ahead when it is notified, and stays "not ready" until the
# kernel's wakeup_count has moved on. The cmos RTC is a wakeup source (its
# device has power/wakeup enabled), so the alarm interrupt is a genuine
# hardware wakeup event that the kernel counts, exactly like a key press
# would be on a laptop; writing the count back is then rejected with EINVAL.
# (Writing wakeup_count ourselves would not do: that does not change the
# count.) Scenario 0 shows that an RTC alarm while awake moves the count on.
# Expected: lsusd logs the rejected count, no suspend in that cycle,
# request-suspend exits 1; the next cycle (the watcher does nothing) suspends.
. /scenarios/lib.sh
need_bins lsusd request-suspend

say "rtc0 wakeup: $(cat /sys/class/rtc/rtc0/device/power/wakeup 2>/dev/null)"
if [ "$(cat /sys/class/rtc/rtc0/device/power/wakeup 2>/dev/null)" != enabled ]; then
    echo enabled >/sys/class/rtc/rtc0/device/power/wakeup
fi
start_lsusd
start_watcher rtc-event

request r1
check "request-suspend exits 1 (got $RC)" [ "$RC" = 1 ]
check "request-suspend reports the wakeup event" log_has r1 '[Ww]akeup'
check "the watcher caused a wakeup event (the kernel's count moved)" log_has watcher '\] rtc wakeup event: wakeup_count [0-9]+ -> [0-9]+ \(cycle 1\)'
check "lsusd logged the rejected wakeup count" log_has lsusd 'wakeup'
check "no suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 0 ]
check "no 'PM: suspend entry' in the kernel log" [ -z "$(kts 'PM: suspend entry')" ]
check "the watcher was told the attempt ended" wait_log 5 watcher 'resumed \(cycle 1\)'
# Issue #16 on a real kernel: the refused attempt's record names the
# wakeup source that aborted it, the RTC's.
src=$(rtc_source)
say "history: $(cat "$RUN/log/history" 2>/dev/null)"
check "the wakeup-event record names the RTC's wakeup source (${src:-none}) as the source" history_lists source "${src:-none}" 1
check "the record's outcome is wakeup-event" grep -q 'outcome=wakeup-event' "$RUN/log/history"

echo none >"$L/watcher.action"
first_suspend r2 5 2

latency_request_to_state "request r2"
latency_resume_to_notified 'lsus-mark: watcher: resumed \(cycle 2\)'
finish
