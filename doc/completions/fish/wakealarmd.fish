complete -c wakealarmd -l run-dir -d 'Run directory shared with lsusd and its clients' -r -F
complete -c wakealarmd -l sysfs -d 'Root of the sysfs tree whose kernel files the daemon reads and writes (another one for tests and demos)' -r -F
complete -c wakealarmd -l rtc -d 'Name of the RTC under SYSFS/class/rtc' -r
complete -c wakealarmd -l socket-mode -d 'Permissions of the socket RUN/wakealarm, in octal' -r
complete -c wakealarmd -s v -l verbose -d 'More log output (repeat for more)'
complete -c wakealarmd -s q -l quiet -d 'Less log output (repeat for less)'
complete -c wakealarmd -l dry-run -d 'Log the RTC writes instead of making them (everything else happens)'
complete -c wakealarmd -s h -l help -d 'Print help'
complete -c wakealarmd -s V -l version -d 'Print version'
