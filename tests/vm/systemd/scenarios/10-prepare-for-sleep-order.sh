# Scenario 10 (systemd): systemctl suspend: PrepareForSleep(true) before "PM: suspend entry", (false) after "PM: suspend exit"; a delay inhibitor is released before the entry.
# A D-Bus monitor (dbus-monitor --system, each line copied to the kernel
# log) watches logind's PrepareForSleep. A test program takes a delay
# inhibitor (systemd-inhibit --what=sleep --mode=delay running a shell
# that watches PrepareForSleep itself): on PrepareForSleep(true) it works
# for 1 s, then ends, which releases the inhibitor. `systemctl suspend`
# (logind's own sequence, then lsusd's attempt through the drop-in, the
# RTC armed by the shell watcher once the attempt is imminent): on the
# kernel's clock PrepareForSleep(true) < the program's release < "PM:
# suspend entry" < "PM: suspend exit" < PrepareForSleep(false). (Lines
# are stamped as the copy reaches the kernel log, a little after they
# were printed.)
. /scenarios/systemd.sh

wait_units
wait_logind
sleep_monitor mon

# the delay inhibitor's program: its own dbus-monitor, subscribed before
# it says "waiting"
cat >"$L/delay.sh" <<'EOS'
m=$1
stdbuf -oL dbus-monitor --system \
    "type='signal',interface='org.freedesktop.login1.Manager',member='PrepareForSleep'" \
    "type='signal',path='/lsus/ready/delay'" >"$m" 2>&1 &
mp=$!
while ! grep -q 'path=/lsus/ready/delay;' "$m"; do
    dbus-send --system --type=signal /lsus/ready/delay lsus.Test.Ready 2>/dev/null
    sleep 0.1
done
echo "waiting for PrepareForSleep(true)"
while ! grep -q 'boolean true' "$m"; do sleep 0.02; done
echo "PrepareForSleep(true) seen: working for 1 s before letting go"
sleep 1
echo "releasing the delay inhibitor"
kill "$mp"
EOS
spawn dly systemd-inhibit --what=sleep --mode=delay --who=lsus-delay --why="saving state" sh "$L/delay.sh" "$L/delay.mon"
check "the delay program is subscribed" wait_log 60 dly '^waiting for PrepareForSleep'
inhibitors list1
check "logind lists its delay inhibitor" sh -c "grep lsus-delay '$L/list1.log' | grep -q delay"

start_watcher "rtc-wake 6"
s0=$(suspends)
rtc0=$(rtc_wakeups)
suspend_unit_mark
mark "systemctl suspend"
systemctl suspend >"$L/sc.log" 2>&1
rc=$?
say "systemctl suspend exited $rc: $(cat "$L/sc.log")"
check "systemctl suspend exits 0 (got $rc)" [ "$rc" = 0 ]
wait_suspend_unit 120
check "systemd-suspend.service ended successfully" suspend_unit_ok
check "one suspend counted ($s0 -> $(suspends))" [ "$(suspends)" = $((s0 + 1)) ]
check "the RTC woke the guest ($rtc0 -> $(rtc_wakeups))" [ "$(rtc_wakeups)" -gt "$rtc0" ]
check "the delay program ended" wait_for 60 not alive dly
wait_exit dly
check "the delay program (systemd-inhibit) exits 0 (got $RC)" [ "$RC" = 0 ]
check "the monitor printed PrepareForSleep(false)" wait_log 60 mon 'boolean false'
check "the watcher saw the resume" wait_log 30 watcher 'resumed \(cycle 1\)'
stop watcher mon

t_true=$(kts 'lsus-out mon: +boolean true')
t_rel=$(kts 'lsus-out dly: releasing the delay inhibitor')
t_entry=$(kts 'PM: suspend entry \(deep\)')
t_exit=$(kts 'PM: suspend exit')
t_false=$(kts 'lsus-out mon: +boolean false')
say "kernel clock: PrepareForSleep(true) $t_true, release $t_rel, entry $t_entry, exit $t_exit, PrepareForSleep(false) $t_false"
check "PrepareForSleep(true) ($t_true) before the delay program's release ($t_rel)" after_ts "$t_true" "$t_rel"
check "the release ($t_rel) before PM: suspend entry ($t_entry)" after_ts "$t_rel" "$t_entry"
check "PM: suspend entry ($t_entry) before PM: suspend exit ($t_exit)" after_ts "$t_entry" "$t_exit"
check "PM: suspend exit ($t_exit) before PrepareForSleep(false) ($t_false)" after_ts "$t_exit" "$t_false"
[ -z "$t_true" ] || [ -z "$t_entry" ] || say "PrepareForSleep(true) -> PM: suspend entry: $(ms_between "$t_true" "$t_entry") ms"
latency_request_to_state "systemctl suspend"
latency_resume_to_notified 'lsus-out mon: +boolean false'
sd_finish
