//! wakealarmd's text protocol on `RUN/wakealarm` (doc/protocol.md §4).
//!
//! ```text
//! client                                  wakealarmd
//! ──────                                  ──────────
//! connect                           ◄──   "0\n"            (suspend blocked)
//! "1700000000\n" (or no newline)    ──►
//!                                   ◄──   "1700000000\n"   (echo; not blocked)
//!                  … the time arrives …
//!                                   ◄──   "Now\n"          (blocked again)
//! a new time, or close              ──►                    (not blocked)
//! "12ab\n"                          ──►
//!                                   ◄──   "Error: …\n", then close
//! ```
//!
//! # What a time is
//!
//! Decimal seconds since the epoch, at most [`MAX_TIME`] (the last second
//! of the year 9999: later dates would not print as a four-digit year, and
//! no RTC keeps them), optionally preceded by `+` and surrounded by spaces, tabs or a
//! `\r` (so `telnet`-style `\r\n` works). A blank line is ignored. A minus
//! sign, any other character, a value above [`MAX_TIME`] or more than
//! [`MAX_LINE`] bytes without a newline is an error: the server replies with
//! one [`error_line`] and closes that connection.
//!
//! # Where a time ends (the one real ambiguity)
//!
//! The original server did one `read()` of up to 19 bytes per readable event
//! and ran `atol()` on it: every `read()` was one whole time, newline or not.
//! Its clients therefore write a time in a single `write()`, some with a
//! newline (`"%lld\n"`, like its own library), some without. A stream socket
//! delivers a small single write whole, but a time written in pieces was
//! misread by the original.
//!
//! This parser keeps those clients working and also assembles a time
//! split across reads:
//! - a newline ends a time at once (pieces are buffered until it comes);
//! - digits without a newline are a complete time when the peer has
//!   written nothing more for [`WRITE_GRACE`] — the end of its write.
//!   The server calls [`TimeParser::end_of_write`] then. A client that
//!   omits the newline gets its echo that much later, which no client of
//!   the original could notice (its library did not even wait for the echo);
//! - a character that can never be part of a time is an error as soon as
//!   it arrives, without waiting for the end of the line.
//!
//! The original parsed letters as `0` (a time long past, so the connection
//! blocked suspend for good without ever hearing `Now`); the port replies
//! with an error instead, as doc/protocol.md §4 says.

use std::time::Duration;

/// Sent by the server on accept (the original's initial "time" 0).
pub const GREETING: &[u8] = b"0\n";
/// Sent by the server when a connection's time has arrived.
pub const NOW: &[u8] = b"Now\n";
/// The word that starts an error reply.
pub const ERROR_WORD: &str = "Error";
/// The longest line (without its newline) the server accepts, in bytes.
pub const MAX_LINE: usize = 20;
/// The largest time accepted: 9999-12-31T23:59:59Z.
pub const MAX_TIME: u64 = crate::args::MAX_EPOCH_SECONDS;
/// How long the peer must stay silent before digits without a newline are
/// taken as a complete time (see the module docs).
pub const WRITE_GRACE: Duration = Duration::from_millis(100);

/// Why a line is not a valid time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Something other than digits (and the allowed blanks and `+`).
    #[error("not a number of seconds: {0:?}")]
    NotANumber(String),
    /// A minus sign: times before the epoch are not allowed.
    #[error("negative time: {0:?}")]
    Negative(String),
    /// A value above [`MAX_TIME`] (also a line of more than
    /// [`MAX_LINE`] digits).
    #[error("time out of range (after the year 9999): {0:?}")]
    Overflow(String),
    /// More than [`MAX_LINE`] bytes without a newline.
    #[error("more than {MAX_LINE} bytes without a newline")]
    TooLong,
}

