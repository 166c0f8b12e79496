# Scenario 1 (systemd): the units start at boot as installed and enabled; a real suspend; history and status written (#19).
# lsusd, lsused and wakealarmd, installed by systemd/install.sh
# --with-logind and enabled with systemctl enable, reach active (running)
# through READY=1, lsused and wakealarmd after lsusd was ready
# (After=lsusd.service), none restarted; lsus-logind (enabled too) is
# active (running), connected to the real systemd-logind, without
# capabilities, and lsusctl status shows its section (issue #14);
# sysusers.d and tmpfiles.d made the group and /run/suspend 2770
# root:suspend; systemd-analyze security inside the guest gives the
# exposure the host computed from the same unit files. Then a real suspend
# woken by a wake alarm set through wakealarmd; `lsusctl history` and
# `lsusctl status` list the attempt and journalctl -p warning is empty for
# the three units (issue #19).
. /scenarios/systemd.sh

wait_units
wait_logind
for u in $UNITS; do
    check "$u.service: Type=notify" [ "$(prop $u Type)" = notify ]
    check "$u.service: not restarted (NRestarts=$(prop $u NRestarts))" [ "$(prop $u NRestarts)" = 0 ]
    check "$u.service: MainPID $(main_pid $u) is $u" [ "$(cat /proc/$(main_pid $u)/comm 2>/dev/null)" = "$u" ]
done
# READY=1 order: lsusd became active before lsused and wakealarmd were started
ready=$(prop lsusd ActiveEnterTimestampMonotonic)
for u in lsused wakealarmd; do
    st=$(prop $u ExecMainStartTimestampMonotonic)
    check "$u was started ($st µs) after lsusd was ready ($ready µs)" [ "$st" -ge "$ready" ]
done
check "lsused runs as lsused:suspend" \
    [ "$(ps -o user=,group= -p "$(main_pid lsused)" | xargs)" = "lsused suspend" ]
check "lsusd, wakealarmd and lsus-logind run as root with no capability" sh -c "
    grep -q '^CapEff:[[:space:]]*0*\$' /proc/$(main_pid lsusd)/status &&
    grep -q '^CapEff:[[:space:]]*0*\$' /proc/$(main_pid wakealarmd)/status &&
    grep -q '^CapEff:[[:space:]]*0*\$' /proc/$(main_pid lsus-logind)/status"
check "the group suspend exists and lsused is in it" sh -c 'id -nG lsused | grep -qw suspend'
check "$RUN is 2770 root:suspend ($(stat -c '%a %U:%G' $RUN))" [ "$(stat -c '%a %U:%G' $RUN)" = "2770 root:suspend" ]
check "$RUN/.staging is 2770 root:suspend ($(stat -c '%a %U:%G' $RUN/.staging 2>&1))" \
    [ "$(stat -c '%a %U:%G' $RUN/.staging)" = "2770 root:suspend" ]
check "$RUN/records is 2770 root:suspend ($(stat -c '%a %U:%G' $RUN/records 2>&1))" \
    [ "$(stat -c '%a %U:%G' $RUN/records)" = "2770 root:suspend" ]
for f in lsusd.pid lsused.pid wakealarmd.pid lsus-logind.pid lsused.status wakealarmd.status lsus-logind.status disabled watching; do
    check "$RUN/$f exists" [ -f "$RUN/$f" ]
done
# The records are published in RUN/records; the old paths are links to them
# (doc/protocol.md §1.16), made by each daemon under its own unit.
for f in outcome lsused.status wakealarmd.status lsus-logind.status; do
    check "$RUN/$f is a link to records/$f ($(readlink $RUN/$f 2>&1))" [ "$(readlink $RUN/$f)" = "records/$f" ]
done
for f in lsused.status wakealarmd.status lsus-logind.status; do
    check "$RUN/records/$f is a regular file" sh -c "[ -f $RUN/records/$f ] && [ ! -L $RUN/records/$f ]"
done
for s in registration wakealarm; do
    check "$RUN/$s is a socket, 660 of group suspend ($(stat -c '%a %G' $RUN/$s 2>&1))" \
        sh -c "[ -S $RUN/$s ] && [ \"\$(stat -c '%a %G' $RUN/$s)\" = '660 suspend' ]"
done

# systemd-analyze security, here and on the host (tests/vm/run wrote the
# host's figures into /scenarios/exposure)
while read -r unit want; do
    got=$(systemd-analyze security --no-pager "$unit" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    check "systemd-analyze security $unit: $got here, $want on the host" [ "$got" = "$want" ]
done </scenarios/exposure

# ---- a real suspend, woken by a wake alarm through wakealarmd ---------------
w0=$(watchers)
spawn watch watch_test
check "watch_test registered as a watcher" wait_watchers $((w0 + 1))
rtc0=$(rtc_wakeups)
alarm_suspend r1
check "the RTC alarm woke the guest ($rtc0 -> $(rtc_wakeups))" [ "$(rtc_wakeups)" -gt "$rtc0" ]
check "watch_test printed a resume line" wait_log 5 watch 'resumed'
check "lsusd logged the suspend (journal)" journal_has lsusd info suspended
check "wakealarmd logged programming the RTC (journal)" journal_has wakealarmd info '[Rr][Tt][Cc]'

# ---- issue #19: history and status under the units --------------------------
ctl h history
check "lsusctl history exits 0 (got $CTL_RC)" [ "$CTL_RC" = 0 ]
# (the record's details, #16, may follow in parentheses: "(woken by 00:05)")
check "lsusctl history lists the suspend" log_has h '  suspended for [0-9]+\.[0-9] s( \(.*\))?$'
check "$RUN/log is 2750 root:suspend ($(stat -c '%a %U:%G' $RUN/log 2>&1))" \
    [ "$(stat -c '%a %U:%G' $RUN/log)" = "2750 root:suspend" ]
ctl st status
check "lsusctl status exits 0 (got $CTL_RC)" [ "$CTL_RC" = 0 ]
check "lsusctl status lists the attempt among the last outcomes" \
    sh -c "grep -A3 '^last outcomes:\$' $L/st.log | grep -q 'suspended for'"
check "lsusctl status names lsusd's PID" log_has st "^lsusd: running, PID $(main_pid lsusd), "
# issue #14: lsus-logind's section, with the delay inhibitor it keeps in
# the real logind (so that it can let go of disabled before logind
# suspends); the logind scenarios check the rest of lsus-logind (kept
# out of here: this scenario is the longest of the flavour)
check "lsusctl status has the logind section, nothing blocking" \
    log_has st "^logind: lsus-logind running, PID $(main_pid lsus-logind): logind connected, 0 inhibitors block sleep\$"
check "lsusctl status lists lsus-logind's delay inhibitor" \
    log_has st "^  lsus-logind +0 +root +$(main_pid lsus-logind) +sleep +delay +lets go of its lsusd block"
no_warnings
for u in $UNITS; do
    check "$u.service still active (running), not restarted: $(unit_state $u)" \
        sh -c "[ '$(prop $u SubState)' = running ] && [ '$(prop $u NRestarts)' = 0 ]"
done

latency_request_to_state "request r1"
latency_resume_to_notified 'lsus-out watch: .*resumed'
sd_finish
