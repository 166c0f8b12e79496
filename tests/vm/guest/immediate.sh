#!/bin/sh
# immediate.sh NAME: holds immediate mode (doc/protocol.md §1.2):
# creates RUN/immediate and keeps an exclusive flock on it until the file
# $LSUS_LOG_DIR/NAME.release exists; then removes the file and closes it.
RUN=${LSUSD_RUN_DIR:-/run/suspend}
L=${LSUS_LOG_DIR:-/tmp/lsus}
name=${1:-immediate}
exec 8>"$RUN/immediate"
flock --exclusive 8
echo "holding immediate"
while [ ! -e "$L/$name.release" ]; do sleep 0.05; done
rm -f "$RUN/immediate"
exec 8>&-
echo "released immediate"