fn shown(text: &[u8]) -> String {
    String::from_utf8_lossy(text).into_owned()
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

/// Returns the error for a byte that can never appear in a time, if `b`
/// is one; `line` is the text so far, for the message.
fn bad_byte(b: u8, line: &[u8]) -> Option<ParseError> {
    match b {
        b'0'..=b'9' | b'+' => None,
        b if is_blank(b) => None,
        b'-' => Some(ParseError::Negative(shown(line))),
        _ => Some(ParseError::NotANumber(shown(line))),
    }
}

/// Parses one line (without its newline) as a time.
///
/// Returns `Ok(None)` for a blank line, which the server ignores.
///
/// ```
/// use lsus_proto::wakealarm::{parse_time, ParseError};
/// assert_eq!(parse_time(b"1700000000"), Ok(Some(1_700_000_000)));
/// assert_eq!(parse_time(b" +42\r"), Ok(Some(42)));
/// assert_eq!(parse_time(b"  "), Ok(None));
/// assert!(matches!(parse_time(b"-1"), Err(ParseError::Negative(_))));
/// ```
pub fn parse_time(line: &[u8]) -> Result<Option<u64>, ParseError> {
    if let Some(e) = line.iter().find_map(|&b| bad_byte(b, line)) {
        return Err(e);
    }
    if line.len() > MAX_LINE {
        return Err(if line.iter().any(u8::is_ascii_digit) {
            ParseError::Overflow(shown(line))
        } else {
            ParseError::TooLong
        });
    }
    let start = line.iter().position(|&b| !is_blank(b));
    let Some(start) = start else {
        return Ok(None);
    };
    let end = line
        .iter()
        .rposition(|&b| !is_blank(b))
        .map_or(start, |e| e + 1);
    let text = &line[start..end];
    let digits = text.strip_prefix(b"+").unwrap_or(text);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::NotANumber(shown(line)));
    }
    let mut value: u64 = 0;
    for &d in digits {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .filter(|&v| v <= MAX_TIME)
            .ok_or_else(|| ParseError::Overflow(shown(line)))?;
    }
    Ok(Some(value))
}

/// The server's incremental parser of one connection's input.
///
/// Feed it every chunk read with [`TimeParser::push`]; call
/// [`TimeParser::end_of_write`] when the peer has been silent for
/// [`WRITE_GRACE`] while [`TimeParser::pending`] is true. After the first
/// error it yields nothing more (the server closes the connection).
///
/// ```
/// use lsus_proto::wakealarm::TimeParser;
/// let mut p = TimeParser::new();
/// assert!(p.push(b"17000").is_empty());
/// assert_eq!(p.push(b"00000\n5"), vec![Ok(1_700_000_000)]);
/// assert!(p.pending());
/// assert_eq!(p.end_of_write(), Some(Ok(5)));
/// ```
#[derive(Debug, Default)]
pub struct TimeParser {
    partial: Vec<u8>,
    failed: bool,
}

impl TimeParser {
    /// Returns a parser with nothing buffered.
    pub fn new() -> TimeParser {
        TimeParser::default()
    }

    /// Consumes `bytes` and returns the times they complete, in order.
    ///
    /// An `Err` is always the last item; the parser then ignores all
    /// further input.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<u64, ParseError>> {
        let mut out = Vec::new();
        if self.failed {
            return out;
        }
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.partial);
                match parse_time(&line) {
                    Ok(Some(t)) => out.push(Ok(t)),
                    Ok(None) => {}
                    Err(e) => return self.fail(out, e),
                }
                continue;
            }
            self.partial.push(b);
            if let Some(e) = bad_byte(b, &self.partial) {
                return self.fail(out, e);
            }
            if b.is_ascii_digit() {
                // A number already past the largest time is refused at
                // once, not when its newline comes.
                if let Err(e @ ParseError::Overflow(_)) = parse_time(&self.partial) {
                    return self.fail(out, e);
                }
            }
            if self.partial.len() > MAX_LINE {
                // Only digits, `+` and blanks get this far: a number too
                // long for the line is a time out of range.
                let e = if self.partial.iter().any(u8::is_ascii_digit) {
                    ParseError::Overflow(shown(&self.partial))
                } else {
                    ParseError::TooLong
                };
                return self.fail(out, e);
            }
        }
        out
    }

    fn fail(
        &mut self,
        mut out: Vec<Result<u64, ParseError>>,
        e: ParseError,
    ) -> Vec<Result<u64, ParseError>> {
        self.failed = true;
        self.partial.clear();
        out.push(Err(e));
        out
    }

    /// Returns true if and only if text without a newline is buffered that
    /// is more than blanks (so [`TimeParser::end_of_write`] would yield).
    pub fn pending(&self) -> bool {
        !self.failed && self.partial.iter().any(|&b| !is_blank(b))
    }

    /// Takes the buffered text without a newline as a complete time: the
    /// peer's write has ended. Returns `None` if nothing is pending.
    pub fn end_of_write(&mut self) -> Option<Result<u64, ParseError>> {
        if !self.pending() {
            return None;
        }
        let line = std::mem::take(&mut self.partial);
        match parse_time(&line) {
            Ok(t) => t.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Returns the line a client writes to ask for `time`, and the server's
/// echo of it: the decimal value and `\n`.
///
/// ```
/// assert_eq!(lsus_proto::wakealarm::time_line(17), "17\n");
/// ```
pub fn time_line(time: u64) -> String {
    format!("{time}\n")
}

/// Returns the server's one-line reply to invalid input.
///
/// ```
/// use lsus_proto::wakealarm::{error_line, ParseError};
/// assert_eq!(error_line(&ParseError::TooLong), "Error: more than 20 bytes without a newline\n");
/// ```
pub fn error_line(error: &ParseError) -> String {
    // `{:?}` in the messages escapes control characters: one line it stays.
    format!("{ERROR_WORD}: {error}\n")
}

/// One line from the server, as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A number: the greeting `0` right after connecting, else the echo
    /// of the time just written.
    Number(u64),
    /// The time has arrived.
    Now,
    /// The server rejected the input and is closing the connection; the
    /// text after `Error: `.
    Error(String),
    /// Anything else (a newer server, or not wakealarmd at all).
    Other(String),
}

impl Reply {
    /// Parses one line from the server (without its newline).
    ///
    /// ```
    /// use lsus_proto::wakealarm::Reply;
    /// assert_eq!(Reply::parse(b"Now"), Reply::Now);
    /// assert_eq!(Reply::parse(b"42"), Reply::Number(42));
    /// ```
    pub fn parse(line: &[u8]) -> Reply {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        if text == "Now" {
            return Reply::Now;
        }
        if let Some(rest) = text.strip_prefix(ERROR_WORD) {
            return Reply::Error(rest.trim_start_matches(':').trim().to_string());
        }
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = text.parse() {
                return Reply::Number(n);
            }
        }
        Reply::Other(text.to_string())
    }
}

