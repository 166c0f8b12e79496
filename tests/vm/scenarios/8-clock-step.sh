# Scenario 8: the wall clock is set while alarms are pending (issue #5: "a
# `date -s` or NTP step must not delay or skip an alarm"), then a real
# suspend with the system clock no longer equal to the RTC's.
#   1. An alarm 60 s ahead; the clock is stepped 57 s forward: Now must come
#      within a few seconds, not after 60 s of real time.
#   2. An alarm 6 s ahead; the clock is stepped 30 s back: Now must not come
#      after 6 s of real time (the alarm is 36 s away by the clock now). A
#      step 30 s forward again makes it due: Now at once.
#   3. The system clock is now 57 s ahead of the RTC (busybox date -s does
#      not write the RTC). An alarm 6 s ahead and a request: wakealarmd must
#      program the RTC in the RTC's own time (since_epoch minus system time),
#      or the guest would sleep a minute too long and miss its deadline. One
#      real suspend, woken by the RTC, and Now.
. /scenarios/lib.sh
need_bins lsusd wakealarmd request-suspend alarm_test

not() { ! "$@"; }
within() { [ "$3" -ge "$1" ] && [ "$3" -le "$2" ]; }
# step SECONDS: moves the wall clock (settimeofday), leaving the RTC alone
step() {
    date -s "@$(($(date +%s) + $1))" >/dev/null
    mark "clock stepped by $1 s"
}

start_lsusd
start_wakealarmd
start_watcher

# ---- 1. forward ---------------------------------------------------------------------
spawn a1 alarm_test --hold 0 60
check "a1 set its alarm 60 s ahead" wait_alarm_set a1
step 57
check "a1 got Now within 8 s of a 57 s forward step" wait_log 8 a1 '^Now'
check "wakealarmd noticed that the clock was set" log_has wakealarmd 'clock was set'

# ---- 2. back, then forward again ----------------------------------------------------
spawn a2 alarm_test --hold 0 6
check "a2 set its alarm 6 s ahead" wait_alarm_set a2
step -30
# A deliberate wait for nothing to happen: a timer that ignored the step
# would fire 6 s after the alarm was set.
sleep 8
check "a2 got no Now 8 s later, its time being 28 s away by the clock" not log_has a2 '^Now'
step 30
check "a2 got Now within 3 s once its time had passed" wait_log 3 a2 '^Now'

# ---- 3. a real suspend with the system clock 57 s ahead of the RTC ------------------
since=$(cat /sys/class/rtc/rtc0/since_epoch)
now=$(date +%s)
say "RTC since_epoch $since, system time $now: offset $((since - now)) s"
check "the system clock is about 57 s ahead of the RTC ($((now - since)) s)" \
    within 55 59 "$((now - since))"
spawn a3 alarm_test --hold 0 6
check "a3 set its alarm 6 s ahead" wait_alarm_set a3
request r1
check "request-suspend exits 0 (got $RC)" [ "$RC" = 0 ]
check "exactly one suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
# The offset wakealarmd used, against the one measured above: each `date -s`
# step loses the time the shell took between reading and setting the clock
# (up to a second on a loaded TCG guest) and both readings are whole
# seconds, so they may differ by a second or two.
used=$(sed -n 's/.*(RTC offset -\([0-9]*\) s).*/\1/p' "$L/wakealarmd.log" | tail -n 1)
check "wakealarmd programmed the RTC with the offset (-${used:-none} s; measured -$((now - since)) s)" \
    within "$((now - since - 2))" "$((now - since + 2))" "${used:--1000}"
check "a3 got Now" wait_log 15 a3 '^Now'
check "the watcher saw the resume" wait_log 5 watcher 'resumed'

latency_request_to_state "request r1"
latency_resume_to_notified 'lsus-mark: watcher: resumed \(cycle [0-9]+\)'
finish
