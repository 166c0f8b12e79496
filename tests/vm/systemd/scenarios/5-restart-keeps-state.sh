# Scenario 5 (systemd): systemctl restart lsusd keeps a member's block in force, lsused and wakealarmd follow, an alarm set before still wakes a real suspend.
# alice (in suspend) holds a block (`flock -s RUN/disabled sh -c …`) and
# an alarm client (alarm_test, libsus's WakeAlarm) has its alarm set
# through wakealarmd; then `systemctl restart lsusd`. lsused and
# wakealarmd (Requires=lsusd.service, After=lsusd.service) are stopped
# before lsusd and started after it is ready again, each with a new PID;
# the block is still in force (alice's request exits 1 naming her flock);
# the alarm client, whose connection ended with the old wakealarmd,
# connects again and sets the same time (doc/protocol.md §4); after the
# release, a request suspends for real and that alarm wakes the machine.
#
# The alarm must still be ahead once the restart and the request are
# done: at least 60 s (the CI machine is ~5x slower than a developer's),
# more when this boot's units took long to start (3x the time lsusd and
# the slower of lsused and wakealarmd took to become ready at boot, plus
# 30 s).
. /scenarios/systemd.sh

wait_units
member alice
started() { echo $((($(prop "$1" ActiveEnterTimestampMonotonic) - $(prop "$1" ExecMainStartTimestampMonotonic)) / 1000000)); }
s1=$(started lsusd)
s2=$(started lsused)
s3=$(started wakealarmd)
[ "$s3" -gt "$s2" ] && s2=$s3
lead=$((30 + 3 * (s1 + s2)))
[ "$lead" -ge 60 ] || lead=60
say "the units took ${s1} s (lsusd) and ${s2} s (lsused/wakealarmd) to start at boot: the alarm is set ${lead} s ahead"

# the block
spawn ablock as alice flock -s "$RUN/disabled" sh -c "echo blocking; while [ ! -e $L/ablock.release ]; do sleep 0.05; done"
check "alice holds a shared lock with flock -s $RUN/disabled sh -c ..." wait_log 30 ablock '^blocking'
fpid=$(pgrep -u alice -x flock | head -n 1)
check "alice's flock(1) found: PID ${fpid:-none}" [ -n "$fpid" ]
# the alarm
spawn alarm alarm_test --hold 0 --reconnect $((lead * 2)) "$lead"
check "alarm_test set its alarm through wakealarmd" wait_for 30 alarm_set alarm
when=$(sed -n 's/^Alarm set for \([0-9]*\).*/\1/p' "$L/alarm.log")
pending() { grep -Eq "(^| )pending=1( |\$)" "$RUN/wakealarmd.status" && grep -Eq "(^| )next=$when( |\$)" "$RUN/wakealarmd.status"; }
check "wakealarmd has it pending (next=$when): $(cat "$RUN/wakealarmd.status" 2>&1)" wait_for 30 pending

old_d=$(main_pid lsusd)
old_e=$(main_pid lsused)
old_a=$(main_pid wakealarmd)
mark "systemctl restart lsusd"
systemctl restart lsusd.service
rc=$?
mark "systemctl restart lsusd returned"
check "systemctl restart lsusd exits 0 (got $rc)" [ "$rc" = 0 ]
wait_units 120
check "lsusd has a new MainPID ($old_d -> $(main_pid lsusd)), NRestarts=$(prop lsusd NRestarts)" \
    sh -c "[ '$(main_pid lsusd)' != '$old_d' ] && [ '$(prop lsusd NRestarts)' = 0 ]"
check "lsused was restarted too ($old_e -> $(main_pid lsused))" [ "$(main_pid lsused)" != "$old_e" ]
check "wakealarmd was restarted too ($old_a -> $(main_pid wakealarmd))" [ "$(main_pid wakealarmd)" != "$old_a" ]
# the order the units declare (After=lsusd.service): stopped before lsusd
# stopped, started after lsusd was ready again
d_stop=$(prop lsusd InactiveEnterTimestampMonotonic)
d_ready=$(prop lsusd ActiveEnterTimestampMonotonic)
for u in lsused wakealarmd; do
    u_stop=$(prop $u InactiveEnterTimestampMonotonic)
    u_start=$(prop $u ExecMainStartTimestampMonotonic)
    say "$u: stopped at $u_stop µs, started at $u_start µs; lsusd stopped at $d_stop µs, ready at $d_ready µs"
    check "$u stopped before lsusd did, was started after lsusd was ready" \
        sh -c "[ '$u_stop' -gt 0 ] && [ '$u_stop' -le '$d_stop' ] && [ '$u_start' -ge '$d_ready' ]"
done
say "restart: from the old units' stop ($(prop lsused InactiveEnterTimestampMonotonic) µs) to the new ones ready ($(prop wakealarmd ActiveEnterTimestampMonotonic), $(prop lsused ActiveEnterTimestampMonotonic) µs)"

# the block is still in force
mark "request r1"
spawn r1 as alice request-suspend --timeout 60
request_ended r1
check "alice's request after the restart exits 1 (got $RC)" [ "$RC" = 1 ]
check "it names her flock: blocked by PID $fpid (flock -s ...)" \
    log_has r1 "^blocked by PID $fpid \\(flock -s $RUN/disabled sh -c echo blocking; "
check "no suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 0 ]
touch "$L/ablock.release"
wait_exit ablock
check "the request made while blocked is dropped" wait_for 30 absent "$RUN/request"

# the alarm set before the restart: set again with the new wakealarmd
check "the alarm client connected to the new wakealarmd and set the same time (next=$when): $(cat "$RUN/wakealarmd.status" 2>&1)" \
    wait_for $((lead * 2)) pending
rtc0=$(rtc_wakeups)
mark "request r2"
spawn r2 as alice request-suspend --timeout $((lead * 2))
request_ended r2
check "alice's request exits 0 (got $RC)" [ "$RC" = 0 ]
check "one suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
check "the RTC woke the guest ($rtc0 -> $(rtc_wakeups))" [ "$(rtc_wakeups)" -gt "$rtc0" ]
check "the alarm client got Now" wait_log 30 alarm '^Now'
check "it says it connected again to the restarted wakealarmd" log_has alarm '^\(wakealarmd restarted: connected again 1 times'
check "wakealarmd's journal has it programming the RTC" journal_has wakealarmd info '[Rr][Tt][Cc]'

latency_request_to_state "request r2"
sd_finish
