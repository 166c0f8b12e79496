# Scenario 7: `lsusctl status` names the blocker (a shell flock -s on disabled).
# lsusd, lsused and wakealarmd run, with the shell watcher. blocker.sh takes
# its shared lock the way doc/protocol.md §1.1 shows for shell (`exec 9<disabled;
# flock --shared 9`): /proc/locks then names flock(1), which has exited,
# while the lock lives on in the shell's descriptor. `lsusctl status` (text
# and --json) must name the shell: its PID and command line. A request made
# meanwhile is refused (exit 1, nothing counted) once the blocker lets go;
# the next one suspends, woken by the RTC. `lsusctl history` then lists the
# blocked attempt and the suspend, and `lsusctl status` says nothing blocks.
. /scenarios/lib.sh
need_bins lsusd lsused wakealarmd request-suspend lsusctl

# ctl NAME ARGS...: run `lsusctl ARGS...`, output in $L/NAME.log (so that
# log_has NAME works) and on the console; sets CTL_RC
ctl() {
    _c=$1
    shift
    lsusctl --run-dir "$RUN" "$@" >"$L/$_c.log" 2>&1
    CTL_RC=$?
    say "lsusctl $* (exit $CTL_RC):"
    sed 's/^/    | /' "$L/$_c.log"
}
not() { ! "$@"; }
# locker_pid: the PID /proc/locks gives for the shared lock on disabled
locker_pid() {
    awk -v ino="$(stat -c %i "$RUN/disabled")" '
        $2 == "FLOCK" && $4 == "READ" { n = split($6, a, ":"); if (a[n] == ino) { print $5; exit } }' /proc/locks
}

start_lsusd
start_lsused
start_wakealarmd
start_watcher

start_blocker
bpid=$(pid_of blocker)
lpid=$(locker_pid)
say "blocker shell: PID $bpid; /proc/locks names PID ${lpid:-none}"
check "/proc/locks shows the shared lock on disabled (PID ${lpid:-none})" [ -n "$lpid" ]

# ---- status while blocked -------------------------------------------------------
ctl st1 status
check "lsusctl status exits 0 (got $CTL_RC)" [ "$CTL_RC" = 0 ]
check "status names lsusd's PID" log_has st1 "^lsusd: running, PID $(pid_of lsusd), run directory $RUN\$"
check "status says suspend is blocked by 1 process" log_has st1 '^suspend: BLOCKED by 1 process$'
check "status names the blocker: PID $bpid, its command line" \
    log_has st1 "^  PID $bpid +user [^ ]+ +sh /scenarios/blocker.sh blocker\$"
check "status gives the user (uid 0 without /etc/passwd, or root)" log_has st1 "^  PID $bpid +user (0|root) "
check "status says which PID took the lock (/proc/locks: $lpid)" log_has st1 "lock taken by PID $lpid"
check "status names no gone process" not log_has st1 'no such process'
check "status counts 3 watchers (the shell watcher, lsused, wakealarmd)" log_has st1 '^watchers: 3 '
for d in lsused wakealarmd watcher; do
    check "status lists $d among the watchers" log_has st1 "^watchers: .*PID $(pid_of $d) "
done
check "status shows lsused's counts" \
    log_has st1 "^lsused: running, PID $(pid_of lsused): 0 clients, 0 registered descriptors\$"
check "status shows wakealarmd's counts" \
    log_has st1 "^wakealarmd: running, PID $(pid_of wakealarmd): 0 connections, 0 alarms pending\$"
check "no request pending yet" not log_has st1 '^request: pending'

ctl sj1 status --json
check "lsusctl status --json exits 0 (got $CTL_RC)" [ "$CTL_RC" = 0 ]
check "json: blocked" log_has sj1 '"blocked":true,'
check "json: the blocker is PID $bpid, sh, its command line, locked by PID $lpid" \
    log_has sj1 "\"blockers\":\\[\\{\"pid\":$bpid,\"uid\":0,\"user\":[^,]+,\"comm\":\"sh\",\"cmdline\":\"sh /scenarios/blocker.sh blocker\",\"why\":null,\"mode\":\"shared\",\"locker_pid\":$lpid\\}\\]"
check "json: 3 watchers" log_has sj1 '"watchers":\{"count":3,'
# (later keys may follow: a new key never changes the version, doc/protocol.md §6)
check "json: lsused and wakealarmd with their counts" \
    log_has sj1 "\"lsused\":\\{\"pid\":$(pid_of lsused),\"clients\":0,\"descriptors\":0[,}][^{]*\"wakealarmd\":\\{\"pid\":$(pid_of wakealarmd),\"connections\":0,\"pending\":0,"

# ---- a request while blocked: refused --------------------------------------------
# safety net only: if lsusd wrongly suspended now, the RTC wakes the guest in
# 30 s and the checks below fail, instead of the guest sleeping forever
rtc_arm 30
blocked_request r1
check "lsusd logged that suspend is blocked" wait_log 10 lsusd 'blocked by'
ctl st2 status
check "status: still blocked by the shell, and the request is pending" \
    sh -c "grep -q '^  PID $bpid ' $L/st2.log && grep -q '^request: pending\$' $L/st2.log"
release_blocker

# ---- one real suspend, woken by the RTC ----------------------------------------------
first_suspend r2 10

# ---- history and status afterwards --------------------------------------------------
ctl h history
check "lsusctl history exits 0 (got $CTL_RC)" [ "$CTL_RC" = 0 ]
# (the record's details, #16, follow in parentheses)
b=$(line_of h "  blocked by PID $bpid( \(.*\))?\$")
s=$(line_of h '  suspended for [0-9]+\.[0-9] s( \(.*\))?$')
check "history lists the blocked attempt (line ${b:-none}) before the suspend (line ${s:-none})" before "$b" "$s"
check "history has exactly these two outcomes" [ "$(wc -l <"$L/h.log")" = 2 ]
ctl hj history --json
check "history --json: blocked by $bpid, then suspended" \
    sh -c "tr -d '\n' <$L/hj.log | grep -Eq '\"outcome\":\"blocked\",[^}]*\"pids\":\\[$bpid\\].*\\{\"version\":1,\"seq\":[0-9]+,[^}]*\"outcome\":\"suspended\"'"

ctl st3 status
check "lsusctl status exits 0 (got $CTL_RC)" [ "$CTL_RC" = 0 ]
check "status says nothing blocks" log_has st3 '^suspend: not blocked$'
check "status lists no request" not log_has st3 '^request: pending'
check "status shows both outcomes" \
    sh -c "grep -A2 '^last outcomes:\$' $L/st3.log | grep -q 'blocked by PID $bpid' && grep -A2 '^last outcomes:\$' $L/st3.log | grep -q 'suspended for'"
ctl sj3 status --json
check "json: not blocked, no blockers" log_has sj3 '"blocked":false,"blockers":\[\],'

latency_request_to_state "request r2"
latency_resume_to_notified 'lsus-mark: watcher: resumed \(cycle 1\)'
finish
