# Scenario 1: a request with nothing blocking; an alarm 6 s ahead wakes the guest.
# lsusd, lsused and wakealarmd run; watch_test watches; alarm_test asks
# wakealarmd for a time 6 s ahead, so at "suspend imminent" wakealarmd
# programs the RTC (time - 2 s) and is ready. request-suspend must exit 0
# and report the suspend, the kernel must count exactly one suspend, the
# watcher must print "suspend" then "resumed", and the alarm client must get
# Now. Nothing else can wake this guest (no input, no network): if the RTC
# were not programmed the guest would sleep until the host's deadline.
. /scenarios/lib.sh
need_bins lsusd lsused wakealarmd request-suspend watch_test alarm_test lsusctl

start_lsusd
start_lsused
start_wakealarmd
w0=$(watchers)
spawn watch watch_test
check "watch_test registered as a watcher" wait_watchers $((w0 + 1))

rtc0=$(rtc_wakeups)
spawn alarm alarm_test 6
check "alarm_test set its alarm" wait_alarm_set alarm

request r1
check "request-suspend exits 0 (got $RC)" [ "$RC" = 0 ]
check "request-suspend reports the suspend: $(cat "$L/r1.log")" log_has r1 '^suspended and resumed after [0-9]+\.[0-9] s$'
check "exactly one suspend counted (suspend_stats/success +$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
check "the RTC alarm fired: its wakeup source counted an event ($rtc0 -> $(rtc_wakeups))" [ "$(rtc_wakeups)" -gt "$rtc0" ]
check "lsusd logged the suspend" log_has lsusd 'INFO suspend \(request\): suspended and resumed after [0-9]+\.[0-9] s'
check "wakealarmd logged programming the RTC" \
    log_has wakealarmd 'INFO suspend imminent: RTC /sys/class/rtc/rtc0 programmed to wake at [0-9]+ for the alarm at [0-9]+ '
check "watch_test printed a resume line" wait_log 5 watch '^resumed$'
s=$(line_of watch '^suspend imminent$')
r=$(line_of watch '^resumed$')
check "watch_test printed \"suspend imminent\" (line ${s:-none}) before \"resumed\" (line ${r:-none})" before "$s" "$r"
check "alarm_test got Now" wait_log 15 alarm '^Now'
# Issue #16 on a real kernel: the wake reason is the RTC's wakeup source,
# and lsusd's count of suspends agrees with the kernel's.
src=$(rtc_source)
say "history: $(cat "$RUN/log/history" 2>/dev/null)"
check "the history names the RTC's wakeup source (${src:-none}) as the wake reason" history_lists woke "${src:-none}"
check "lsusctl stats counts $(suspends_since_start) suspend(s), as suspend_stats/success moved" stats_agree "$(suspends_since_start)"

latency_request_to_state "request r1"
latency_resume_to_notified 'lsus-out watch: resumed$'
finish
