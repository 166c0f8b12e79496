complete -c lsus-logind -l run-dir -d 'Run directory shared with lsusd and its clients' -r -F
complete -c lsus-logind -l bus-address -d 'D-Bus address of the bus logind is on [default: the system bus, or DBUS_SYSTEM_BUS_ADDRESS]' -r
complete -c lsus-logind -s v -l verbose -d 'More log output (repeat for more)'
complete -c lsus-logind -s q -l quiet -d 'Less log output (repeat for less)'
complete -c lsus-logind -s h -l help -d 'Print help'
complete -c lsus-logind -s V -l version -d 'Print version'
