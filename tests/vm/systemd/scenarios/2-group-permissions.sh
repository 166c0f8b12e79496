# Scenario 2 (systemd): a member of suspend blocks, watches, sets an alarm and suspends; a non-member is refused everywhere.
# alice (useradd -G suspend) blocks with flock -s (the shell idiom of
# blocker.sh, which lsusd describes but may not name under its unit, and
# `flock -s FILE CMD`, named) and with `lsusctl block`, watches with `lsusctl watch`, sets a wake alarm through
# wakealarmd (alarm_test) and requests suspend: while she blocks, her
# request is answered at once (exit 1, her blocker named); then a real
# suspend under the hardened units. bob (useradd, not in suspend) is
# refused at every entry point with one line saying permission was
# denied: opening disabled, flock on it, lsused's and wakealarmd's
# sockets, request-suspend, watch_test, lsusctl status and block; nothing
# he tries changes the run directory.
. /scenarios/systemd.sh

wait_units
member alice
outsider bob

# ---- bob, outside the group: refused everywhere ------------------------------
snapshot() { ls -lani --time-style=+%s.%N "$RUN" | grep -v " \.\.$"; }
before=$(snapshot)
# refused CMD...: run as bob; must fail with one line saying permission denied
refused() {
    _out=$(as bob "$@" 2>&1)
    _rc=$?
    say "bob: $* -> exit $_rc: $_out"
    check "bob: '$*' is refused (exit $_rc) with one line: $_out" \
        sh -c "[ $_rc != 0 ] && [ \"\$(printf '%s\n' \"\$1\" | wc -l)\" = 1 ] && printf '%s' \"\$1\" | grep -Eqi 'permission denied'" _ "$_out"
}
refused sh -c "exec 9<$RUN/disabled"
refused flock -s "$RUN/disabled" true
refused request-suspend --timeout 5
refused alarm_test 6
refused event_test /dev/null
refused watch_test
refused lsusctl status
refused lsusctl block true
check "nothing bob tried changed the run directory" [ "$(snapshot)" = "$before" ]
check "no suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 0 ]

# ---- alice, a member ---------------------------------------------------------
w0=$(watchers)
spawn awatch as alice lsusctl watch
check "alice's lsusctl watch registered as a watcher" wait_watchers $((w0 + 1))

# a shared flock on disabled in the shell idiom (doc/protocol.md §1.1:
# exec 9<disabled; flock -s 9): flock(1) takes the lock and exits, alice's
# shell keeps it. lsusd (root with an empty capability set) may not read
# another user's /proc/PID/fd, so it cannot name the shell: it says so
# (doc/protocol.md §1.9), naming the PID that took the lock, in the answer,
# the record (locker=N) and its journal.
spawn ablock as alice sh /scenarios/blocker.sh ablock
check "alice holds a shared lock on disabled (exec 9<disabled; flock -s 9)" wait_log 10 ablock '^blocking'
mark "request r0"
spawn r0 as alice request-suspend --timeout 40
request_ended r0
check "alice's request is answered at once while she blocks: exit 1 (got $RC)" [ "$RC" = 1 ]
kept="kept by a process lsusd may not inspect \\(another user's, or one with more privileges\\)"
check "it says that the lock of an exited flock(1) is kept by a process lsusd may not inspect: $(cat "$L/r0.log")" \
    log_has r0 "^blocked by a lock that PID [0-9]+ took before it exited, $kept\$"
locker=$(sed -n 's/^blocked by a lock that PID \([0-9]*\) took.*/\1/p' "$L/r0.log")
say "the outcome record: $(cat "$RUN/outcome" 2>&1)"
check "the record says blocked with locker=$locker, no pids" \
    sh -c "grep -Eq ' outcome=blocked( |\$)' '$RUN/outcome' && grep -Eq ' locker=$locker( |\$)' '$RUN/outcome' && ! grep -q ' pids=' '$RUN/outcome'"
