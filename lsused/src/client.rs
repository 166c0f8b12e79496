//! One connected client: its socket, who it is, and its descriptors.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use lsus_proto::registration::{
    send_byte, ClientMessage, Received, RecvBuffer, RegistrationError, ServerMessage,
};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

/// A client's number, unique for the daemon's life (for logs and maps).
pub type ClientId = u64;

/// Who is at the other end of a connection, as of its connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The process ID (`SO_PEERCRED`), 0 if unknown.
    pub pid: i32,
    /// The user ID, `u32::MAX` if unknown.
    pub uid: u32,
    /// The command name from `/proc/PID/comm`, `?` if unknown.
    pub comm: String,
}

impl Peer {
    /// Returns who is connected on `sock`.
    ///
    /// The command name is read now: by the time a client needs naming in
    /// a log the PID may belong to someone else.
    pub fn of(sock: &UnixStream) -> Peer {
        match getsockopt(sock, PeerCredentials) {
            Ok(cred) => Peer {
                pid: cred.pid(),
                uid: cred.uid(),
                comm: comm_of(cred.pid()),
            },
            Err(_) => Peer {
                pid: 0,
                uid: u32::MAX,
                comm: "?".into(),
            },
        }
    }
}

/// Returns `/proc/PID/comm` without its newline, or `?`.
fn comm_of(pid: i32) -> String {
    u32::try_from(pid)
        .ok()
        .filter(|&p| p > 0)
        .and_then(lsus_sys::process::comm)
        .unwrap_or_else(|| "?".into())
}

/// What one read from a client brought.
#[derive(Debug)]
pub enum Input {
    /// `W` with these descriptors (none is allowed: it registers nothing).
    Watch(Vec<OwnedFd>),
    /// `R`.
    Ready,
    /// A byte the protocol does not know.
    Garbage(u8),
    /// The client closed its end, or shut down writing.
    Eof,
    /// Descriptors were lost in transit (our table is full, usually).
    Truncated {
        /// How many arrived and were closed again.
        closed: usize,
    },
    /// Reading failed.
    Failed(io::Error),
}

/// A connected client.
#[derive(Debug)]
pub struct Client {
    /// Its number.
    pub id: ClientId,
    /// Who it is.
    pub peer: Peer,
    sock: UnixStream,
    /// The descriptors it registered, in order.
    pub fds: Vec<OwnedFd>,
}

impl Client {
    /// Wraps an accepted connection, making it non-blocking.
    pub fn new(id: ClientId, sock: UnixStream) -> io::Result<Client> {
        sock.set_nonblocking(true)?;
        let peer = Peer::of(&sock);
        Ok(Client {
            id,
            peer,
            sock,
            fds: Vec::new(),
        })
    }

    /// Reads one message; `None` when nothing more is there right now.
    pub fn read(&mut self, buf: &mut RecvBuffer) -> Option<Input> {
        Some(match buf.recv(self.sock.as_fd()) {
            Ok(Received::Eof) => Input::Eof,
            Ok(Received::Byte { byte, fds }) => match ClientMessage::from_byte(byte) {
                Some(ClientMessage::Watch) => Input::Watch(fds),
                // Descriptors sent along with an `R` mean nothing; they are
                // closed when `fds` drops.
                Some(ClientMessage::Ready) => Input::Ready,
                None => Input::Garbage(byte),
            },
            Err(e) if e.is_would_block() => return None,
            Err(RegistrationError::Truncated { closed }) => Input::Truncated { closed },
            Err(RegistrationError::Io(e)) => Input::Failed(e),
            Err(e @ RegistrationError::FdCount(_)) => Input::Failed(io::Error::other(e)),
        })
    }

    /// Sends `msg`. A client whose buffer is full is not reading its
    /// socket: the error (`WouldBlock`) tells the caller to drop it rather
    /// than wait.
    pub fn send(&self, msg: ServerMessage) -> io::Result<()> {
        send_byte(self.sock.as_fd(), msg.byte())
    }
}

impl AsFd for Client {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl fmt::Display for Client {
    /// `#7 (pid 1234 event_test)`: how logs name a client.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} (pid {} {})", self.id, self.peer.pid, self.peer.comm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsus_proto::registration::send_watch;

    #[test]
    fn peer_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let peer = Peer::of(&a);
        assert_eq!(peer.pid, std::process::id() as i32);
        assert_eq!(peer.uid, nix::unistd::getuid().as_raw());
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(peer.comm, comm.trim_end());
    }

    #[test]
    fn reads_messages_then_would_block_then_eof() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut client = Client::new(1, b).unwrap();
        let mut buf = RecvBuffer::new();
        assert!(client.read(&mut buf).is_none());
        let (r, _w) = nix::unistd::pipe().unwrap();
        send_watch(a.as_fd(), &[r.as_fd()]).unwrap();
        send_byte(a.as_fd(), b'R').unwrap();
        send_byte(a.as_fd(), b'x').unwrap();
        assert!(matches!(client.read(&mut buf), Some(Input::Watch(f)) if f.len() == 1));
        assert!(matches!(client.read(&mut buf), Some(Input::Ready)));
        assert!(matches!(client.read(&mut buf), Some(Input::Garbage(b'x'))));
        assert!(client.read(&mut buf).is_none());
        drop(a);
        assert!(matches!(client.read(&mut buf), Some(Input::Eof)));
    }

    #[test]
    fn display_names_pid_and_command() {
        let (_a, b) = UnixStream::pair().unwrap();
        let client = Client::new(7, b).unwrap();
        let shown = client.to_string();
        assert!(
            shown.starts_with(&format!("#7 (pid {} ", std::process::id())),
            "{shown}"
        );
    }
}
