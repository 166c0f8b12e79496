# journal_mark TEXT: writes TEXT to the journal (identifier lsus-mark) and
# prints the cursor of that very entry, once journald has stored it (up to
# 10 s; empty if it never shows). Sourced by run-scenario and systemd.sh.
#
# The scenarios read the journal from such a cursor with
# `journalctl --cursor=` (that entry included), never `--after-cursor=`:
# bookworm's journalctl (systemd 252) with --after-cursor and a match such
# as -u skips the first entry that matches, whether or not it is the
# cursor's (systemd issue 30288, fixed in 255), so a scenario's first
# lsusd line went missing. The cursor's own entry is this mark, which
# matches no unit, so "from the cursor" is exactly "after the mark".
journal_mark() {
    _jm_text="$1 ($$.$(date +%s%N))"
    echo "$_jm_text" | systemd-cat -t lsus-mark
    _jm_i=0
    while [ "$_jm_i" -lt 100 ]; do
        _jm_c=$(journalctl -q -n 1 -o cat --show-cursor -t lsus-mark "MESSAGE=$_jm_text" |
            sed -n 's/^-- cursor: //p')
        [ -z "$_jm_c" ] || { printf '%s\n' "$_jm_c"; return 0; }
        _jm_i=$((_jm_i + 1))
        sleep 0.1
    done
}
