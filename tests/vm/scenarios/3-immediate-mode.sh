# Scenario 3: immediate mode with an alarm client re-arming 5 s ahead.
# immediate.sh holds RUN/immediate (flock -x, doc/protocol.md §1.2); alarm_test
# --repeat 0 --hold 0 5 keeps one alarm 5 s ahead, re-armed on the same
# connection after each Now. So lsusd suspends whenever nothing blocks,
# wakealarmd programs the RTC 2 s before each alarm, the guest wakes, and
# while the alarm is due within 4 s wakealarmd blocks suspend; after Now and
# the re-arm the next cycle follows. At least two real cycles in a row must
# happen. Then immediate mode is released, and no further suspend may
# follow: to release it at a well-defined moment (not while lsusd is inside
# the state write), a blocker takes flock -s on disabled first (that waits
# until any suspend in progress has resumed), immediate is dropped, and the
# blocker lets go.
. /scenarios/lib.sh
need_bins lsusd wakealarmd alarm_test

suspends_at_least() { [ "$(suspends_since_start)" -ge "$1" ]; }

start_lsusd
start_wakealarmd
start_watcher
spawn alarm alarm_test --repeat 0 --hold 0 5
check "alarm_test set its alarm" wait_alarm_set alarm

mark "immediate on"
spawn imm sh /scenarios/immediate.sh imm
check "immediate mode is held" wait_log 5 imm '^holding immediate'
# the poll count is the deadline: ~40 s of awake time
check "at least two suspend/resume cycles in a row" wait_for 40 suspends_at_least 2
say "suspends so far: $(suspends_since_start)"

spawn stopper sh /scenarios/blocker.sh stopper
check "stopper blocks suspend" wait_log 20 stopper '^blocking'
touch "$L/imm.release"
check "immediate mode released" wait_log 5 imm '^released immediate'
c=$(suspends_since_start)
touch "$L/stopper.release"
check "stopper released" wait_log 5 stopper '^released'
mark "immediate off"
# A deliberate wait for nothing to happen: with immediate mode still on, the
# next cycle would follow within one alarm period (5 s).
sleep 8
check "no suspend after immediate mode was released (+$c, now +$(suspends_since_start))" \
    [ "$(suspends_since_start)" = "$c" ]
check "lsusd logged at least two suspends" [ "$(log_count lsusd 'suspended')" -ge 2 ]
check "alarm_test got Now at least twice" [ "$(log_count alarm '^Now')" -ge 2 ]
check "the watcher saw every cycle end" [ "$(log_count watcher 'resumed')" -ge 2 ]

latency_request_to_state "immediate on"
# The first resume after the first real suspend: the watcher's first cycle
# may have ended without one (wakealarmd held the first attempt off).
latency_resume_to_notified 'lsus-mark: watcher: resumed \(cycle [0-9]+\)'
finish
