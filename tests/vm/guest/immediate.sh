#!/bin/sh
# immediate.sh NAME: holds immediate mode (doc/protocol.md §1.2):
# creates RUN/immediate and keeps an exclusive flock on it until the file
# $LSUS_LOG_DIR/NAME.release exists; then removes the file and closes it.
# Between the creation and the lock lsusd may find the file unlocked; once
# its grace period (1 s) has passed it removes it as stale. A shell on a
# loaded TCG guest can take that long, so, as §1.2 asks of a client, after
# locking it checks that RUN/immediate still names the file it locked, and
# starts again if not.
RUN=${LSUSD_RUN_DIR:-/run/suspend}
L=${LSUS_LOG_DIR:-/tmp/lsus}
name=${1:-immediate}
tries=0
while :; do
    exec 8>>"$RUN/immediate"
    flock --exclusive 8
    locked=$(stat -L -c %i /proc/self/fd/8)
    named=$(stat -c %i "$RUN/immediate" 2>/dev/null)
    [ "$locked" != "$named" ] || break
    tries=$((tries + 1))
    echo "immediate was removed before it was locked (try $tries): again"
    exec 8>&-
done
echo "holding immediate"
while [ ! -e "$L/$name.release" ]; do sleep 0.05; done
rm -f "$RUN/immediate"
exec 8>&-
echo "released immediate"
