//! The event loop: one `poll(2)` over the shutdown signals, lsusd's
//! watcher, the listening socket and every client, with one handler for
//! each kind of descriptor.
//!
//! The registered descriptors are not in this poll set: lsused looks at
//! them once per suspend attempt, with a zero timeout, when lsusd says a
//! suspend is imminent. An always-readable descriptor therefore costs one
//! `S` per attempt and nothing in between. While idle the poll has no
//! timeout; only a cycle that waits for answers sets one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use libsus::{WatchEvent, Watcher};
use lsus_daemon::signals::ShutdownSignals;
use lsus_daemon::status::StatusFile;
use lsus_proto::outcome::Named;
use lsus_proto::registration::{RecvBuffer, ServerMessage};
use lsus_proto::status::LsusedStatus;
use lsus_sys::dirwatch::poll_timeout;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::client::{Client, ClientId, Input};
use crate::cycle::{Cycle, Tick};
use lsus_daemon::accept::{self, Acceptor};

/// At most this many messages or connections are taken from one
/// descriptor per wake-up, so one busy peer cannot starve the others.
const BURST: usize = 64;

/// At most this many clients are named in one log line.
const NAMED_IN_LOG: usize = 8;

/// The event loop failed in a way that is not one client's fault.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// `poll` itself failed.
    #[error("poll failed: {0}")]
    Poll(#[source] io::Error),
    /// Talking to lsusd through the watcher failed.
    #[error("watching lsusd failed: {0}")]
    Watcher(#[from] libsus::Error),
    /// Reading the signal descriptor failed.
    #[error("cannot read the signal descriptor: {0}")]
    Signal(#[source] io::Error),
}

/// Which handler a polled descriptor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Signal,
    Watcher,
    Listener,
    Client(ClientId),
}

/// Why a client is dropped (for the log line).
#[derive(Debug)]
enum Reason {
    Eof,
    Garbage(u8),
    Truncated(usize),
    ReadFailed(io::Error),
    SendFailed(io::Error),
    HungUp,
}

/// lsused's state.
pub struct Server {
    signals: ShutdownSignals,
    watcher: Watcher,
    acceptor: Acceptor,
    clients: BTreeMap<ClientId, Client>,
    next_id: ClientId,
    cycle: Option<Cycle>,
    reply_timeout: Option<Duration>,
    recv: RecvBuffer,
    /// Reused between wake-ups: which descriptors were polled, and what
    /// came back.
    tokens: Vec<Token>,
    ready: Vec<(Token, PollFlags)>,
    /// `RUN/lsused.status`, for `lsusctl status`.
    status: StatusFile,
    /// Clients cut by the reply timeout since start-up.
    tardy_total: u64,
    /// The clients cut at the most recent reply timeout.
    tardy: Vec<Named>,
}

/// How the loop ended.
#[derive(Debug)]
pub enum Stop {
    /// A shutdown signal, by name.
    Signal(&'static str),
}

impl Server {
    /// Builds the server over descriptors that main opened.
    pub fn new(
        signals: ShutdownSignals,
        watcher: Watcher,
        acceptor: Acceptor,
        reply_timeout: Option<Duration>,
        status: StatusFile,
    ) -> Server {
        Server {
            signals,
            watcher,
            acceptor,
            clients: BTreeMap::new(),
            next_id: 1,
            cycle: None,
            reply_timeout,
            recv: RecvBuffer::new(),
            tokens: Vec::new(),
            ready: Vec::new(),
            status,
            tardy_total: 0,
            tardy: Vec::new(),
        }
    }

    /// Runs until a shutdown signal arrives.
    pub fn run(&mut self) -> Result<Stop, LoopError> {
        loop {
            self.publish_status();
            self.wait()?;
            let ready = std::mem::take(&mut self.ready);
            for &(token, revents) in &ready {
                match token {
                    Token::Signal => {
                        if let Some(stop) = self.on_signal()? {
                            return Ok(stop);
                        }
                    }
                    Token::Client(id) => self.on_client(id, revents),
                    Token::Listener => self.on_listener(),
                    // Room for `watching-next` even with a full table.
                    Token::Watcher => {
                        accept::lending_spare(self, |s| &mut s.acceptor, Self::watcher_events)?
                    }
                }
            }
            self.ready = ready;
            self.on_clock();
        }
    }

    /// Polls every descriptor and leaves the ready ones in `self.ready`,
    /// handlers in the order signal, clients, listener, watcher (answers
    /// and departures are counted before a new cycle starts).
    fn wait(&mut self) -> Result<(), LoopError> {
        let now = Instant::now();
        let timeout = [
            self.cycle.as_ref().and_then(|c| c.timeout(now)),
            self.acceptor.pause_left(now),
            self.status
                .deadline()
                .map(|d| d.saturating_duration_since(now)),
        ]
        .into_iter()
        .flatten()
        .min();
        let mut tokens = std::mem::take(&mut self.tokens);
        tokens.clear();
        let mut fds = Vec::with_capacity(self.clients.len() + 3);
        fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
        tokens.push(Token::Signal);
        for (&id, client) in &self.clients {
            // Not POLLRDHUP: a half-closed peer reads as EOF, which POLLIN
            // reports, and nix 0.29 cannot report a bit it does not know
            // (`revents()` would be `None` and the loop would spin).
            fds.push(PollFd::new(client.as_fd(), PollFlags::POLLIN));
            tokens.push(Token::Client(id));
        }
        if let Some(listener) = self.acceptor.pollable(now) {
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            tokens.push(Token::Listener);
        }
        fds.push(PollFd::new(self.watcher.as_fd(), PollFlags::POLLIN));
        tokens.push(Token::Watcher);

        self.ready.clear();
        match nix::poll::poll(&mut fds, poll_timeout(timeout)) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(LoopError::Poll(e.into())),
        }
        for (fd, &token) in fds.iter().zip(&tokens) {
            let revents = revents(fd);
            if !revents.is_empty() {
                self.ready.push((token, revents));
            }
        }
        drop(fds);
        self.tokens = tokens;
        Ok(())
    }

    // ----- shutdown signals -------------------------------------------

    fn on_signal(&mut self) -> Result<Option<Stop>, LoopError> {
        match self.signals.read() {
            Ok(name) => Ok(name.map(Stop::Signal)),
            Err(e) => Err(LoopError::Signal(e.into())),
        }
    }

    // ----- the listening socket ---------------------------------------

    fn on_listener(&mut self) {
        for stream in self.acceptor.accept_some(BURST) {
            self.add_client(stream);
        }
    }

    fn add_client(&mut self, stream: std::os::unix::net::UnixStream) {
        let id = self.next_id;
        self.next_id += 1;
        let client = match Client::new(id, stream) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("cannot set up client #{id}: {e}");
                return;
            }
        };
        tracing::debug!("client {client} connected (uid {})", client.peer.uid);
        if let Err(e) = client.send(ServerMessage::Ack) {
            self.clients.insert(id, client);
            self.drop_client(id, Reason::SendFailed(e));
            return;
        }
        self.clients.insert(id, client);
    }

    // ----- a client ---------------------------------------------------

    fn on_client(&mut self, id: ClientId, revents: PollFlags) {
        for _ in 0..BURST {
            let Some(client) = self.clients.get_mut(&id) else {
                return; // dropped earlier in this wake-up
            };
            let Some(input) = client.read(&mut self.recv) else {
                // Nothing left to read. A hang-up or error with nothing to
                // read would be reported again at once: drop it, never spin.
                if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)
                {
                    self.drop_client(id, Reason::HungUp);
                }
                return;
            };
            match input {
                Input::Watch(fds) => self.on_watch(id, fds),
                Input::Ready => self.on_ready(id),
                Input::Garbage(byte) => return self.drop_client(id, Reason::Garbage(byte)),
                Input::Eof => return self.drop_client(id, Reason::Eof),
                Input::Truncated { closed } => {
                    return self.drop_client(id, Reason::Truncated(closed))
                }
                Input::Failed(e) => return self.drop_client(id, Reason::ReadFailed(e)),
            }
        }
    }

    fn on_watch(&mut self, id: ClientId, fds: Vec<std::os::fd::OwnedFd>) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let count = fds.len();
        client.fds.extend(fds);
        tracing::info!(
            "client {client} registered {count} descriptor{} ({} in all)",
            plural(count),
            client.fds.len()
        );
        if let Err(e) = client.send(ServerMessage::Ack) {
            self.drop_client(id, Reason::SendFailed(e));
        }
    }

    fn on_ready(&mut self, id: ClientId) {
        let awaited = self.cycle.as_mut().is_some_and(|c| c.answered(id));
        if let Some(client) = self.clients.get(&id) {
            if awaited {
                tracing::debug!("client {client} answered R");
            } else {
                tracing::debug!("client {client} sent R while none was awaited; ignored");
            }
        }
        if awaited {
            self.release_if_complete();
        }
    }

    fn drop_client(&mut self, id: ClientId, why: Reason) {
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        self.acceptor.descriptor_freed();
        let fds = client.fds.len();
        match &why {
            Reason::Eof => {
                tracing::debug!("client {client} disconnected ({fds} descriptors closed)")
            }
            Reason::HungUp => tracing::debug!("client {client} hung up ({fds} descriptors closed)"),
            Reason::Garbage(byte) => tracing::warn!(
                "client {client} sent {:?}, which is not part of the protocol: dropped \
                 ({fds} descriptors closed)",
                char::from(*byte)
            ),
            Reason::Truncated(closed) => tracing::warn!(
                "client {client} sent descriptors that could not all be received (out of \
                 descriptors?): dropped ({} descriptors closed)",
                fds + closed
            ),
            Reason::ReadFailed(e) => {
                tracing::warn!("cannot read from client {client}: {e}; dropped")
            }
            Reason::SendFailed(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tracing::warn!("client {client} does not read its socket (buffer full): dropped")
            }
            Reason::SendFailed(e) => {
                tracing::debug!("cannot write to client {client}: {e}; dropped")
            }
        }
        let awaited = self.cycle.as_mut().is_some_and(|c| c.vanished(id));
        if awaited {
            tracing::info!("client {client} went away while its R was awaited: counted as ready");
        }
        // Its socket and descriptors close here.
        drop(client);
        if awaited {
            self.release_if_complete();
        }
    }

    // ----- lsusd ------------------------------------------------------

    fn watcher_events(&mut self) -> Result<(), LoopError> {
        while let Some(event) = self.watcher.poll_event()? {
            match event {
                WatchEvent::SuspendImminent => self.begin_cycle()?,
                WatchEvent::Resumed => self.end_cycle(),
            }
        }
        Ok(())
    }

    /// Suspend is imminent: look at every registered descriptor once.
    fn begin_cycle(&mut self) -> Result<(), LoopError> {
        if self.cycle.is_some() {
            // lsusd never starts an attempt before ending the last one; if
            // the watcher says otherwise, close the old cycle properly.
            self.end_cycle();
        }
        let now = Instant::now();
        let (owners, invalid, readable) = self.readable_owners();
        for (id, index) in invalid.into_iter().rev() {
            if let Some(client) = self.clients.get_mut(&id) {
                client.fds.remove(index);
                tracing::warn!("a descriptor of client {client} is no longer valid: dropped");
            }
        }
        let mut sent = Vec::with_capacity(owners.len());
        let mut failed = Vec::new();
        for id in owners {
            if let Some(client) = self.clients.get(&id) {
                match client.send(ServerMessage::Suspend) {
                    Ok(()) => sent.push(id),
                    Err(e) => failed.push((id, e)),
                }
            }
        }
        let registered: usize = self.clients.values().map(|c| c.fds.len()).sum();
        if sent.is_empty() {
            tracing::info!(
                "suspend imminent: none of {registered} registered descriptor{} readable; ready",
                plural(registered)
            );
        } else {
            tracing::info!(
                "suspend imminent: {readable} of {registered} descriptors readable; sent S to {} \
                 client{}: {}",
                sent.len(),
                plural(sent.len()),
                self.names(sent.iter().copied())
            );
        }
        self.cycle = Some(Cycle::start(now, sent, self.reply_timeout));
        for (id, e) in failed {
            self.drop_client(id, Reason::SendFailed(e));
        }
        self.release_if_complete();
        Ok(())
    }

    /// Polls every registered descriptor with a zero timeout. Returns the
    /// owners of readable ones (in order, once each), the descriptors that
    /// are invalid (client, index; ascending), and how many were readable.
    fn readable_owners(&self) -> (Vec<ClientId>, Vec<(ClientId, usize)>, usize) {
        let mut fds = Vec::new();
        let mut whose = Vec::new();
        for (&id, client) in &self.clients {
            for (index, fd) in client.fds.iter().enumerate() {
                fds.push(PollFd::new(
                    fd.as_fd(),
                    PollFlags::POLLIN | PollFlags::POLLPRI,
                ));
                whose.push((id, index));
            }
        }
        let mut owners: Vec<ClientId> = Vec::new();
        let mut invalid = Vec::new();
        let mut readable = 0;
        if fds.is_empty() {
            return (owners, invalid, readable);
        }
        loop {
            match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    // Cannot look: better to let the suspend go on than to
                    // block it on a guess.
                    tracing::error!("cannot poll the registered descriptors: {e}");
                    return (owners, invalid, readable);
                }
                Ok(_) => break,
            }
        }
        for (fd, &(id, index)) in fds.iter().zip(&whose) {
            let revents = revents(fd);
            if revents.contains(PollFlags::POLLNVAL) {
                invalid.push((id, index));
            } else if revents.intersects(PollFlags::POLLIN | PollFlags::POLLPRI) {
                readable += 1;
                if owners.last() != Some(&id) {
                    owners.push(id);
                }
            }
        }
        (owners, invalid, readable)
    }

    /// Tells lsusd "ready" once no answer is awaited any more.
    fn release_if_complete(&mut self) {
        let Some(cycle) = self.cycle.as_mut() else {
            return;
        };
        if !cycle.is_complete() || cycle.is_released() {
            return;
        }
        let now = Instant::now();
        cycle.release(now);
        let sent = cycle.answered_count() + cycle.vanished_count();
        if sent > 0 || cycle.elapsed(now) > Duration::from_millis(100) {
            tracing::info!(
                "every S answered after {:.3} s ({} R, {} gone): ready for suspend",
                cycle.elapsed(now).as_secs_f64(),
                cycle.answered_count(),
                cycle.vanished_count()
            );
        }
        if let Err(e) = self.watcher.ready() {
            // Leaving lsusd waiting would block suspend for good; there is
            // nothing better to do than say so loudly.
            tracing::error!("cannot tell lsusd we are ready: {e}");
        }
    }

    /// The system is awake again: `A` to every client that was sent `S`.
    fn end_cycle(&mut self) {
        let Some(cycle) = self.cycle.take() else {
            return;
        };
        let took = cycle.took();
        let to_ready = cycle.time_to_release();
        let sent = cycle.finish();
        let mut failed = Vec::new();
        let mut told = 0;
        for &id in &sent {
            if let Some(client) = self.clients.get(&id) {
                match client.send(ServerMessage::Ack) {
                    Ok(()) => told += 1,
                    Err(e) => failed.push((id, e)),
                }
            }
        }
        if told > 0 {
            tracing::info!(
                "awake after {:.3} s (ready after {:.3} s): sent A to {told} client{}",
                took.as_secs_f64(),
                to_ready.unwrap_or(took).as_secs_f64(),
                plural(told)
            );
        } else {
            tracing::debug!("awake after {:.3} s", took.as_secs_f64());
        }
        for (id, e) in failed {
            self.drop_client(id, Reason::SendFailed(e));
        }
    }

    /// Hands the counts to the status file (written only when they
    /// changed, and rate-limited).
    fn publish_status(&mut self) {
        let status = LsusedStatus {
            clients: self.clients.len(),
            descriptors: self.clients.values().map(|c| c.fds.len()).sum(),
            tardy_total: self.tardy_total,
            tardy: self.tardy.clone(),
        };
        self.status.publish(status.to_string(), Instant::now());
    }

    // ----- the clock (only while answers are awaited) -----------------

    fn on_clock(&mut self) {
        let now = Instant::now();
        let Some((tick, waited)) = self.cycle.as_mut().map(|c| (c.tick(now), c.elapsed(now)))
        else {
            return;
        };
        match tick {
            Tick::Wait => {}
            Tick::Report(late) => tracing::warn!(
                "suspend waits {:.0} s for R from {}",
                waited.as_secs_f64(),
                self.names(late.into_iter())
            ),
            Tick::GiveUp(late) => {
                tracing::warn!(
                    "reply timeout: no R after {:.1} s from {}; letting the suspend go on",
                    waited.as_secs_f64(),
                    self.names(late.iter().copied())
                );
                self.tardy_total += late.len() as u64;
                self.tardy = late
                    .iter()
                    .filter_map(|id| self.clients.get(id))
                    .map(|c| Named {
                        pid: u32::try_from(c.peer.pid).unwrap_or(0),
                        command: c.peer.comm.clone(),
                    })
                    .collect();
                self.publish_status();
                self.release_if_complete();
            }
        }
    }

    /// Names up to a few clients for a log line.
    fn names(&self, ids: impl Iterator<Item = ClientId>) -> String {
        let mut out = String::new();
        let mut more = 0;
        for (i, id) in ids.enumerate() {
            if i >= NAMED_IN_LOG {
                more += 1;
                continue;
            }
            if i > 0 {
                out.push_str(", ");
            }
            match self.clients.get(&id) {
                Some(client) => {
                    let _ = write!(out, "{client}");
                }
                None => {
                    let _ = write!(out, "#{id}");
                }
            }
        }
        if more > 0 {
            let _ = write!(out, " and {more} more");
        }
        out
    }
}

/// Returns what `poll` reported for `fd`. Bits nix does not know (none
/// are asked for) count as "readable", so the handler looks rather than
/// the loop waking up again and again for nothing.
fn revents(fd: &PollFd<'_>) -> PollFlags {
    fd.revents().unwrap_or(PollFlags::POLLIN)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
