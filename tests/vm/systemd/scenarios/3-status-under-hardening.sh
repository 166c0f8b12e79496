# Scenario 3 (systemd): a member's lsusctl status names another user's blocker (PID, user, command line) under the hardened units; so does lsusd's journal.
# alice (in suspend) blocks with `flock -s RUN/disabled sh -c …` (a live
# holder); carol (in suspend too) runs `lsusctl status` while lsusd runs
# under its unit (root with an empty capability bounding set, the
# sandboxing of lsusd.service; wakealarmd and lsus-logind with
# ProtectProc=invisible): the status names alice's flock by PID, user and
# command line. carol's request is answered at once (exit 1) naming it,
# and lsusd's journal says "blocked by PID N (flock)". After the release a
# real suspend (the RTC armed by a watcher once the attempt is imminent).
. /scenarios/systemd.sh

wait_units
member alice
member carol
for u in $UNITS lsus-logind; do
    say "$u.service: User=$(prop $u User) ProtectProc=$(prop $u ProtectProc) ProcSubset=$(prop $u ProcSubset) CapabilityBoundingSet=[$(prop $u CapabilityBoundingSet)] NoNewPrivileges=$(prop $u NoNewPrivileges)"
done
check "lsusd.service has an empty capability bounding set" [ -z "$(prop lsusd CapabilityBoundingSet)" ]
check "lsusd (PID $(main_pid lsusd)) runs with no capability (CapEff and CapBnd 0)" sh -c "
    grep -q '^CapEff:[[:space:]]*0*\$' /proc/$(main_pid lsusd)/status &&
    grep -q '^CapBnd:[[:space:]]*0*\$' /proc/$(main_pid lsusd)/status"
check "wakealarmd.service and lsus-logind.service run with ProtectProc=invisible" \
    [ "$(prop wakealarmd ProtectProc)/$(prop lsus-logind ProtectProc)" = invisible/invisible ]

# alice's live blocker: flock(1) holds the lock while its command runs
spawn ablock as alice flock -s "$RUN/disabled" sh -c "echo blocking; while [ ! -e $L/ablock.release ]; do sleep 0.05; done"
check "alice holds a shared lock with flock -s $RUN/disabled sh -c ..." wait_log 30 ablock '^blocking'
fpid=$(pgrep -u alice -x flock | head -n 1)
check "alice's flock(1) found: PID ${fpid:-none}" [ -n "$fpid" ]

# carol's lsusctl status
as carol lsusctl status >"$L/cst.log" 2>&1
rc=$?
say "carol: lsusctl status (exit $rc):"
sed 's/^/    | /' "$L/cst.log"
check "carol's lsusctl status exits 0 (got $rc)" [ "$rc" = 0 ]
check "it says suspend is blocked by 1 process" log_has cst '^suspend: BLOCKED by 1 process'
check "it names alice's flock: PID $fpid, user alice, its command line" \
    log_has cst "^  PID $fpid +user alice +flock -s $RUN/disabled sh -c echo blocking; while "

# carol's request: answered at once, naming the holder
mark "request c1"
spawn c1 as carol request-suspend --timeout 60
request_ended c1
check "carol's request is answered at once: exit 1 (got $RC)" [ "$RC" = 1 ]
check "it names alice's flock: blocked by PID $fpid (flock -s ...)" \
    log_has c1 "^blocked by PID $fpid \\(flock -s $RUN/disabled sh -c echo blocking; "
check "lsusd's journal names it: blocked by PID $fpid (flock)" \
    wait_for 30 journal_has lsusd info "blocked by PID $fpid \\(flock\\)"
check "no suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 0 ]
touch "$L/ablock.release"
wait_exit ablock
check "alice's flock -s exits 0 (got $RC)" [ "$RC" = 0 ]
check "the request made while blocked is dropped" wait_for 30 absent "$RUN/request"

# a real suspend, now that nothing blocks
start_watcher "rtc-wake 6"
rtc0=$(rtc_wakeups)
mark "request c2"
spawn c2 as carol request-suspend --timeout 60
request_ended c2
check "carol's request exits 0 (got $RC)" [ "$RC" = 0 ]
check "one suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
check "the RTC woke the guest ($rtc0 -> $(rtc_wakeups))" [ "$(rtc_wakeups)" -gt "$rtc0" ]
check "the watcher saw the resume" wait_log 30 watcher 'resumed \(cycle 1\)'
stop watcher

latency_request_to_state "request c2"
latency_resume_to_notified 'lsus-mark: watcher: resumed'
sd_finish
