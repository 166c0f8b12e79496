# Scenario 4 (systemd): journalctl -p warning shows lsusd's warnings only, -p info its attempt lines, each with its priority, no time stamp doubled.
# Two things are provoked: a stale `immediate` (a file nobody holds:
# lsusd removes it after its grace, an info line) and a watcher that does
# not answer (the shell watcher holds the attempt at "imminent": lsusd's
# nag, a warning, every 5 s), then the watcher is let go and the attempt
# suspends for real (RTC armed just before). Under systemd the daemons
# write each line with a syslog priority prefix (<4>, <6>, …) and no time
# stamp of their own (crates/daemon/src/logging.rs): journald stores the
# priority and adds the only time stamp.
. /scenarios/systemd.sh

wait_units

# a stale immediate: created, held by nobody
: >"$RUN/immediate"
say "created $RUN/immediate, held by nobody"
check "lsusd removed the stale immediate" wait_for 60 absent "$RUN/immediate"
check "lsusd's journal says so (info)" wait_for 30 journal_has lsusd info 'removed stale immediate'

# a watcher that does not answer (the RTC armed 60 s ahead meanwhile: should
# lsusd go on without it after its --watcher-timeout, 30 s, the machine
# still wakes, and the checks fail)
rtc_arm 60
start_watcher hold
mark "request j1"
spawn j1 request-suspend --timeout 120
check "the watcher holds the attempt at imminent" wait_log 60 watcher '^\[[0-9.]+\] holding \(cycle 1\)'
check "lsusd warns that it is still waiting for the watcher" \
    wait_for 60 journal_has lsusd warning 'still waiting after .* for watchers to be ready: '
echo none >"$L/watcher.action"
rtc_arm 8
touch "$L/watcher.go"
request_ended j1
check "the request exits 0 once the watcher answers (got $RC)" [ "$RC" = 0 ]
check "one suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
check "the watcher saw the resume" wait_log 30 watcher 'resumed \(cycle 1\)'
stop watcher
check "lsusd's journal has the suspend (info)" wait_for 30 journal_has lsusd info '^suspend \(request\): suspended'

# what journalctl shows, with the priority journald stored
jctl -o json -u lsusd.service -p warning >"$L/warn.json"
jctl -o json -u lsusd.service -p info >"$L/info.json"
jctl -o short-monotonic -u lsusd.service -u lsused.service -u wakealarmd.service -p info >"$L/short.log"
journal lsusd warning >"$L/warn.txt"
say "journalctl -u lsusd -p warning (this scenario):"
sed 's/^/    | /' "$L/warn.txt"
# prio FILE: the PRIORITY of each entry of a journalctl -o json output
prio() { grep -o '"PRIORITY":"[0-9]"' "$1" | tr -dc '0-9\n'; }
check "-p warning lists entries ($(wc -l <"$L/warn.json")), each of priority 0-4 ($(prio "$L/warn.json" | sort | uniq -c | xargs))" \
    sh -c "[ -s '$L/warn.json' ] && [ \"\$(grep -c . '$L/warn.json')\" = \"\$(grep -c '\"PRIORITY\":\"[0-4]\"' '$L/warn.json')\" ]"
check "-p warning has the nag as priority 4 (warning)" \
    sh -c "grep 'still waiting after' '$L/warn.json' | grep -q '\"PRIORITY\":\"4\"'"
check "-p warning does not have the stale immediate (an info line)" not grep -q 'removed stale immediate' "$L/warn.txt"
check "-p warning does not have the attempt's lines" not grep -Eq '^suspend \(request\)' "$L/warn.txt"
check "-p info has the stale immediate as priority 6 (info)" \
    sh -c "grep 'removed stale immediate' '$L/info.json' | grep -q '\"PRIORITY\":\"6\"'"
check "-p info has the attempt line as priority 6" \
    sh -c "grep 'suspend (request): suspended' '$L/info.json' | grep -q '\"PRIORITY\":\"6\"'"
# no time stamp doubled: the messages of the three daemons start with
# neither a time stamp nor a priority prefix or level word of their own
jctl -o cat -u lsusd.service -u lsused.service -u wakealarmd.service -p debug >"$L/msgs.txt"
stamped=$(grep -Ec '^ *(<[0-7]>|\[? *[0-9]{4}-[0-9]{2}-[0-9]{2}|\[? *[0-9]{2}:[0-9]{2}:[0-9]{2}|\[ *[0-9]+\.[0-9]+\]|(TRACE|DEBUG|INFO|WARN|ERROR) )' "$L/msgs.txt")
check "no message of the three daemons carries its own time stamp or level ($stamped of $(grep -c . "$L/msgs.txt"))" [ "$stamped" = 0 ]
say "journalctl -o short-monotonic -p info (the three units, this scenario):"
sed 's/^/    | /' "$L/short.log"

latency_resume_to_notified 'lsus-mark: watcher: resumed'
sd_finish
