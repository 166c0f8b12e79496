#!/bin/sh
# A watcher of lsusd written in shell, following doc/protocol.md §1.4 "watching and
# watching-next" (busybox ash + util-linux flock; it polls with a short sleep
# where a C client would use inotify). Used by scenarios 5 and 6.
#
#   watcher.sh RUN
#
# For each suspend attempt it prints "suspend imminent (cycle K)", performs the
# action named in the file $LSUS_LOG_DIR/watcher.action (read afresh each
# cycle), releases its lock on the old `watching` ("ready"), and prints
# "resumed (cycle K)" when lsusd renames watching-next over watching. Actions:
#   none          do nothing (default)
#   read-disabled read one byte of RUN/disabled: aborts the attempt (doc/protocol.md §1.1, Abort)
#   rtc-event     make a real wakeup event: program the RTC to fire 1 s ahead
#                 and wait until the kernel's wakeup_count has moved on
#   rtc-wake N    program the RTC to wake the machine N s from now, then be
#                 ready: the wake source of a suspend that slow steps (a
#                 systemd unit, logind) come before, armed only once the
#                 attempt is imminent, so N can be short
#   hold          hold the attempt at "imminent" (never ready) until the file
#                 $LSUS_LOG_DIR/watcher.go exists (removed then), or until
#                 the watching file it holds is not at its name any more (a
#                 new lsusd ended the attempt: doc/protocol.md §2, start-up)
RUN=${1:-/run/suspend}
L=${LSUS_LOG_DIR:-/tmp/lsus}
now() { cut -d' ' -f1 /proc/uptime; }
# each line also goes straight to the kernel log, stamped there without the
# delay of the copy that spawn makes of our output
say() {
    echo "lsus-mark: watcher: $*" >/dev/kmsg
    echo "[$(now)] $*"
}
ino_path() { stat -c %i "$1" 2>/dev/null; }
ino_fd() { stat -L -c %i "/proc/$$/fd/$1" 2>/dev/null; }

# registration: open watching, shared lock, check it is still the file at
# that path and empty; otherwise retry
while :; do
    exec 3<"$RUN/watching" || { sleep 0.05; continue; }
    flock -s 3
    if [ "$(ino_fd 3)" = "$(ino_path "$RUN/watching")" ] && [ ! -s "$RUN/watching" ]; then
        break
    fi
    exec 3<&-
    sleep 0.05
done
say "registered (watching inode $(ino_fd 3))"

cycle=0
while :; do
    # suspend imminent: lsusd wrote one byte into watching (the file we hold)
    while [ "$(stat -L -c %s /proc/$$/fd/3)" = 0 ]; do sleep 0.02; done
    cycle=$((cycle + 1))
    say "suspend imminent (cycle $cycle)"
    # register for the next cycle
    exec 4<"$RUN/watching-next"
    flock -s 4
    action=$(cat "$L/watcher.action" 2>/dev/null || echo none)
    case $action in
        read-disabled)
            dd if="$RUN/disabled" of=/dev/null bs=1 count=1 2>/dev/null
            say "read one byte of disabled (cycle $cycle)"
            ;;
        rtc-event)
            c0=$(cat /sys/power/wakeup_count)
            echo 0 >/sys/class/rtc/rtc0/wakealarm
            echo +1 >/sys/class/rtc/rtc0/wakealarm
            n=0
            while [ "$(cat /sys/power/wakeup_count)" = "$c0" ] && [ $n -lt 100 ]; do
                sleep 0.05
                n=$((n + 1))
            done
            c1=$(cat /sys/power/wakeup_count)
            # a wakeup event only when the kernel's count moved
            if [ "$c1" != "$c0" ]; then
                say "rtc wakeup event: wakeup_count $c0 -> $c1 (cycle $cycle)"
            else
                say "no rtc wakeup event: wakeup_count stayed $c0 for 5 s (cycle $cycle)"
            fi
            # safety net: should lsusd wrongly suspend anyway, wake in 20 s
            # (the checks then fail) rather than sleep until the deadline
            echo +20 >/sys/class/rtc/rtc0/wakealarm
            ;;
        rtc-wake\ *)
            echo 0 >/sys/class/rtc/rtc0/wakealarm
            echo "+${action#rtc-wake }" >/sys/class/rtc/rtc0/wakealarm
            say "rtc armed +${action#rtc-wake } s (cycle $cycle)"
            ;;
        hold)
            say "holding (cycle $cycle)"
            held=$(ino_fd 3)
            while [ ! -e "$L/watcher.go" ] && [ "$(ino_path "$RUN/watching")" = "$held" ]; do sleep 0.05; done
            rm -f "$L/watcher.go"
            say "let go (cycle $cycle)"
            ;;
        *) ;;
    esac
    # ready: release the old watching
    say "ready (cycle $cycle)"
    flock -u 3
    exec 3<&-
    # after resume or abort: watching is renamed to the inode we hold as fd 4
    want=$(ino_fd 4)
    while [ "$(ino_path "$RUN/watching")" != "$want" ]; do sleep 0.02; done
    say "resumed (cycle $cycle)"
    # the new watching becomes our registration
    exec 3<&4 4<&-
done
