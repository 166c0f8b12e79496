//! Ctrl-C and friends on request-suspend (issue #20, point 1), through
//! the real binaries: the signal arrives while lsusd waits for a watcher.

mod harness;

use harness::Env;
use libsus::{Outcome, WatchEvent, Watcher};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[test]
fn sigint_sigterm_and_sighup_withdraw_the_request_and_say_so() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    // A watcher that answers only when the test says: lsusd waits for it
    // while the signal arrives.
    let mut slow = Watcher::open_in(&env.run).unwrap();
    for (sig, code, word) in [
        (Signal::SIGINT, 130, "SIGINT"),
        (Signal::SIGTERM, 143, "SIGTERM"),
        (Signal::SIGHUP, 129, "SIGHUP"),
    ] {
        let before = env.outcome_seq();
        let req = env.request_spawn();
        assert_eq!(slow.wait().unwrap(), WatchEvent::SuspendImminent);
        kill(Pid::from_raw(req.id() as i32), sig).unwrap();
        let out = req.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{word}: {err}");
        assert!(
            err.contains(word) && err.contains("the request was withdrawn"),
            "{word}: {err}"
        );
        assert!(!env.path("request").exists(), "{word}\n{}", env.dump());
        slow.ready().unwrap();
        assert_eq!(slow.wait().unwrap(), WatchEvent::Resumed);
        env.wait_for("the attempt's record", harness::DEADLINE, || {
            env.outcome_seq() > before
        });
        assert_eq!(env.outcome().unwrap().outcome, Outcome::Withdrawn, "{word}");
        assert_eq!(env.state(), "", "{word}: the machine did not suspend");
    }
}
