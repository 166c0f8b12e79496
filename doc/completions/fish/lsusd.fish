complete -c lsusd -l run-dir -d 'Run directory shared with the clients' -r -F
complete -c lsusd -l sysfs -d 'Root of the sysfs tree (power/wakeup_count, power/state)' -r -F
complete -c lsusd -l state -d 'Sleep state written to power/state' -r
complete -c lsusd -l backoff-initial-ms -d 'First pause after a failed attempt in immediate mode (milliseconds; doubles after each further failure)' -r
complete -c lsusd -l backoff-max-ms -d 'Longest pause between failed attempts in immediate mode (milliseconds)' -r
complete -c lsusd -l immediate-grace-ms -d 'Grace period for a new, not yet locked, RUN/immediate (milliseconds)' -r
complete -c lsusd -l dry-run -d 'Do everything except the write to power/state, which is logged'
complete -c lsusd -s v -l verbose -d 'More log output (repeat for more)'
complete -c lsusd -s q -l quiet -d 'Less log output (repeat for less)'
complete -c lsusd -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lsusd -s V -l version -d 'Print version'
