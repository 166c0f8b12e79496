complete -c lsus-idle -l run-dir -d 'Run directory shared with lsusd and its clients' -r -F
complete -c lsus-idle -l idle -d 'Seconds without input after which the machine is idle' -r
complete -c lsus-idle -l input-dir -d 'Directory of the input devices; its event* entries are watched' -r -F
complete -c lsus-idle -s v -l verbose -d 'More log output (repeat for more)'
complete -c lsus-idle -s q -l quiet -d 'Less log output (repeat for less)'
complete -c lsus-idle -l fake-input -d 'Test hook: an event* entry of INPUT_DIR that is a FIFO is read as a stream of raw 24-byte `struct input_event` records (the evdev ioctls do not work on a FIFO). Character devices are read through evdev as always'
complete -c lsus-idle -l dry-run -d 'Log when the machine becomes idle and when input ends it, but neither hold immediate mode nor abort an attempt'
complete -c lsus-idle -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lsus-idle -s V -l version -d 'Print version'
