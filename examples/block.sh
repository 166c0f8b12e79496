# block.sh — block and allow suspend from a shell script (source this file).
#
#   . examples/block.sh
#   suspend_block      # the machine stays awake from here…
#   do_work
#   suspend_allow      # …to here
#   suspend_abort      # abort the suspend attempt in progress, if any
#
# A shared flock(1) on RUN/disabled blocks suspend (doc/protocol.md §1.1):
#   exec 9< "$RUN/disabled"; flock --shared 9  …  flock --unlock 9; exec 9<&-
# The short spellings -s and -u are used because busybox's flock has no
# long options when it is built without them; util-linux knows both.
# If the shell exits without suspend_allow, the kernel drops the lock.
#
# RUN is $LSUSD_RUN_DIR, or /run/suspend. Descriptor 9 is used.
# POSIX sh: works in dash, bash and busybox sh.

suspend_run_dir() {
    printf '%s\n' "${LSUSD_RUN_DIR:-/run/suspend}"
}

# Blocks suspend. If a suspend is being entered right now, waits until the
# machine has resumed. Returns non-zero (with a message) if lsusd does not
# run on RUN.
suspend_block() {
    _sb_run=$(suspend_run_dir)
    # `command` keeps a failed redirection from ending the shell; the
    # braces keep the shell's own message about it quiet.
    if ! { command exec 9<"$_sb_run/disabled"; } 2>/dev/null; then
        echo "suspend_block: cannot open $_sb_run/disabled (is lsusd running?)" >&2
        return 2
    fi
    if ! flock -s 9; then
        echo "suspend_block: cannot lock $_sb_run/disabled" >&2
        exec 9<&-
        return 2
    fi
}

# Allows suspend again (after suspend_block).
suspend_allow() {
    flock -u 9 2>/dev/null
    exec 9<&-
}

# Aborts the suspend attempt in progress, if any: reading disabled tells
# lsusd that somebody objects (doc/protocol.md §1.1, Abort).
suspend_abort() {
    _sb_run=$(suspend_run_dir)
    if ! dd if="$_sb_run/disabled" of=/dev/null bs=1 count=1 2>/dev/null; then
        echo "suspend_abort: cannot read $_sb_run/disabled (is lsusd running?)" >&2
        return 2
    fi
}
