complete -c lsused -l run-dir -d 'Run directory shared with lsusd and its clients' -r -F
complete -c lsused -l socket-mode -d 'Permissions of RUN/registration, in octal (give a group access with 0660 and a suitable group on the run directory)' -r
complete -c lsused -l reply-timeout -d 'Stop waiting for a client\'s `R` after this many seconds and let the suspend go on, naming the tardy clients in the log and in RUN/lsused.status (`tardy=`); 0 waits as long as it takes, as the original' -r
complete -c lsused -s v -l verbose -d 'More log output (repeat for more)'
complete -c lsused -s q -l quiet -d 'Less log output (repeat for less)'
complete -c lsused -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lsused -s V -l version -d 'Print version'
