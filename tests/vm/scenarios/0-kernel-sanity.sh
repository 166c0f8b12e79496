# Scenario 0: kernel sanity, no project binaries.
# Proves that this guest really suspends to RAM (S3) and that the emulated
# RTC wakes it: echo +2 > rtc0/wakealarm; echo mem > power/state. Also checks
# the kernel facts the daemons rely on: a stale wakeup_count is rejected.
. /scenarios/lib.sh

check "/sys/power/state offers mem" grep -qw mem /sys/power/state
check "rtc0 exists" test -e /sys/class/rtc/rtc0/wakealarm
say "mem_sleep: $(cat /sys/power/mem_sleep)"
say "rtc0 wakeup: $(cat /sys/class/rtc/rtc0/device/power/wakeup 2>/dev/null)"

c0=$(suspends)
r0=$(rtc_wakeups)
echo 0 >/sys/class/rtc/rtc0/wakealarm
echo +2 >/sys/class/rtc/rtc0/wakealarm
mark "request"
if echo mem >/sys/power/state; then
    ok "writing mem to /sys/power/state returned success"
else
    bad "writing mem to /sys/power/state returned success"
fi
mark "resumed"
check "the RTC alarm fired: its wakeup source counted an event ($r0 -> $(rtc_wakeups))" [ "$(rtc_wakeups)" -gt "$r0" ]
c1=$(suspends)
check "suspend_stats/success went up by 1 ($c0 -> $c1)" [ "$c1" -eq $((c0 + 1)) ]
latency_request_to_state "request"
# "watchers notified" here is this script running again after the write
_t=$(kts "PM: suspend exit")
_u=$(kts "lsus-mark: resumed" "${_t:-0}")
[ -n "$_t" ] && [ -n "$_u" ] && RESUME_MS=$(ms_between "$_t" "$_u")
check "kernel logged PM: suspend exit" [ -n "$_t" ]

# A stale wakeup_count is rejected: read it, cause a wakeup event by letting
# the RTC alarm fire (the cmos RTC is a wakeup source), write it back.
n=$(cat /sys/power/wakeup_count)
echo +1 >/sys/class/rtc/rtc0/wakealarm
wait_for 5 sh -c "[ \$(cat /sys/power/wakeup_count) != $n ]"
if echo "$n" >/sys/power/wakeup_count 2>/dev/null; then
    bad "a stale wakeup_count ($n, now $(cat /sys/power/wakeup_count)) is rejected"
else
    ok "a stale wakeup_count ($n, now $(cat /sys/power/wakeup_count)) is rejected"
fi
finish