check "PID $locker (flock(1)) has exited" not kill -0 "${locker:-0}" 2>/dev/null
check "lsusd's journal says the same" \
    wait_for 30 journal_has lsusd info "blocked by a lock that PID $locker took before it exited, $kept"
touch "$L/ablock.release"
check "alice released her lock" wait_log 10 ablock '^released'
check "the request made while blocked is dropped" wait_for 10 absent "$RUN/request"

# flock -s FILE COMMAND: flock(1) holds the lock while the command runs, a
# live holder that lsusd names by PID and command line
spawn fblock as alice flock -s "$RUN/disabled" sh -c "echo blocking; while [ ! -e $L/fblock.release ]; do sleep 0.05; done"
check "alice holds a shared lock with flock -s $RUN/disabled sh -c ..." wait_log 10 fblock '^blocking'
fpid=$(pgrep -u alice -x flock | head -n 1)
check "alice's flock(1) found: PID ${fpid:-none}" [ -n "$fpid" ]
mark "request r0b"
spawn r0b as alice request-suspend --timeout 40
request_ended r0b
check "alice's request is answered at once: exit 1 (got $RC)" [ "$RC" = 1 ]
check "it names her flock: blocked by PID $fpid (flock -s $RUN/disabled sh -c ...)" \
    log_has r0b "^blocked by PID $fpid \\(flock -s $RUN/disabled sh -c echo blocking; "
check "lsusd's journal names it: blocked by PID $fpid (flock)" \
    wait_for 10 journal_has lsusd info "blocked by PID $fpid \\(flock\\)"
touch "$L/fblock.release"
wait_exit fblock
check "alice's flock -s exits 0 (got $RC)" [ "$RC" = 0 ]
check "the request made while blocked is dropped" wait_for 10 absent "$RUN/request"
check "no suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 0 ]

# lsusctl block, with a reason
spawn lblock as alice lsusctl block --why "alice's test" -- \
    sh -c "echo held; while [ ! -e $L/lblock.release ]; do sleep 0.05; done"
check "alice's lsusctl block runs its command" wait_log 10 lblock '^held'
out=$(as alice lsusctl status 2>&1)
say "alice: lsusctl status:"; printf '%s\n' "$out" | sed 's/^/    | /'
check "lsusctl status (as alice) says blocked and gives her block's --why" \
    sh -c "printf '%s\n' \"\$1\" | grep -q '^suspend: BLOCKED' && printf '%s\n' \"\$1\" | grep -q \"why: alice's test\"" _ "$out"
mark "request r1"
spawn r1 as alice request-suspend --timeout 40
request_ended r1
check "alice's request while lsusctl block runs: exit 1 (got $RC)" [ "$RC" = 1 ]
check "it names lsusctl block" log_has r1 '^blocked by PID [0-9]+ \(([^ ]*/)?lsusctl block'
touch "$L/lblock.release"
wait_exit lblock
check "lsusctl block exits with its command's status 0 (got $RC)" [ "$RC" = 0 ]
check "the request made while blocked is dropped" wait_for 10 absent "$RUN/request"
check "no suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 0 ]

# a wake alarm and a request, both as alice: a real suspend
spawn a2-alarm as alice alarm_test 15
check "alice set a wake alarm through wakealarmd" wait_alarm_set a2-alarm
mark "request a2"
spawn a2 as alice request-suspend --timeout 60
request_ended a2
check "alice's request exits 0 (got $RC)" [ "$RC" = 0 ]
check "one suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
check "alice's alarm client got Now" wait_log 15 a2-alarm '^Now'
check "alice's lsusctl watch printed the suspend" wait_log 10 awatch ' suspend$'
check "alice's lsusctl watch printed the resume" wait_log 10 awatch ' resume'
stop awatch

latency_request_to_state "request a2"
latency_resume_to_notified 'lsus-out awatch: .* resume'
sd_finish
