# Scenario 11 (systemd): lsus-idle.service, installed but not enabled, started with an idle time of 5 s (#17).
# install.sh installs lsus-idle.service and never enables it: it is
# inactive after boot. evdev.ko is loaded (insmod: the root's depmod does
# not know it) and udev gives the keyboard's node to root:input 0660. A
# drop-in as `systemctl edit` writes it (ExecStart= emptied, then --idle 5)
# and `systemctl start`: active (running) through READY=1, as user
# lsus-idle, group suspend, supplementary group input, no capability; it
# watches the PS/2 keyboard through the group and DeviceAllow=char-input r.
# The host types a key (LSUS-SENDKEY); 5 s after it lsus-idle holds
# immediate mode and lsusd suspends for real, woken by the RTC (alarm_test
# through wakealarmd, 5 s ahead, re-armed); lsusctl status shows the idle
# section. Then a blocker, a second key: lsus-idle lets go, no suspend
# follows; journalctl -p warning is empty for it; `systemctl stop` removes
# its status file.
. /scenarios/systemd.sh

suspends_at_least() { [ "$(suspends_since_start)" -ge "$1" ]; }

wait_units
check "lsus-idle.service is installed but not enabled ($(systemctl is-enabled lsus-idle.service 2>&1))" \
    [ "$(systemctl is-enabled lsus-idle.service 2>&1)" = disabled ]
check "lsus-idle.service is inactive after boot ($(prop lsus-idle ActiveState))" \
    [ "$(prop lsus-idle ActiveState)" = inactive ]

insmod /opt/lsus-test/evdev.ko 2>&1 | while IFS= read -r l; do say "insmod: $l"; done
check "evdev is loaded" grep -q '^evdev ' /proc/modules
KBD=
kbd_node() {
    for e in /sys/class/input/event*; do
        [ "$(cat "$e/device/name" 2>/dev/null)" = "AT Translated Set 2 keyboard" ] || continue
        KBD=/dev/input/${e##*/}
        [ "$(stat -c '%a %U:%G' "$KBD" 2>/dev/null)" = "660 root:input" ] && return 0
    done
    return 1
}
check "udev gave the PS/2 keyboard's node to root:input 0660" wait_for 15 kbd_node
say "keyboard: ${KBD:-none} ($(stat -c '%a %U:%G' "${KBD:-/nonexistent}" 2>&1))"

mkdir -p /run/systemd/system/lsus-idle.service.d
printf '%s\n' '[Service]' 'ExecStart=' \
    'ExecStart=/usr/local/sbin/lsus-idle --run-dir /run/suspend --idle 5' \
    >/run/systemd/system/lsus-idle.service.d/idle.conf
systemctl daemon-reload
spawn alarm alarm_test --repeat 0 --hold 0 5
check "alarm_test set its alarm" wait_alarm_set alarm
check "systemctl start lsus-idle" systemctl start lsus-idle.service
check "lsus-idle.service is active (running): $(unit_state lsus-idle)" unit_running lsus-idle
check "lsus-idle.service: Type=notify" [ "$(prop lsus-idle Type)" = notify ]
pid=$(main_pid lsus-idle)
# (/proc/PID belongs to the process's effective user and group; ps cuts
# user names at 8 characters)
check "lsus-idle runs as lsus-idle:suspend ($(stat -c '%U:%G' /proc/$pid))" \
    [ "$(stat -c '%U:%G' /proc/$pid)" = "lsus-idle:suspend" ]
input_gid=$(getent group input | cut -d: -f3)
check "lsus-idle has the supplementary group input ($(grep '^Groups:' /proc/$pid/status))" \
    sh -c "grep '^Groups:' /proc/$pid/status | tr -s ' \t' '\n\n' | grep -qx '$input_gid'"
check "lsus-idle has no capability" grep -q '^CapEff:[[:space:]]*0*$' /proc/$pid/status
check "lsus-idle watches the keyboard through its group (journal)" \
    wait_for 10 journal_has lsus-idle info "watching $KBD \(AT Translated Set 2 keyboard\)"
check "RUN/records/lsus-idle.status is lsus-idle's, 640 of group suspend ($(stat -c '%a %U:%G' $RUN/records/lsus-idle.status 2>&1))" \
    wait_for 5 sh -c "[ \"\$(stat -c '%a %U:%G' $RUN/records/lsus-idle.status)\" = '640 lsus-idle:suspend' ]"

mark "key asked"
echo "LSUS-SENDKEY a"
check "lsus-idle holds immediate mode 5 s after the key (journal)" \
    wait_for 30 journal_has lsus-idle info 'idle for 5 s: holding immediate mode until the next input'
check "a real suspend in lsus-idle's immediate mode" wait_for 40 suspends_at_least 1
# lsusd (root without capabilities) opens immediate as "other": libsus
# makes it 0644 whatever the unit's UMask=0027 took away
check "RUN/immediate is lsus-idle's, 644 ($(stat -c '%a %U:%G' $RUN/immediate 2>&1))" \
    [ "$(stat -c '%a %U:%G' $RUN/immediate)" = "644 lsus-idle:suspend" ]
check "lsusd did not throw immediate away (journal)" not journal_has lsusd warning 'removing /run/suspend/immediate'

ctl st status
check "lsusctl status shows the idle section, holding" \
    log_has st "^idle: lsus-idle running, PID $pid: idle for [0-9]+ s of 5 s \(([0-9]+ input devices|1 input device)\), holding immediate mode until the next input\$"

spawn stopper sh /scenarios/blocker.sh stopper
check "stopper blocks suspend" wait_log 20 stopper '^blocking'
echo "LSUS-SENDKEY b"
check "the next key makes lsus-idle let go of immediate mode (journal)" \
    wait_for 10 journal_has lsus-idle info 'let go of immediate mode'
check "immediate removed" wait_for 5 absent "$RUN/immediate"
c=$(suspends_since_start)
touch "$L/stopper.release"
check "stopper released" wait_log 5 stopper '^released'
sleep 4
check "no suspend after the key (+$c, now +$(suspends_since_start))" [ "$(suspends_since_start)" = "$c" ]

w=$(jctl -o short-monotonic -p warning -u lsus-idle.service)
check "journalctl -p warning is empty for lsus-idle${w:+: $w}" [ -z "$w" ]
check "systemctl stop lsus-idle" systemctl stop lsus-idle.service
check "its status file is gone" absent "$RUN/lsus-idle.status"
rm -rf /run/systemd/system/lsus-idle.service.d
systemctl daemon-reload
sd_finish
