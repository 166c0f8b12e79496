# Scenario 4: lsused; a FIFO registered by event_test, readable before the request.
# event_test polls its FIFO itself and would drain it at once, so to have
# input waiting at "suspend imminent" (as when a modem line arrives just as
# the machine decides to sleep) the client is stopped (SIGSTOP) while the
# FIFO is written and the request made. lsused then finds the descriptor
# readable and sends S; lsusd must not write the state while the client has
# not answered. The client is continued; it reads the input, answers R, the
# guest suspends (RTC armed by this script), and after resume the client
# gets A ("awake").
. /scenarios/lib.sh
need_bins lsusd lsused request-suspend event_test

start_lsusd
start_lsused -v
mkfifo /tmp/ev
spawn ev event_test /tmp/ev
check "event_test registered its FIFO" wait_log 10 ev '^registered'
check "lsused logged the registration" wait_log 5 lsused 'registered 1 descriptor'

evpid=$(pid_of ev)
kill -STOP "$evpid"
printf 'hello\n' >/tmp/ev
rtc_arm 6
mark "request r1"
spawn r1 request-suspend --run-dir "$RUN" --timeout 40
check "lsused sent S to the client" wait_log 10 lsused 'sent S to 1 client'
sleep 1
check "lsusd waits for the answer: no suspend while the client is stopped" [ -z "$(kts 'PM: suspend entry')" ]
check "request-suspend still waiting" alive r1
mark "client continued"
kill -CONT "$evpid"
request_ended r1
check "request-suspend exits 0 (got $RC)" [ "$RC" = 0 ]
check "exactly one suspend counted (+$(suspends_since_start))" [ "$(suspends_since_start)" = 1 ]
c=$(kts 'lsus-mark: client continued')
e=$(kts 'PM: suspend entry')
check "the suspend (${e:-none}) came after the client was let go (${c:-none})" \
    awk -v c="${c:-x}" -v e="${e:-x}" 'BEGIN { exit !(c != "x" && e != "x" && e + 0 > c + 0) }'
check "event_test read the input" wait_log 5 ev 'read 6 bytes: "hello'
check "event_test got S" log_has ev '^suspend: handling wake event'
check "lsused got the R" wait_log 5 lsused 'answered R|every S answered .*1 R'
check "event_test got A after resume" wait_log 10 ev '^awake'
check "event_test printed S before A" before "$(line_of ev '^suspend: handling')" "$(line_of ev '^awake')"
check "lsused sent A after resume" wait_log 5 lsused 'sent A to 1 client'

latency_request_to_state "client continued" # the request waited 1 s on purpose
latency_resume_to_notified 'lsus-out ev: awake'
finish