/// The client's parser of the server's lines.
///
/// ```
/// use lsus_proto::wakealarm::{Reply, ReplyParser};
/// let mut p = ReplyParser::new();
/// p.push(b"0\n17");
/// assert_eq!(p.next_reply(), Some(Reply::Number(0)));
/// assert_eq!(p.next_reply(), None);
/// p.push(b"\nNow\n");
/// assert_eq!(p.next_reply(), Some(Reply::Number(17)));
/// assert_eq!(p.next_reply(), Some(Reply::Now));
/// ```
#[derive(Debug, Default)]
pub struct ReplyParser {
    buf: Vec<u8>,
}

/// Longest server line kept whole; longer lines are cut (error texts only).
const MAX_REPLY: usize = 512;

impl ReplyParser {
    /// Returns a parser with nothing buffered.
    pub fn new() -> ReplyParser {
        ReplyParser::default()
    }

    /// Buffers bytes read from the server.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Returns the next complete line, if one is buffered.
    pub fn next_reply(&mut self) -> Option<Reply> {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let line = &line[..i];
                Some(Reply::parse(&line[..line.len().min(MAX_REPLY)]))
            }
            None if self.buf.len() > MAX_REPLY => {
                // A line that never ends: hand over what we have.
                let line: Vec<u8> = std::mem::take(&mut self.buf);
                Some(Reply::parse(&line[..MAX_REPLY]))
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &mut TimeParser, chunks: &[&[u8]]) -> Vec<Result<u64, ParseError>> {
        chunks.iter().flat_map(|c| p.push(c)).collect()
    }

    #[test]
    fn newline_terminated_times_in_one_or_many_reads() {
        let mut p = TimeParser::new();
        assert_eq!(p.push(b"1700000000\n"), vec![Ok(1_700_000_000)]);
        let mut p = TimeParser::new();
        assert_eq!(
            all(&mut p, &[b"1", b"70", b"000000", b"0", b"\n"]),
            vec![Ok(1_700_000_000)]
        );
        assert!(!p.pending());
    }

    #[test]
    fn several_times_in_one_read_come_out_in_order() {
        let mut p = TimeParser::new();
        assert_eq!(p.push(b"5\n\n7\r\n 9 \n"), vec![Ok(5), Ok(7), Ok(9)]);
    }

    #[test]
    fn a_time_without_newline_completes_at_end_of_write() {
        let mut p = TimeParser::new();
        assert!(p.push(b"1700000000").is_empty());
        assert!(p.pending());
        assert_eq!(p.end_of_write(), Some(Ok(1_700_000_000)));
        assert!(!p.pending());
        assert_eq!(p.end_of_write(), None);
        // A newline that follows later is a blank line: ignored.
        assert!(p.push(b"\n").is_empty());
    }

    #[test]
    fn blanks_alone_are_not_pending() {
        let mut p = TimeParser::new();
        assert!(p.push(b"  \r").is_empty());
        assert!(!p.pending());
        assert_eq!(p.end_of_write(), None);
    }

    #[test]
    fn letters_fail_at_once_without_waiting_for_the_newline() {
        let mut p = TimeParser::new();
        let out = p.push(b"12a");
        assert_eq!(out, vec![Err(ParseError::NotANumber("12a".into()))]);
        // Nothing more comes out of a failed parser.
        assert!(p.push(b"5\n").is_empty());
        assert!(!p.pending());
    }

