//! lsused's wire protocol on `RUN/registration`: single bytes, and
//! descriptors passed with `SCM_RIGHTS`.
//!
//! ```text
//! client                                  lsused
//! ──────                                  ──────
//! connect                          ◄────  A            (accepted)
//! W + SCM_RIGHTS [fd, fd, …]       ────►               (register them)
//!                                  ◄────  A            (registered)
//!            … suspend imminent, one of the client's fds is readable …
//!                                  ◄────  S            (handle it)
//! drain the fds, then R            ────►               (ready)
//!            … suspend, resume (or abort) …
//!                                  ◄────  A            (awake again)
//! any other byte, or EOF           ────►               (client dropped)
//! ```
//!
//! The daemon, libsus and the tests all speak it through this module:
//! the message types ([`ServerMessage`], [`ClientMessage`]), sending a
//! byte ([`send_byte`]) or a `W` with descriptors ([`send_watch`]), and
//! receiving one byte with whatever descriptors came with it
//! ([`RecvBuffer::recv`]).

use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};

/// The most descriptors one `W` can carry: the kernel's `SCM_MAX_FD`.
///
/// A client with more descriptors sends several `W` messages.
pub const MAX_FDS_PER_WATCH: usize = 253;

/// A byte lsused sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMessage {
    /// `A`: the connection was accepted, a `W` was processed, or (after an
    /// `S`) the system is awake again.
    Ack,
    /// `S`: suspend is imminent and one of the client's descriptors is
    /// readable; handle it, then answer [`ClientMessage::Ready`].
    Suspend,
}

impl ServerMessage {
    /// Returns the byte on the wire.
    pub const fn byte(self) -> u8 {
        match self {
            ServerMessage::Ack => b'A',
            ServerMessage::Suspend => b'S',
        }
    }

    /// Returns the message for `byte`, or `None` if the protocol has none.
    pub const fn from_byte(byte: u8) -> Option<ServerMessage> {
        match byte {
            b'A' => Some(ServerMessage::Ack),
            b'S' => Some(ServerMessage::Suspend),
            _ => None,
        }
    }
}

/// A byte a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMessage {
    /// `W`: watch the descriptors passed with this byte.
    Watch,
    /// `R`: the wake event is handled; lsused may let the suspend go on.
    Ready,
}

impl ClientMessage {
    /// Returns the byte on the wire.
    pub const fn byte(self) -> u8 {
        match self {
            ClientMessage::Watch => b'W',
            ClientMessage::Ready => b'R',
        }
    }

    /// Returns the message for `byte`, or `None` if the protocol has none
    /// (lsused drops a client that sends such a byte).
    pub const fn from_byte(byte: u8) -> Option<ClientMessage> {
        match byte {
            b'W' => Some(ClientMessage::Watch),
            b'R' => Some(ClientMessage::Ready),
            _ => None,
        }
    }
}

