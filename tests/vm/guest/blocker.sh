#!/bin/sh
# blocker.sh NAME: blocks suspend the way doc/protocol.md §1.1 shows for shell
# (a shared flock on RUN/disabled) until the file $LSUS_LOG_DIR/NAME.release
# exists, then allows it again and exits. Prints "blocking" once the lock is
# held (flock waits while lsusd is entering suspend: it returns after resume)
# and "released" after unlocking.
RUN=${LSUSD_RUN_DIR:-/run/suspend}
L=${LSUS_LOG_DIR:-/tmp/lsus}
name=${1:-blocker}
exec 9<"$RUN/disabled"
flock --shared 9
echo "blocking"
while [ ! -e "$L/$name.release" ]; do sleep 0.05; done
flock --unlock 9
exec 9<&-
echo "released"
