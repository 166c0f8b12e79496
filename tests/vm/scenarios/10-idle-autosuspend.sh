# Scenario 10: idle autosuspend (lsus-idle, issue #17) on the emulated PS/2 keyboard.
# evdev.ko is loaded (Debian builds i8042 and atkbd in, evdev as a module),
# lsus-idle --idle 5 watches /dev/input/event*; 3 s after it is ready the
# guest prints "LSUS-SENDKEY a" and the host types the key through the QEMU
# monitor (sendkey, tests/vm/run). The idle count starts again at the key,
# so the machine is idle 5 s after it: lsus-idle holds immediate mode and
# lsusd suspends for real, woken by the RTC (alarm_test keeps an alarm 5 s
# ahead through wakealarmd, as scenario 3 does). From the kernel log: the
# first "PM: suspend entry" comes after the key and at least 5 s after the
# last read of it (lsus-idle's "input:" line, -v), with suspend_stats/success
# +1 and the RTC's wakeup source as the wake reason. The figure in the
# request->state column is last key -> suspend entry. Then a blocker holds
# suspend, a second key makes lsus-idle let go of immediate mode, and no
# suspend follows.
. /scenarios/lib.sh
need_bins lsusd wakealarmd lsus-idle alarm_test lsusctl

suspends_at_least() { [ "$(suspends_since_start)" -ge "$1" ]; }
# last_kts PATTERN BEFORE: printk time of the last kernel-log record since
# KT0 matching PATTERN with a time before BEFORE; empty if none
last_kts() {
    dmesg | KTS_PAT="$1" awk -v after="$KT0" -v before="$2" '
        { if (match($0, /^\[ *[0-9]+\.[0-9]+\]/)) {
              t = substr($0, 2, RLENGTH - 2) + 0
              if (t >= after + 0 && t < before + 0 && $0 ~ ENVIRON["KTS_PAT"]) last = t } }
        END { if (last != "") printf "%.6f\n", last }'
}
# at_least A B SECONDS: B - A >= SECONDS (all known)
at_least() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN { exit !(b - a >= s) }'; }

insmod /lib/modules/evdev.ko 2>&1 | while IFS= read -r l; do say "insmod: $l"; done
check "evdev is loaded" grep -q '^evdev ' /proc/modules
KBD=
kbd_node() {
    for e in /sys/class/input/event*; do
        [ "$(cat "$e/device/name" 2>/dev/null)" = "AT Translated Set 2 keyboard" ] || continue
        KBD=/dev/input/${e##*/}
        [ -c "$KBD" ] && return 0
    done
    return 1
}
check "the PS/2 keyboard has an evdev node" wait_for 5 kbd_node
say "keyboard: ${KBD:-none}; input devices: $(ls /dev/input 2>/dev/null | xargs)"

start_lsusd
start_wakealarmd
spawn alarm alarm_test --repeat 0 --hold 0 5
check "alarm_test set its alarm" wait_alarm_set alarm
rtc0=$(rtc_wakeups)

spawn idle lsus-idle --run-dir "$RUN" --idle 5 -v
check "lsus-idle is ready" wait_for 15 log_has idle ' INFO ready: '
mark "lsus-idle ready"
check "lsus-idle watches the keyboard ($KBD)" log_has idle "watching $KBD \(AT Translated Set 2 keyboard\)"
# The key at 3 s, before the idle time is up.
sleep 3
mark "key asked"
echo "LSUS-SENDKEY a"
check "lsus-idle read the key" wait_for 10 log_has idle 'DEBUG input: '
check "lsus-idle holds immediate mode when idle" wait_for 20 log_has idle 'holding immediate mode until the next input'
check "a real suspend" wait_for 30 suspends_at_least 1
st=$(lsusctl --run-dir "$RUN" status 2>&1)
say "lsusctl status: $st"
check "lsusctl status shows the idle section" eval 'case "$st" in *"idle: lsus-idle running, PID "*" of 5 s ("*"input device"*"holding immediate mode"*) true ;; *) false ;; esac'

# Stop the cycles at a well-defined moment (as scenario 3): a blocker
# first (its flock waits until a suspend in progress has resumed), then the
# second key, then the blocker lets go.
spawn stopper sh /scenarios/blocker.sh stopper
check "stopper blocks suspend" wait_log 20 stopper '^blocking'
echo "LSUS-SENDKEY b"
check "the next key makes lsus-idle let go of immediate mode" wait_log 10 idle 'let go of immediate mode'
check "immediate removed" wait_for 5 absent "$RUN/immediate"
c=$(suspends_since_start)
touch "$L/stopper.release"
check "stopper released" wait_log 5 stopper '^released'
mark "immediate off"
# A deliberate wait for nothing to happen: idle comes back only after 5 s
# without input, and suspends then follow within one alarm period.
sleep 4
check "no suspend after the key (+$c, now +$(suspends_since_start))" [ "$(suspends_since_start)" = "$c" ]

# The timeline, from the kernel log (printk clock, not counting sleep).
ready=$(kts "lsus-mark: lsus-idle ready\$")
entry=$(kts "PM: suspend entry" "${ready:-0}")
key=$(last_kts "lsus-out idle: .*DEBUG input: " "${entry:-999999}")
first_key=$(kts "lsus-out idle: .*DEBUG input: " "${ready:-0}")
say "lsus-idle ready at ${ready:-?}, first key read at ${first_key:-?}, last key read at ${key:-?}, suspend entry at ${entry:-?}"
check "the key came before the idle time was up (${ready:-?} -> ${first_key:-?})" eval '[ -n "$first_key" ] && ! at_least "$ready" "$first_key" 5'
check "the first suspend entry comes after the key" at_least "${key:-}" "${entry:-}" 0
hold=$(kts "lsus-out idle: .*holding immediate mode" "${key:-999999}")
# Both times are when a log line reached the kernel log through a pipe, and
# lsus-idle counts from the moment its poll returned, a little before its
# "input" line is written: 5 s less 0.1 s of that jitter (a run saw 4.996 s).
check "lsus-idle held immediate mode 5 s after the last key, within 0.1 s of log jitter (${key:-?} -> ${hold:-?})" at_least "${key:-}" "${hold:-}" 4.9
check "the suspend entry is at least 5 s after the last key (${key:-?} -> ${entry:-?})" at_least "${key:-}" "${entry:-}" 5
[ -n "${key:-}" ] && [ -n "${hold:-}" ] && [ -n "${entry:-}" ] &&
    say "last key -> immediate mode held: $(ms_between "$key" "$hold") ms; -> suspend entry: $(ms_between "$key" "$entry") ms (blockers such as wakealarmd's alarm due within 4 s come in between)"
check "the RTC woke the guest ($rtc0 -> $(rtc_wakeups))" [ "$(rtc_wakeups)" -gt "$rtc0" ]
src=$(rtc_source)
say "history: $(cat "$RUN/log/history" 2>/dev/null)"
check "the history names the RTC's wakeup source (${src:-none}) as the wake reason" \
    grep -Eq "outcome=suspended .*woke=([^ ]*,)?${src:-none}(,| |\$)" "$RUN/log/history"
[ -n "${key:-}" ] && [ -n "${entry:-}" ] && REQ_MS=$(ms_between "$key" "$entry")
finish
