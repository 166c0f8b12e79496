complete -c lsusd -l run-dir -d 'Run directory shared with lsusd and its clients' -r -F
complete -c lsusd -l sysfs -d 'Root of the sysfs tree whose kernel files the daemon reads and writes (another one for tests and demos)' -r -F
complete -c lsusd -l state -d 'Sleep state written to power/state' -r
complete -c lsusd -l dry-run-sleep -d 'With --dry-run, how long each "suspend" lasts (seconds, fractions allowed), so that immediate mode runs at a machine\'s pace instead of spinning' -r
complete -c lsusd -l backoff-initial-ms -d 'First pause after a failed attempt in immediate mode (milliseconds, 1 to 3600000; doubles after each further failure)' -r
complete -c lsusd -l backoff-max-ms -d 'Longest pause between failed attempts in immediate mode (milliseconds, 1 to 86400000)' -r
complete -c lsusd -l immediate-grace-ms -d 'Grace period for a new, not yet locked, RUN/immediate (milliseconds, 0 to 60000)' -r
complete -c lsusd -l watcher-timeout -d 'Stop waiting for watchers after this many seconds (0 to 86400; 0 waits as long as it takes, as the original): the attempt goes on as if the tardy ones were ready, and the log and the outcome record (`tardy=`) name each. A watcher that is merely slow but ready within the limit is never cut short' -r
complete -c lsusd -l force-group -d 'The group whose members (with root) may force a suspend over a block (`request-suspend --force`): RUN/force gets this group and mode 2770. A name or a number; a name that does not exist gives the run directory\'s group (logged)' -r
complete -c lsusd -l metrics-file -d 'After every attempt, write lsusd\'s counters to this file in the Prometheus text format (atomically), for node_exporter\'s textfile collector: attempts by outcome, seconds asleep, wake-ups by reason, seconds blocked by command' -r -F
complete -c lsusd -s v -l verbose -d 'More log output (repeat for more)'
complete -c lsusd -s q -l quiet -d 'Less log output (repeat for less)'
complete -c lsusd -l dry-run -d 'Do everything except the write to power/state, which is logged; the "suspend" then lasts --dry-run-sleep'
complete -c lsusd -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lsusd -s V -l version -d 'Print version'
