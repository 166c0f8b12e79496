#!/bin/sh
# test_block.sh — block suspend for SECS seconds (default 5) with block.sh.
#
#   LSUSD_RUN_DIR=/run/suspend examples/test_block.sh 10
#
# Exit status: 0, or 2 if lsusd does not run.
here=$(dirname "$0")
. "$here/block.sh"

secs=${1:-5}
suspend_block || exit 2
echo "suspend blocked for $secs s"
# The block belongs to this shell alone: sleep does not inherit it.
sleep "$secs" 9<&-
suspend_allow
echo "suspend allowed"
