//! One client connection: its input parser and its output queue.
//!
//! Replies are a few bytes, but a client that writes times without reading
//! the echoes would eventually fill its socket; replies then wait in a
//! small queue (flushed when the socket is writable), and a client whose
//! queue grows past [`MAX_QUEUED`] is dropped rather than allowed to use
//! the daemon's memory.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use lsus_proto::wakealarm::{ParseError, TimeParser};

use crate::schedule::ConnId;

/// Bytes of replies a client may leave unread before it is dropped.
pub const MAX_QUEUED: usize = 64 * 1024;
/// Reads per readable event, so one chatty client cannot starve the others.
const READS_PER_EVENT: usize = 8;

/// What a client sent in one readable event.
#[derive(Debug, Default)]
pub struct Input {
    /// Complete times, in order.
    pub times: Vec<u64>,
    /// Invalid input: reply with the error and close.
    pub error: Option<ParseError>,
    /// The client closed its end (or the connection broke).
    pub closed: bool,
}

/// The client stopped reading its replies, or its socket failed.
#[derive(Debug)]
pub struct SendFailed(pub io::Error);

/// A connected client.
#[derive(Debug)]
pub struct Client {
    id: ConnId,
    stream: UnixStream,
    parser: TimeParser,
    queued: Vec<u8>,
    /// Since when digits without a newline wait (see `lsus_proto::wakealarm`).
    partial_since: Option<Instant>,
}

impl Client {
    /// Wraps an accepted, non-blocking stream.
    pub fn new(id: ConnId, stream: UnixStream) -> Client {
        Client {
            id,
            stream,
            parser: TimeParser::new(),
            queued: Vec::new(),
            partial_since: None,
        }
    }

    /// Returns the connection's number.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Reads what the client sent, without blocking.
    pub fn read_input(&mut self, now: Instant) -> Input {
        let mut input = Input::default();
        let mut buf = [0u8; 512];
        let mut got_data = false;
        for _ in 0..READS_PER_EVENT {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    input.closed = true;
                    break;
                }
                Ok(n) => {
                    got_data = true;
                    for item in self.parser.push(&buf[..n]) {
                        match item {
                            Ok(t) => input.times.push(t),
                            Err(e) => input.error = Some(e),
                        }
                    }
                    if input.error.is_some() {
                        return input;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("connection {}: read failed: {e}", self.id);
                    input.closed = true;
                    break;
                }
            }
        }
        if got_data {
            self.partial_since = self.parser.pending().then_some(now);
        }
        input
    }

    /// Returns since when digits without a newline have been waiting.
    pub fn partial_since(&self) -> Option<Instant> {
        self.partial_since
    }

    /// Takes waiting digits without a newline as a complete time: the
    /// client's write has ended.
    pub fn end_of_write(&mut self) -> Option<Result<u64, ParseError>> {
        self.partial_since = None;
        self.parser.end_of_write()
    }

    /// Queues `bytes` and writes as much as the socket takes.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), SendFailed> {
        self.queued.extend_from_slice(bytes);
        self.flush()?;
        if self.queued.len() > MAX_QUEUED {
            return Err(SendFailed(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the client does not read its replies",
            )));
        }
        Ok(())
    }

    /// Writes queued replies until the socket would block.
    pub fn flush(&mut self) -> Result<(), SendFailed> {
        while !self.queued.is_empty() {
            match self.stream.write(&self.queued) {
                Ok(0) => return Err(SendFailed(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.queued.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SendFailed(e)),
            }
        }
        Ok(())
    }

    /// Writes `line` once, without queueing: the last words before a close.
    pub fn send_last(&mut self, line: &[u8]) {
        // Whatever is still queued goes first; failures do not matter now.
        let _ = self.flush();
        let _ = self.stream.write(line);
    }

    /// Returns true if and only if replies wait for the socket to drain.
    pub fn wants_write(&self) -> bool {
        !self.queued.is_empty()
    }
}

impl AsFd for Client {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Client, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (Client::new(7, a), b)
    }

    #[test]
    fn reads_times_and_notes_partial_input() {
        let (mut c, mut peer) = pair();
        peer.write_all(b"100\n20").unwrap();
        let t0 = Instant::now();
        let input = c.read_input(t0);
        assert_eq!(input.times, vec![100]);
        assert!(!input.closed && input.error.is_none());
        assert_eq!(c.partial_since(), Some(t0));
        assert_eq!(c.end_of_write(), Some(Ok(20)));
        assert_eq!(c.partial_since(), None);
        drop(peer);
        assert!(c.read_input(Instant::now()).closed);
    }

    #[test]
    fn invalid_input_is_reported() {
        let (mut c, mut peer) = pair();
        peer.write_all(b"5\nabc\n").unwrap();
        let input = c.read_input(Instant::now());
        assert_eq!(input.times, vec![5]);
        assert!(matches!(input.error, Some(ParseError::NotANumber(_))));
    }

    #[test]
    fn a_client_that_never_reads_is_dropped() {
        let (mut c, _peer) = pair();
        let line = [b'x'; 1024];
        let mut failed = false;
        for _ in 0..10_000 {
            if c.send(&line).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }

    #[test]
    fn queued_replies_are_flushed_in_order() {
        let (mut c, mut peer) = pair();
        c.send(b"0\n").unwrap();
        c.send(b"Now\n").unwrap();
        assert!(!c.wants_write());
        let mut buf = [0u8; 16];
        let n = peer.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"0\nNow\n");
    }
}
