# Scenario 8 (systemd): a logind sleep inhibitor (systemd-inhibit --mode=block) refuses request-suspend, named; once it ends, a real suspend.
# `systemd-inhibit --what=sleep --mode=block` takes a block inhibitor in
# the real systemd-logind; lsus-logind follows it by signal and holds its
# shared lock on `disabled`: request-suspend exits 1 with `blocked by
# logind inhibitor "WHY" (WHO, PID N, user U)`, suspend_stats/success does
# not move. (The issue's `sleep 30` is a command that ends when the
# scenario says so, so that nothing waits out 30 s.) When the inhibitor
# ends lsus-logind lets go, and a request suspends for real.
. /scenarios/systemd.sh

wait_units
wait_logind
spawn inh systemd-inhibit --what=sleep --mode=block --who=lsus-video --why="Playing a video" \
    sh -c "echo inhibiting; while [ ! -e $L/inh.release ]; do sleep 0.05; done"
check "systemd-inhibit runs its command" wait_log 30 inh '^inhibiting'
ipid=$(pid_of inh)
inhibitors list1
check "logind lists the block inhibitor" log_has list1 'lsus-video'
check "lsus-logind follows it and holds its lock: $(head -n 1 "$RUN/lsus-logind.status" 2>&1)" \
    wait_for 30 logind_says ' blocking=1 holding=yes '
s0=$(suspends)
mark "request i1"
spawn i1 request-suspend --timeout 60
request_ended i1
check "request-suspend exits 1 (got $RC)" [ "$RC" = 1 ]
check "it names the inhibitor: $(cat "$L/i1.log")" \
    log_has i1 "^blocked by logind inhibitor \"Playing a video\" \\(lsus-video, PID $ipid, user root\\)\$"
check "suspend_stats/success unchanged ($s0 -> $(suspends))" [ "$(suspends)" = "$s0" ]
ctl st status
check "lsusctl status names it in the logind section" log_has st "^  lsus-video +0 +root +$ipid +sleep +block +Playing a video"

touch "$L/inh.release"
wait_exit inh
check "systemd-inhibit exits 0 (got $RC)" [ "$RC" = 0 ]
check "lsus-logind let go: $(head -n 1 "$RUN/lsus-logind.status" 2>&1)" wait_for 30 logind_says ' blocking=0 holding=no '
check "the request made while blocked is dropped" wait_for 30 absent "$RUN/request"

start_watcher "rtc-wake 6"
rtc0=$(rtc_wakeups)
mark "request i2"
spawn i2 request-suspend --timeout 120
request_ended i2
check "the request after the inhibitor ended exits 0 (got $RC)" [ "$RC" = 0 ]
check "one suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
check "the RTC woke the guest ($rtc0 -> $(rtc_wakeups))" [ "$(rtc_wakeups)" -gt "$rtc0" ]
check "the watcher saw the resume" wait_log 30 watcher 'resumed \(cycle 1\)'
stop watcher

latency_request_to_state "request i2"
latency_resume_to_notified 'lsus-mark: watcher: resumed'
sd_finish