    #[test]
    fn times_before_an_error_are_still_returned() {
        let mut p = TimeParser::new();
        let out = p.push(b"5\nx\n6\n");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], Ok(5));
        assert!(matches!(out[1], Err(ParseError::NotANumber(_))));
    }

    #[test]
    fn negative_overflow_and_malformed_are_errors() {
        assert!(matches!(parse_time(b"-5"), Err(ParseError::Negative(_))));
        assert!(matches!(
            parse_time(b"253402300800"),
            Err(ParseError::Overflow(_))
        ));
        assert_eq!(parse_time(b"253402300799"), Ok(Some(MAX_TIME)));
        assert!(matches!(
            parse_time(b"99999999999999999999999"),
            Err(ParseError::Overflow(_))
        ));
        assert!(matches!(
            parse_time(b"99999999999999999999"),
            Err(ParseError::Overflow(_))
        ));
        for bad in [&b"+"[..], b"1 2", b"12+", b"++1", b"1.5", b"0x10"] {
            assert!(
                matches!(parse_time(bad), Err(ParseError::NotANumber(_))),
                "{bad:?}"
            );
        }
        assert_eq!(parse_time(b"0"), Ok(Some(0)));
        assert_eq!(parse_time(b"000042"), Ok(Some(42)));
    }

    #[test]
    fn more_than_twenty_bytes_without_newline_fails_before_the_newline() {
        let mut p = TimeParser::new();
        assert!(p.push(&[b' '; MAX_LINE]).is_empty());
        assert_eq!(p.push(b" "), vec![Err(ParseError::TooLong)]);
        // A number past the largest time is out of range at its 13th digit.
        let mut p = TimeParser::new();
        assert_eq!(
            p.push(&[b'1'; MAX_LINE]),
            vec![Err(ParseError::Overflow("1".repeat(13)))]
        );
        let mut p = TimeParser::new();
        let out = p.push(b"99999999999999999999999\n");
        assert_eq!(out.len(), 1);
        assert!(error_line(out[0].as_ref().unwrap_err()).starts_with("Error: time out of range"));
        // Exactly twenty blanks and digits with a newline are fine.
        let mut p = TimeParser::new();
        let mut line = vec![b' '; MAX_LINE - 2];
        line.extend_from_slice(b"42\n");
        assert_eq!(p.push(&line), vec![Ok(42)]);
    }

    #[test]
    fn a_minus_sign_is_an_error_at_once() {
        let mut p = TimeParser::new();
        assert_eq!(p.push(b"-"), vec![Err(ParseError::Negative("-".into()))]);
    }

    #[test]
    fn error_lines_are_single_lines() {
        let mut p = TimeParser::new();
        let out = p.push(b"1\x07");
        let Some(Err(e)) = out.last() else {
            panic!("{out:?}")
        };
        let line = error_line(e);
        assert!(line.starts_with("Error: "), "{line}");
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(line.ends_with('\n'));
        assert_eq!(
            Reply::parse(line.trim_end().as_bytes()),
            Reply::Error(e.to_string())
        );
    }

    #[test]
    fn replies_parse_as_the_original_sent_them() {
        assert_eq!(Reply::parse(b"0"), Reply::Number(0));
        assert_eq!(Reply::parse(b"1700000000"), Reply::Number(1_700_000_000));
        assert_eq!(Reply::parse(b"Now"), Reply::Now);
        assert_eq!(Reply::parse(b"Now\r"), Reply::Now);
        assert_eq!(Reply::parse(b"Error: bad"), Reply::Error("bad".into()));
        assert_eq!(Reply::parse(b"hello"), Reply::Other("hello".into()));
        assert_eq!(Reply::parse(b""), Reply::Other(String::new()));
    }

    #[test]
    fn reply_parser_keeps_what_follows_a_line() {
        let mut p = ReplyParser::new();
        p.push(b"0\n5\nNo");
        assert_eq!(p.next_reply(), Some(Reply::Number(0)));
        assert_eq!(p.next_reply(), Some(Reply::Number(5)));
        assert_eq!(p.next_reply(), None);
        p.push(b"w\n");
        assert_eq!(p.next_reply(), Some(Reply::Now));
        p.push(&[b'x'; 600]);
        assert!(matches!(p.next_reply(), Some(Reply::Other(s)) if s.len() == MAX_REPLY));
        assert_eq!(p.next_reply(), None);
    }

    #[test]
    fn constants_match_the_wire() {
        assert_eq!(GREETING, b"0\n");
        assert_eq!(NOW, b"Now\n");
        assert_eq!(time_line(1_700_000_000), "1700000000\n");
    }
}
