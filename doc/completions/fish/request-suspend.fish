complete -c request-suspend -l run-dir -d 'Run directory of lsusd' -r -F
complete -c request-suspend -l timeout -d 'Give up after SECS seconds (fractions allowed; the request is withdrawn)' -r
complete -c request-suspend -l why -d 'With --force: the reason, recorded with the attempt (why=) and shown by lsusctl history and status' -r
complete -c request-suspend -l via-logind -d 'Ask systemd-logind to suspend instead (its Suspend call on the system bus), so desktop programs are told (delay inhibitors, PrepareForSleep, screen locking); logind\'s systemd-suspend.service then asks lsusd, through the drop-in of install.sh --with-logind. Refused at once while a logind block inhibitor holds sleep. Reports lsusd\'s outcome of that attempt'
complete -c request-suspend -l wait -d 'While suspend is blocked, wait until the blockers have gone and ask again, then report that attempt ("suspend as soon as the backup finishes"). Waits for lsusd\'s word, never polls; bounded by --timeout. Not with --via-logind'
complete -c request-suspend -l force -d 'Suspend even while suspend is blocked (lid closed in a bag, battery critical): the watchers are still told and a wakeup event still aborts the attempt, but the blocks are gone over, and the record names them. Only root and members of the group suspend-force may (RUN/force); anyone else is refused with exit 2. Needs --why'
complete -c request-suspend -s q -l quiet -d 'Print nothing; the exit status tells'
complete -c request-suspend -s h -l help -d 'Print help (see more with \'--help\')'
complete -c request-suspend -s V -l version -d 'Print version'
