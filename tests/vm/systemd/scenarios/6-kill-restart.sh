# Scenario 6 (systemd): systemctl kill -s KILL lsusd while a watcher holds the cycle at imminent: systemd restarts it, the waiting request exits 2, the next request suspends.
# The shell watcher holds the attempt at "imminent" (never ready) when
# lsusd is killed with SIGKILL through systemd. lsusd.service has
# Restart=on-failure: systemd schedules the restart after RestartSec= and
# starts a new lsusd (NRestarts=1); the request-suspend that waited exits
# 2 with one line saying lsusd stopped while it waited. The new lsusd
# ends the attempt the old one left (doc/protocol.md §2, start-up:
# `watching` emptied through "after resume", a `withdrawn` record), so the
# run directory holds nothing it misreads; the watcher sees the end and
# is registered with the new lsusd; the next request suspends for real.
# lsused and wakealarmd (Requires=lsusd.service) are restarted with it
# (systemd's restart job for lsusd restarts the units that require it;
# with BindsTo=, which they had before, the crash stopped them and whether
# they came back was a race).
. /scenarios/systemd.sh

wait_units
# (a safety net: should lsusd go on without the held watcher after its
# --watcher-timeout, 30 s, the RTC still wakes the machine; the checks fail)
rtc_arm 90
start_watcher hold
old=$(main_pid lsusd)
old_e=$(main_pid lsused)
old_a=$(main_pid wakealarmd)
mark "request k1"
spawn k1 request-suspend --timeout 120
check "the watcher holds the attempt at imminent" wait_log 60 watcher '^\[[0-9.]+\] holding \(cycle 1\)'
check "watching is not empty (an attempt in progress)" [ -s "$RUN/watching" ]
echo "rtc-wake 6" >"$L/watcher.action"
mark "systemctl kill -s KILL lsusd"
systemctl kill -s KILL lsusd.service
check "systemctl kill -s KILL lsusd exits 0 (got $?)" [ $? = 0 ]
new_running() { unit_running lsusd && [ "$(main_pid lsusd)" != "$old" ] && [ "$(main_pid lsusd)" != 0 ]; }
wait_for 120 new_running
check "systemd started a new lsusd: $(unit_state lsusd)" new_running
check "lsusd.service: NRestarts=1 (got $(prop lsusd NRestarts))" [ "$(prop lsusd NRestarts)" = 1 ]
say "lsusd.service: Restart=$(prop lsusd Restart) RestartUSec=$(prop lsusd RestartUSec)"
killed_and_scheduled() {
    journal_has lsusd info 'Main process exited, code=killed, status=9/KILL' &&
        journal_has lsusd info 'Scheduled restart job, restart counter is at 1'
}
check "systemd logged the kill and the scheduled restart" wait_for 30 killed_and_scheduled
jctl -o short-monotonic -u lsusd.service >"$L/kjournal.log"
say "the journal of lsusd.service since the kill:"
sed -n '/status=9\/KILL/,$p' "$L/kjournal.log" | sed 's/^/    | /'
t_exit=$(sed -n 's/^\[ *\([0-9.]*\)\].*Main process exited, code=killed.*/\1/p' "$L/kjournal.log" | head -n 1)
t_sched=$(sed -n 's/^\[ *\([0-9.]*\)\].*Scheduled restart job.*/\1/p' "$L/kjournal.log" | head -n 1)
t_ready=$(prop lsusd ActiveEnterTimestampMonotonic)
say "figures: exited at ${t_exit:-?} s, restart scheduled at ${t_sched:-?} s ($(ms_between "${t_exit:-0}" "${t_sched:-0}") ms later, RestartSec $(prop lsusd RestartUSec)), new lsusd ready at $(awk -v t="$t_ready" 'BEGIN { printf "%.3f", t / 1e6 }') s"

request_ended k1
check "the waiting request-suspend exits 2 (got $RC)" [ "$RC" = 2 ]
check "with one line saying lsusd (PID $old) stopped while it waited: $(cat "$L/k1.log")" \
    sh -c "[ \"\$(grep -c . '$L/k1.log')\" = 1 ] && grep -q '^request-suspend: lsusd (PID $old) on $RUN stopped while the request waited; the request was withdrawn\$' '$L/k1.log'"
check "the watcher saw the attempt end" wait_log 60 watcher 'resumed \(cycle 1\)'
check "no suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 0 ]

# lsused and wakealarmd: restarted with lsusd (Requires=lsusd.service)
wait_units 120
say "lsused: $old_e -> $(main_pid lsused), wakealarmd: $old_a -> $(main_pid wakealarmd)"
check "lsused and wakealarmd run again under systemd with new PIDs" \
    sh -c "[ '$(main_pid lsused)' != '$old_e' ] && [ '$(main_pid wakealarmd)' != '$old_a' ]"

# the run directory as the new lsusd left it
ls -la "$RUN" | sed 's/^/    | /'
say "outcome: $(cat "$RUN/outcome" 2>&1)"
check "lsusd.pid names the new lsusd" [ "$(cat "$RUN/lsusd.pid")" = "$(main_pid lsusd)" ]
check "watching is empty" [ ! -s "$RUN/watching" ]
check "no request is left" absent "$RUN/request"
check "no immediate is left" absent "$RUN/immediate"
check "nothing was moved aside (no *.planted-*)" not sh -c "ls -a '$RUN' | grep -q planted"
check "the new lsusd recorded the old attempt as withdrawn" grep -Eq ' outcome=withdrawn( |$)' "$RUN/outcome"
ctl st status
check "lsusctl status exits 0 and says lsusd runs with the new PID, suspend not blocked" \
    sh -c "[ $CTL_RC = 0 ] && grep -q '^lsusd: running, PID $(main_pid lsusd), ' '$L/st.log' && ! grep -q '^suspend: BLOCKED' '$L/st.log'"

# the next request suspends for real (the watcher arms the RTC at imminent)
rtc0=$(rtc_wakeups)
mark "request k2"
spawn k2 request-suspend --timeout 120
request_ended k2
check "the next request exits 0 (got $RC)" [ "$RC" = 0 ]
check "one suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
check "the RTC woke the guest ($rtc0 -> $(rtc_wakeups))" [ "$(rtc_wakeups)" -gt "$rtc0" ]
check "the watcher saw the resume" wait_log 30 watcher 'resumed \(cycle 2\)'
stop watcher

latency_request_to_state "request k2"
latency_resume_to_notified 'lsus-mark: watcher: resumed \(cycle 2\)'
sd_finish
