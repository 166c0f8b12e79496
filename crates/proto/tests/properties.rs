//! Property tests of every parser and wire format in lsus-proto (issue #15,
//! point 1): whatever the input, each ends in a value or a clear error,
//! never a panic, a hang or an unbounded allocation; what is written can be
//! read back.
//!
//! `cargo test` runs each property at proptest's default case count (256);
//! `tests/fuzz/run --long` sets `PROPTEST_CASES` to at least 1,000,000 per
//! target (proptest reads that variable).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use lsus_proto::outcome::Record;
use lsus_proto::registration::{self, Received, RecvBuffer, MAX_FDS_PER_WATCH};
use lsus_proto::status::{LsusedStatus, WakealarmdStatus};
use lsus_proto::wakealarm::{self, parse_time, Reply, ReplyParser, TimeParser};
use proptest::prelude::*;

/// Words an outcome record or history line is made of, valid and not.
fn record_word() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "seq", "time", "outcome", "seconds", "pids", "missing", "errno", "woke",
        ])
        .prop_map(str::to_string),
        "[a-z]{1,6}",
    ];
    let value = prop_oneof![
        Just("suspended".to_string()),
        Just("blocked".to_string()),
        Just("dry-run".to_string()),
        Just("aborted".to_string()),
        Just("withdrawn".to_string()),
        Just("wakeup-event".to_string()),
        Just("write-failed".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-1".to_string()),
        Just("1e400".to_string()),
        Just("18446744073709551616".to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| x.to_string()),
        "[0-9]{1,5}(,[0-9]{0,5}){0,3}",
        "[ -~]{0,12}",
    ];
    (key, value).prop_map(|(k, v)| format!("{k}={v}"))
}

/// A line with the three keys every record has, valid, among other words
/// in any order.
fn plausible_record_line() -> impl Strategy<Value = String> {
    (
        any::<u64>(),
        0u64..4_000_000_000,
        0u32..1000,
        prop::sample::select(vec![
            "suspended",
            "blocked",
            "dry-run",
            "aborted",
            "withdrawn",
            "wakeup-event",
            "write-failed",
        ]),
        proptest::collection::vec(record_word(), 0..5),
    )
        .prop_flat_map(|(seq, secs, ms, word, extra)| {
            let mut words = vec![
                format!("seq={seq}"),
                format!("time={secs}.{ms:03}"),
                format!("outcome={word}"),
            ];
            words.extend(extra);
            Just(words).prop_shuffle()
        })
        .prop_map(|w| w.join(" "))
}

/// An outcome line: plausible records, loose words, or raw text.
fn record_line() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => plausible_record_line(),
        2 => proptest::collection::vec(record_word(), 0..8).prop_map(|w| w.join(" ")),
        1 => "\\PC{0,80}",
    ]
}

/// The record property is not vacuous: a good share of the lines it is
/// given do parse.
#[test]
fn most_generated_record_lines_parse() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = record_line();
    let parsed = (0..1000)
        .filter(|_| {
            let line = strategy.new_tree(&mut runner).unwrap().current();
            line.parse::<Record>().is_ok()
        })
        .count();
    assert!(parsed > 150, "only {parsed} of 1000 generated lines parse");
}