/// Sending or receiving on the registration socket failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// A `W` must carry between 1 and [`MAX_FDS_PER_WATCH`] descriptors.
    #[error("a W message carries 1 to {MAX_FDS_PER_WATCH} descriptors, not {0}")]
    FdCount(usize),
    /// The kernel could not pass all the descriptors that came with a
    /// message (`MSG_CTRUNC`: usually our descriptor table is full). Those
    /// that did arrive were closed.
    #[error("descriptors lost in transit (MSG_CTRUNC); {closed} that arrived were closed")]
    Truncated {
        /// How many descriptors arrived and were closed again.
        closed: usize,
    },
    /// A system call failed (`WouldBlock` when nothing is there yet).
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl RegistrationError {
    /// Returns true if and only if the error only means "nothing to read
    /// (or no room to write) right now".
    pub fn is_would_block(&self) -> bool {
        matches!(self, RegistrationError::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

fn retry_eintr<T>(mut f: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(Errno::EINTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// Sends one byte on `sock`.
///
/// Never raises SIGPIPE (`MSG_NOSIGNAL`): a peer that went away is an
/// `EPIPE` error. On a non-blocking socket a full buffer is `WouldBlock`.
pub fn send_byte(sock: BorrowedFd<'_>, byte: u8) -> io::Result<()> {
    let n =
        retry_eintr(|| nix::sys::socket::send(sock.as_raw_fd(), &[byte], MsgFlags::MSG_NOSIGNAL))?;
    if n == 1 {
        Ok(())
    } else {
        Err(io::ErrorKind::WriteZero.into())
    }
}

/// Sends `W` with `fds` attached (`SCM_RIGHTS`).
///
/// Fails with [`RegistrationError::FdCount`] for no descriptors or more
/// than [`MAX_FDS_PER_WATCH`]. lsused keeps its own copies: the caller may
/// close its descriptors afterwards.
pub fn send_watch<F: AsFd>(sock: BorrowedFd<'_>, fds: &[F]) -> Result<(), RegistrationError> {
    if fds.is_empty() || fds.len() > MAX_FDS_PER_WATCH {
        return Err(RegistrationError::FdCount(fds.len()));
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_fd().as_raw_fd()).collect();
    let byte = [ClientMessage::Watch.byte()];
    let iov = [IoSlice::new(&byte)];
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    let n = retry_eintr(|| {
        sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None)
    })?;
    if n == 1 {
        Ok(())
    } else {
        Err(RegistrationError::Io(io::ErrorKind::WriteZero.into()))
    }
}

/// What [`RecvBuffer::recv`] got.
#[derive(Debug)]
pub enum Received {
    /// One byte, and the descriptors that came with it (usually none;
    /// one or more with `W`). They are close-on-exec.
    Byte {
        /// The byte.
        byte: u8,
        /// The descriptors passed with it.
        fds: Vec<OwnedFd>,
    },
    /// The peer closed its end (or shut down writing).
    Eof,
}

/// A reusable control-message buffer big enough for one message with
/// [`MAX_FDS_PER_WATCH`] descriptors.
///
/// Receiving uses it instead of allocating per message.
pub struct RecvBuffer {
    space: Vec<MaybeUninit<u8>>,
}

impl std::fmt::Debug for RecvBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBuffer")
            .field("bytes", &self.space.len())
            .finish()
    }
}

impl Default for RecvBuffer {
    fn default() -> RecvBuffer {
        RecvBuffer::new()
    }
}

impl RecvBuffer {
    /// Allocates a buffer for one message with up to
    /// [`MAX_FDS_PER_WATCH`] descriptors.
    pub fn new() -> RecvBuffer {
        RecvBuffer::with_room_for(MAX_FDS_PER_WATCH)
    }

    fn with_room_for(fds: usize) -> RecvBuffer {
        RecvBuffer {
            space: vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds))],
        }
    }

    /// Receives one byte from `sock` with the descriptors attached to it.
    ///
    /// Never blocks (`MSG_DONTWAIT`): nothing to read is an error for which
    /// [`RegistrationError::is_would_block`] is true. When descriptors were
    /// lost on the way (`MSG_CTRUNC`), those that did arrive are closed and
    /// [`RegistrationError::Truncated`] is returned: the peer's message can
    /// no longer be honoured.
    ///
    /// Through `rustix::net::recvmsg`, not nix's: with `MSG_CTRUNC` set,
    /// nix 0.29's `RecvMsg::cmsgs()` returns `ENOBUFS` instead of the
    /// control messages, so the descriptors the kernel did install could
    /// not be reached and would leak. rustix hands them over as `OwnedFd`
    /// and closes any left unread when the buffer is dropped.
    pub fn recv(&mut self, sock: BorrowedFd<'_>) -> Result<Received, RegistrationError> {
        let mut byte = [0u8; 1];
        let mut control = RecvAncillaryBuffer::new(&mut self.space);
        let msg = loop {
            let mut iov = [IoSliceMut::new(&mut byte)];
            match recvmsg(
                sock,
                &mut iov,
                &mut control,
                RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
            ) {
                Err(rustix::io::Errno::INTR) => continue,
                other => break other.map_err(io::Error::from)?,
            }
        };
        let fds: Vec<OwnedFd> = control
            .drain()
            .filter_map(|m| match m {
                RecvAncillaryMessage::ScmRights(fds) => Some(fds),
                _ => None,
            })
            .flatten()
            .collect();
        if msg.flags.contains(ReturnFlags::CTRUNC) {
            let closed = fds.len();
            drop(fds);
            return Err(RegistrationError::Truncated { closed });
        }
        if msg.bytes == 0 {
            return Ok(Received::Eof);
        }
        Ok(Received::Byte { byte: byte[0], fds })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe().unwrap()
    }

    #[test]
    fn bytes_are_those_of_the_original() {
        assert_eq!(ServerMessage::Ack.byte(), b'A');
        assert_eq!(ServerMessage::Suspend.byte(), b'S');
        assert_eq!(ClientMessage::Watch.byte(), b'W');
        assert_eq!(ClientMessage::Ready.byte(), b'R');
        for m in [ServerMessage::Ack, ServerMessage::Suspend] {
            assert_eq!(ServerMessage::from_byte(m.byte()), Some(m));
        }
        for m in [ClientMessage::Watch, ClientMessage::Ready] {
            assert_eq!(ClientMessage::from_byte(m.byte()), Some(m));
        }
        assert_eq!(ClientMessage::from_byte(b'A'), None);
        assert_eq!(ClientMessage::from_byte(b'w'), None);
        assert_eq!(ServerMessage::from_byte(b'R'), None);
        assert_eq!(ServerMessage::from_byte(0), None);
    }

    #[test]
    fn watch_carries_working_descriptors() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, mut w) = {
            let (r, w) = pipe();
            (r, std::fs::File::from(w))
        };
        send_watch(a.as_fd(), &[r.as_fd()]).unwrap();
        drop(r);
        let mut buf = RecvBuffer::new();
        let Received::Byte { byte, fds } = buf.recv(b.as_fd()).unwrap() else {
            panic!("expected a byte");
        };
        assert_eq!(byte, b'W');
        assert_eq!(fds.len(), 1);
        w.write_all(b"x").unwrap();
        let mut got = [0u8; 1];
        std::fs::File::from(fds.into_iter().next().unwrap())
            .read_exact(&mut got)
            .unwrap();
        assert_eq!(&got, b"x");
        // Nothing else is there.
        assert!(buf.recv(b.as_fd()).unwrap_err().is_would_block());
    }

    #[test]
    fn the_maximum_fits_in_one_message_and_one_more_is_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let pipes: Vec<_> = (0..MAX_FDS_PER_WATCH / 2 + 1).map(|_| pipe()).collect();
        let fds: Vec<BorrowedFd<'_>> = pipes
            .iter()
            .flat_map(|(r, w)| [r.as_fd(), w.as_fd()])
            .take(MAX_FDS_PER_WATCH)
            .collect();
        send_watch(a.as_fd(), &fds).unwrap();
        let Received::Byte { byte, fds: got } = RecvBuffer::new().recv(b.as_fd()).unwrap() else {
            panic!("expected a byte");
        };
        assert_eq!(byte, b'W');
        assert_eq!(got.len(), MAX_FDS_PER_WATCH);
        let too_many: Vec<_> = pipes
            .iter()
            .flat_map(|(r, w)| [r.as_fd(), w.as_fd()])
            .collect();
        assert!(matches!(
            send_watch(a.as_fd(), &too_many),
            Err(RegistrationError::FdCount(n)) if n == MAX_FDS_PER_WATCH + 1
        ));
        let none: [BorrowedFd<'_>; 0] = [];
        assert!(matches!(
            send_watch(a.as_fd(), &none),
            Err(RegistrationError::FdCount(0))
        ));
    }

    #[test]
    fn consecutive_messages_keep_their_own_descriptors() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r1, _w1) = pipe();
        let (r2, _w2) = pipe();
        let (r3, _w3) = pipe();
        send_watch(a.as_fd(), &[r1.as_fd()]).unwrap();
        send_byte(a.as_fd(), b'R').unwrap();
        send_watch(a.as_fd(), &[r2.as_fd(), r3.as_fd()]).unwrap();
        let mut buf = RecvBuffer::new();
        let mut got = Vec::new();
        for _ in 0..3 {
            match buf.recv(b.as_fd()).unwrap() {
                Received::Byte { byte, fds } => got.push((byte, fds.len())),
                Received::Eof => panic!("early EOF"),
            }
        }
        assert_eq!(got, vec![(b'W', 1), (b'R', 0), (b'W', 2)]);
    }

    #[test]
    fn eof_after_shutdown_and_send_to_closed_peer_is_an_error() {
        let (a, b) = UnixStream::pair().unwrap();
        a.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(matches!(
            RecvBuffer::new().recv(b.as_fd()).unwrap(),
            Received::Eof
        ));
        drop(b);
        // No SIGPIPE: the test process would die here without MSG_NOSIGNAL.
        let err = send_byte(a.as_fd(), b'R').unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn lost_descriptors_are_reported_and_those_received_closed() {
        let (a, b) = UnixStream::pair().unwrap();
        let pipes: Vec<_> = (0..16).map(|_| pipe()).collect();
        let fds: Vec<_> = pipes.iter().map(|(r, _)| r.as_fd()).collect();
        send_watch(a.as_fd(), &fds).unwrap();
        // Room for one (the alignment slack and the kernel's rounding make
        // it a few): the rest is cut off. That nothing leaks is checked by
        // tests/truncated_control.rs, in a process of its own.
        match RecvBuffer::with_room_for(1).recv(b.as_fd()) {
            Err(RegistrationError::Truncated { closed }) => assert!((1..16).contains(&closed)),
            other => panic!("expected truncation, got {other:?}"),
        }
    }

    #[test]
    fn received_descriptors_are_close_on_exec() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, _w) = pipe();
        send_watch(a.as_fd(), &[r.as_fd()]).unwrap();
        let Received::Byte { fds, .. } = RecvBuffer::new().recv(b.as_fd()).unwrap() else {
            panic!("expected a byte");
        };
        let flags = nix::fcntl::fcntl(fds[0].as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert!(
            nix::fcntl::FdFlag::from_bits_truncate(flags).contains(nix::fcntl::FdFlag::FD_CLOEXEC)
        );
    }
}
