# Scenario 7 (systemd): systemctl stop of each unit removes its socket, PID and status files; install.sh --uninstall removes every installed file. Ends its boot.
# First a real suspend with everything installed (the RTC armed by a
# watcher once the attempt is imminent). Then `systemctl stop` of
# lsus-logind, lsused, wakealarmd and lsusd, one at a time: each daemon's
# files go with it (doc/protocol.md §1.8, §1.10, §1.11, §1.13), except
# lsusd.pid, which stays by design (§1.8: the lock, not the file, says
# lsusd runs; request-suspend tells a stopped lsusd from the original's,
# which keeps no PID file, by it) and must then be unlocked. Then
# `systemd/install.sh --uninstall` (the repository's, in /opt/lsus-src):
# the files under /usr and /etc/systemd are those of the guest before the
# install (tests/vm/run lists them from the root archive).
# It changes the installed system: the last scenario of its boot.
. /scenarios/systemd.sh

wait_units
wait_logind

# a real suspend, as installed
start_watcher "rtc-wake 6"
rtc0=$(rtc_wakeups)
mark "request u1"
spawn u1 request-suspend --timeout 120
request_ended u1
check "the request exits 0 (got $RC)" [ "$RC" = 0 ]
check "one suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
check "the RTC woke the guest ($rtc0 -> $(rtc_wakeups))" [ "$(rtc_wakeups)" -gt "$rtc0" ]
check "the watcher saw the resume" wait_log 30 watcher 'resumed \(cycle 1\)'
stop watcher
wait_exit watcher

# systemctl stop, one unit at a time: its files go
stop_unit() {
    _u=$1
    shift
    for _f in "$@"; do check "$_u: $RUN/$_f exists before the stop" [ -e "$RUN/$_f" ]; done
    systemctl stop "$_u.service"
    _rc=$?
    check "systemctl stop $_u exits 0 (got $_rc), the unit is inactive ($(prop "$_u" ActiveState)/$(prop "$_u" SubState))" \
        sh -c "[ $_rc = 0 ] && [ '$(prop "$_u" ActiveState)' = inactive ]"
    for _f in "$@"; do check "$_u: $RUN/$_f is removed" wait_for 30 absent "$RUN/$_f"; done
}
stop_unit lsus-logind lsus-logind.pid lsus-logind.status
stop_unit lsused lsused.pid lsused.status registration
stop_unit wakealarmd wakealarmd.pid wakealarmd.status wakealarm
stop_unit lsusd
check "lsusd.pid stays (doc/protocol.md §1.8), unlocked: $(lock_count "$RUN/lsusd.pid" WRITE) exclusive locks on it" \
    sh -c "[ -f '$RUN/lsusd.pid' ] && [ '$(lock_count "$RUN/lsusd.pid" WRITE)' = 0 ]"
out=$(request-suspend --timeout 10 2>&1)
rc=$?
check "request-suspend now says lsusd is not running, exit 2 (got $rc): $out" \
    sh -c "[ $rc = 2 ] && printf '%s' \"\$1\" | grep -q 'lsusd is not running'" _ "$out"
say "left in $RUN:"
ls -la "$RUN" | sed 's/^/    | /'

# install.sh --uninstall
listing() { find /usr /etc/systemd \( -type f -o -type l \) -print | LC_ALL=C sort; }
listing >"$L/files-installed"
comm -13 /scenarios/files-before "$L/files-installed" >"$L/files-added"
say "$(wc -l <"$L/files-added") files under /usr and /etc/systemd that the guest root did not have"
check "the installed files are there (e.g. /usr/local/sbin/lsusd)" grep -qx /usr/local/sbin/lsusd "$L/files-added"
sh /opt/lsus-src/systemd/install.sh --uninstall >"$L/uninstall.log" 2>&1
rc=$?
check "install.sh --uninstall exits 0 (got $rc), $(grep -c '^removed ' "$L/uninstall.log") files removed" [ "$rc" = 0 ]
listing >"$L/files-after"
comm -13 /scenarios/files-before "$L/files-after" >"$L/files-left"
comm -23 /scenarios/files-before "$L/files-after" >"$L/files-gone"
check "nothing installed is left under /usr and /etc/systemd ($(wc -l <"$L/files-left") files)" [ ! -s "$L/files-left" ]
check "nothing of the guest's own files went ($(wc -l <"$L/files-gone") files)" [ ! -s "$L/files-gone" ]
check "systemd no longer knows lsusd.service" not sh -c 'systemctl cat lsusd.service >/dev/null 2>&1'
check "the drop-in of systemd-suspend.service is gone" not sh -c 'systemctl cat systemd-suspend.service 2>/dev/null | grep -q request-suspend'
say "directories left empty: $(find /usr/local /etc/systemd -type d -empty | xargs)"

latency_request_to_state "request u1"
latency_resume_to_notified 'lsus-mark: watcher: resumed'
sd_finish