proptest! {
    /// A record that parses prints as a line that parses to the same
    /// record, and printing is then a fixed point.
    #[test]
    fn outcome_records_parse_or_fail_and_read_back(line in record_line()) {
        if let Ok(record) = line.parse::<Record>() {
            let printed = record.to_string();
            prop_assert!(printed.ends_with('\n'));
            prop_assert_eq!(printed.matches('\n').count(), 1);
            let again: Record = printed
                .parse()
                .map_err(|e| TestCaseError::fail(format!("{printed:?} does not parse: {e}")))?;
            prop_assert_eq!(again.to_string(), printed);
            prop_assert_eq!(again.seq, record.seq);
            prop_assert_eq!(again.outcome.word(), record.outcome.word());
        }
    }

    /// Arbitrary bytes as a status file: a value or an error, and a value
    /// prints as text that parses to the same value.
    #[test]
    fn status_lines_parse_or_fail_and_read_back(text in prop_oneof![
        "\\PC{0,60}",
        "(clients|descriptors|connections|pending|blocking|next|tardy_total|tardy)=[0-9a-z:,-]{0,21}( (clients|descriptors|connections|pending|blocking|next|tardy_total|tardy)=[0-9a-z:,-]{0,21}){0,5}\n?",
    ]) {
        if let Ok(s) = text.parse::<LsusedStatus>() {
            prop_assert_eq!(s.to_string().parse::<LsusedStatus>().ok(), Some(s.clone()));
        }
        if let Ok(s) = text.parse::<WakealarmdStatus>() {
            prop_assert_eq!(s.to_string().parse::<WakealarmdStatus>().ok(), Some(s));
        }
    }

    /// Every well-formed status reads back as itself.
    #[test]
    fn status_values_read_back(
        clients in any::<usize>(),
        descriptors in any::<usize>(),
        connections in any::<usize>(),
        pending in any::<usize>(),
        blocking in any::<usize>(),
        next in proptest::option::of(any::<u64>()),
    ) {
        let l = LsusedStatus { clients, descriptors, ..LsusedStatus::default() };
        prop_assert_eq!(l.to_string().parse::<LsusedStatus>().ok(), Some(l));
        let w = WakealarmdStatus { connections, pending, blocking, next };
        prop_assert_eq!(w.to_string().parse::<WakealarmdStatus>().ok(), Some(w));
    }

    /// Any line is a time, blank, or an error; a time is the number its
    /// digits say.
    #[test]
    fn a_time_line_is_a_time_blank_or_an_error(line in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "[ \t]{0,3}\\+?[0-9]{1,25}[ \t\r]{0,3}".prop_map(String::into_bytes),
    ]) {
        if let Ok(Some(t)) = parse_time(&line) {
            let digits: String = line.iter().filter(|b| b.is_ascii_digit()).map(|&b| b as char).collect();
            prop_assert_eq!(digits.trim_start_matches('0').parse::<u64>().unwrap_or(0), t);
        }
    }

    /// The server's parser gives the same times however the bytes are cut
    /// into reads: split at every byte, or at random points.
    #[test]
    fn times_split_across_reads_at_any_byte_read_the_same(
        times in proptest::collection::vec(0u64..=4_000_000_000, 1..5),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let text: Vec<u8> = times.iter().flat_map(|t| wakealarm::time_line(*t).into_bytes()).collect();
        // One byte per read.
        let mut p = TimeParser::new();
        let mut got = Vec::new();
        for b in &text {
            got.extend(p.push(std::slice::from_ref(b)));
        }
        prop_assert_eq!(got.iter().cloned().collect::<Result<Vec<_>, _>>().ok(), Some(times.clone()));
        prop_assert!(!p.pending());
        // Random cuts.
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(text.len() + 1)).collect();
        at.sort_unstable();
        let mut p = TimeParser::new();
        let mut got = Vec::new();
        let mut from = 0;
        for &to in at.iter().chain(std::iter::once(&text.len())) {
            got.extend(p.push(&text[from..to]));
            from = to;
        }
        prop_assert_eq!(got.into_iter().collect::<Result<Vec<_>, _>>().ok(), Some(times));
    }

    /// Hostile input: an error is always the last item, nothing follows
    /// it, and the parser never buffers more than a line's worth.
    #[test]
    fn hostile_bytes_end_in_values_or_one_final_error(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..12),
    ) {
        let mut p = TimeParser::new();
        let mut failed = false;
        for c in &chunks {
            let out = p.push(c);
            prop_assert!(!failed || out.is_empty(), "output after the error");
            if let Some(pos) = out.iter().position(Result::is_err) {
                prop_assert_eq!(pos, out.len() - 1);
                failed = true;
            }
        }
        if let Some(Err(e)) = p.end_of_write() {
            prop_assert!(!wakealarm::error_line(&e).is_empty());
        }
    }

    /// The client's side: replies parse whatever arrives.
    #[test]
    fn replies_parse_whatever_arrives(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..10),
    ) {
        let mut p = ReplyParser::new();
        for c in &chunks {
            p.push(c);
            while let Some(r) = p.next_reply() {
                if let Reply::Number(n) = r {
                    prop_assert_eq!(Reply::parse(n.to_string().as_bytes()), Reply::Number(n));
                }
            }
        }
    }
}

/// One message of the registration protocol as a hostile client sends it.
#[derive(Debug, Clone)]
struct Msg {
    byte: u8,
    fds: usize,
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        prop_oneof![Just(b'W'), Just(b'R'), any::<u8>()],
        prop_oneof![4 => Just(0usize), 4 => 1usize..4, 1 => Just(MAX_FDS_PER_WATCH)],
    )
        .prop_map(|(byte, fds)| Msg { byte, fds })
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Each case makes a socket pair and up to a few hundred
        // descriptors: fewer cases than the pure parsers (the long run
        // still sets PROPTEST_CASES).
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    /// lsused's byte protocol over a real socket pair: every byte arrives
    /// in order with exactly the descriptors sent with it (none, one or
    /// more, with `W`, `R` or any other byte), nothing is lost or leaked,
    /// and the end reads as EOF.
    #[test]
    fn registration_bytes_and_descriptors_arrive_exactly(msgs in proptest::collection::vec(msg(), 0..12)) {
        let before = open_fds();
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut rx = RecvBuffer::new();
        let mut got = Vec::new();
        for m in &msgs {
            let (r, w) = nix::unistd::pipe().unwrap();
            let fds: Vec<&OwnedFd> = (0..m.fds).map(|_| &r).collect();
            if m.fds == 0 {
                registration::send_byte(a.as_fd(), m.byte).unwrap();
            } else {
                send_with(&a, m.byte, &fds);
            }
            drop((r, w));
            match rx.recv(b.as_fd()) {
                Ok(Received::Byte { byte, fds }) => {
                    for fd in &fds {
                        prop_assert!(nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).is_ok());
                    }
                    got.push((byte, fds.len()));
                }
                other => prop_assert!(false, "{other:?} for {m:?}"),
            }
        }
        drop(a);
        prop_assert!(matches!(rx.recv(b.as_fd()), Ok(Received::Eof)));
        let want: Vec<(u8, usize)> = msgs.iter().map(|m| (m.byte, m.fds)).collect();
        prop_assert_eq!(got, want);
        drop(b);
        prop_assert_eq!(open_fds(), before, "a descriptor leaked");
    }
}

/// Sends `byte` with `fds` whatever the byte (the library's `send_watch`
/// only sends `W`): a hostile client's message.
fn send_with(sock: &UnixStream, byte: u8, fds: &[&OwnedFd]) {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let iov = [std::io::IoSlice::new(std::slice::from_ref(&byte))];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).unwrap();
}

/// Zero bytes with descriptors cannot be sent on a stream socket; an empty
/// read is EOF and nothing else.
#[test]
fn nothing_but_eof_after_the_peer_closes() {
    let (a, b) = UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    let mut rx = RecvBuffer::new();
    assert!(rx.recv(b.as_fd()).unwrap_err().is_would_block());
    drop(a);
    assert!(matches!(rx.recv(b.as_fd()), Ok(Received::Eof)));
}
