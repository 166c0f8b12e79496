# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_lsusctl_global_optspecs
    string join \n run-dir= h/help V/version
end

function __fish_lsusctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_lsusctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_lsusctl_using_subcommand
    set -l cmd (__fish_lsusctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c lsusctl -n "__fish_lsusctl_needs_command" -l run-dir -d 'Run directory of lsusd' -r -F
complete -c lsusctl -n "__fish_lsusctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lsusctl -n "__fish_lsusctl_needs_command" -s V -l version -d 'Print version'
complete -c lsusctl -n "__fish_lsusctl_needs_command" -f -a "status" -d 'Is suspend blocked and by whom; immediate mode, watchers, lsused, wakealarmd and the last outcomes'
complete -c lsusctl -n "__fish_lsusctl_needs_command" -f -a "block" -d 'Run a command with suspend blocked, and exit with its status'
complete -c lsusctl -n "__fish_lsusctl_needs_command" -f -a "watch" -d 'Print each suspend and resume as it happens, until interrupted or lsusd stops'
complete -c lsusctl -n "__fish_lsusctl_needs_command" -f -a "history" -d 'The last outcomes recorded by lsusd (RUN/log/history), oldest first'
complete -c lsusctl -n "__fish_lsusctl_needs_command" -f -a "stats" -d 'Sums up the outcomes of a span of time: attempts by outcome, suspends, time asleep and awake, top wake reasons, top blockers by time held, top abort sources, and the kernel\'s suspend_stats with whether they agree with lsusd\'s count'
complete -c lsusctl -n "__fish_lsusctl_using_subcommand status" -l last -d 'How many of the last outcomes to show (0 to 2000, what lsusd keeps)' -r
complete -c lsusctl -n "__fish_lsusctl_using_subcommand status" -l run-dir -d 'Run directory of lsusd' -r -F
complete -c lsusctl -n "__fish_lsusctl_using_subcommand status" -l json -d 'One JSON object instead of text; its first key is "version": 1'
complete -c lsusctl -n "__fish_lsusctl_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lsusctl -n "__fish_lsusctl_using_subcommand block" -l why -d 'Why suspend is blocked; `lsusctl status` shows it' -r
complete -c lsusctl -n "__fish_lsusctl_using_subcommand block" -l for -d 'Block for this long at most (90s, 30m, 2h; plain seconds)' -r
complete -c lsusctl -n "__fish_lsusctl_using_subcommand block" -l run-dir -d 'Run directory of lsusd' -r -F
complete -c lsusctl -n "__fish_lsusctl_using_subcommand block" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lsusctl -n "__fish_lsusctl_using_subcommand watch" -l run-dir -d 'Run directory of lsusd' -r -F
complete -c lsusctl -n "__fish_lsusctl_using_subcommand watch" -l json -d 'One JSON object per line instead of text; the first key of each is "version": 1'
complete -c lsusctl -n "__fish_lsusctl_using_subcommand watch" -l follow -d 'When lsusd stops, wait for it to start again and go on watching (without it, the watch ends with exit status 3)'
complete -c lsusctl -n "__fish_lsusctl_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lsusctl -n "__fish_lsusctl_using_subcommand history" -s n -l lines -d 'Only the last N outcomes (1 to 2000, what lsusd keeps)' -r
complete -c lsusctl -n "__fish_lsusctl_using_subcommand history" -l since -d 'With --timeline, how far back: 90s, 30m, 8h, 7d [default: 8h]' -r
complete -c lsusctl -n "__fish_lsusctl_using_subcommand history" -l run-dir -d 'Run directory of lsusd' -r -F
complete -c lsusctl -n "__fish_lsusctl_using_subcommand history" -l json -d 'One JSON array instead of text: an object per outcome, whose first key is "version": 1'
complete -c lsusctl -n "__fish_lsusctl_using_subcommand history" -l timeline -d 'A picture of the last hours in 80 columns: asleep, awake and blocked as bars on a time axis, each wake marked with its reason. Plain text when NO_COLOR is set or the output is not a terminal'
complete -c lsusctl -n "__fish_lsusctl_using_subcommand history" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lsusctl -n "__fish_lsusctl_using_subcommand stats" -l since -d 'How far back: 90s, 30m, 24h, 7d (lsusd keeps 2000 records: 7 days at 200 suspends a day)' -r
complete -c lsusctl -n "__fish_lsusctl_using_subcommand stats" -l sysfs -d 'Root of the sysfs tree (power/suspend_stats)' -r -F
complete -c lsusctl -n "__fish_lsusctl_using_subcommand stats" -l run-dir -d 'Run directory of lsusd' -r -F
complete -c lsusctl -n "__fish_lsusctl_using_subcommand stats" -l json -d 'One JSON object instead of text; its first key is "version": 1'
complete -c lsusctl -n "__fish_lsusctl_using_subcommand stats" -s h -l help -d 'Print help'
