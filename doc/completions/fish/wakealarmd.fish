complete -c wakealarmd -l run-dir -d 'Run directory shared with lsusd [default: /run/suspend]' -r -F
complete -c wakealarmd -l sysfs -d 'Root of sysfs (the RTC is SYSFS/class/rtc/NAME)' -r -F
complete -c wakealarmd -l rtc -d 'Name of the RTC under SYSFS/class/rtc' -r
complete -c wakealarmd -l socket-mode -d 'Permissions of the socket RUN/wakealarm, in octal' -r
complete -c wakealarmd -l dry-run -d 'Log the RTC writes instead of making them (everything else happens)'
complete -c wakealarmd -s v -l verbose -d 'Log more (repeat for even more)'
complete -c wakealarmd -s q -l quiet -d 'Log less (repeat for even less)'
complete -c wakealarmd -s h -l help -d 'Print help'
complete -c wakealarmd -s V -l version -d 'Print version'
