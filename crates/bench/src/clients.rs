//! The client processes: this binary started again in a hidden mode.
//!
//! They talk to the daemons with raw system calls (open, flock, fstat,
//! inotify, sockets), the way a C program written against the original
//! lsusd does, and never through libsus, so what is measured is the
//! daemons and not a client library. Each writes one byte to its standard
//! output when registered; the harness counts them.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lsus_proto::rundir::{REGISTRATION, WAKEALARM, WATCHING, WATCHING_NEXT};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::env::{die_with_parent, say};
use crate::error::{plumbing, Context, Result};

/// How a watcher process behaves (the odd ones prove the harness's
/// deadlines in `selftest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatcherMode {
    /// A minimal original client: IN_MODIFY alone, as the original's
    /// clients watched RUN with dnotify `DN_MODIFY`.
    Normal,
    /// The same with IN_MODIFY | IN_MOVED_TO, as libsus's `Watcher` and
    /// these watchers did up to commit b255591 (the baseline of issue #18).
    MovedToo,
    /// Never registers (and never says so).
    NeverRegister,
    /// Registers, then never releases `watching`: never ready.
    Stall,
}

fn sys<T: PartialOrd + Default>(rc: T, what: &str) -> Result<T> {
    if rc < T::default() {
        Err(io::Error::last_os_error()).ctx(|| what.to_string())
    } else {
        Ok(rc)
    }
}

fn flock(fd: RawFd, op: libc::c_int) -> Result<()> {
    loop {
        // SAFETY: flock only reads the integer descriptor, which the caller
        // keeps open.
        let rc = unsafe { libc::flock(fd, op) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e).ctx(|| "flock".into());
        }
    }
}

/// Registers as the protocol says: open `watching`, lock it shared, and
/// check that the path still names it and that it is empty.
fn register(watching: &Path) -> Result<File> {
    loop {
        let file = File::open(watching).ctx(|| format!("cannot open {}", watching.display()))?;
        flock(file.as_raw_fd(), libc::LOCK_SH)?;
        let held = file.metadata().ctx(|| "fstat".into())?;
        match std::fs::metadata(watching) {
            Ok(now)
                if now.ino() == held.ino()
                    && now.dev() == held.dev()
                    && held.nlink() > 0
                    && held.len() == 0 =>
            {
                return Ok(file)
            }
            // A suspend in progress, or renamed meanwhile: try again.
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// A raw inotify instance on the run directory (`inotify_init1`,
/// `inotify_add_watch`, `read`).
struct RawInotify {
    fd: OwnedFd,
}

impl RawInotify {
    fn new() -> Result<RawInotify> {
        // SAFETY: inotify_init1 takes flags only; it returns a new
        // descriptor or -1.
        let fd = sys(
            unsafe { libc::inotify_init1(libc::IN_CLOEXEC) },
            "inotify_init1",
        )?;
        // SAFETY: fd is a descriptor we just created and own alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(RawInotify { fd })
    }

    /// Watches the run directory for writes (as the original's clients
    /// watched it with dnotify `DN_MODIFY`): the byte of "imminent" and
    /// the two bytes of the end, after the rename.
    fn watch_dir(&self, dir: &Path, mask: u32) -> Result<()> {
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
            .ctx(|| format!("bad path {}", dir.display()))?;
        // SAFETY: the descriptor is open and the path is a valid C string
        // that lives across the call.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), path.as_ptr(), mask) };
        sys(wd, "inotify_add_watch").map(drop)
    }

    /// Blocks until at least one event, and discards them (the watcher
    /// looks at the files themselves).
    fn wait(&self) -> Result<()> {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: buf is valid for writes of its length for the call.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e).ctx(|| "read inotify".into());
            }
        }
    }
}

fn size(file: &File) -> Result<u64> {
    Ok(file.metadata().ctx(|| "fstat".into())?.len())
}

/// Where a watcher counts for the harness: its slot (two `u64`s, native
/// byte order: wake-ups, then cycles seen to the end) in a file the
/// harness reads. One `pwrite` per wake-up, no context switch.
pub struct Counts {
    file: File,
    slot: u64,
    wakeups: u64,
    cycles: u64,
}

impl Counts {
    /// Opens the harness's file for slot `slot`.
    pub fn open(path: &Path, slot: u64) -> Result<Counts> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .ctx(|| format!("cannot open {}", path.display()))?;
        Ok(Counts {
            file,
            slot,
            wakeups: 0,
            cycles: 0,
        })
    }

    fn store(&self) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.wakeups.to_ne_bytes());
        b[8..].copy_from_slice(&self.cycles.to_ne_bytes());
        self.file
            .write_all_at(&b, self.slot * 16)
            .ctx(|| "cannot write the counts".into())
    }
}

/// A minimal original watcher: holds `watching` shared; on its byte locks
/// `watching-next` shared and releases `watching` (ready); on the two
/// bytes (or the rename) moves on to the new file. Forever. With
/// `counts`, each return from its blocking inotify read (a wake-up) and
/// each cycle it saw end are counted there.
pub fn watcher(run: &Path, mode: WatcherMode, mut counts: Option<Counts>) -> Result<()> {
    die_with_parent().ctx(|| "prctl".into())?;
    let watching = run.join(WATCHING);
    let next_path = run.join(WATCHING_NEXT);
    if mode == WatcherMode::NeverRegister {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    let ino = RawInotify::new()?;
    let mask = match mode {
        WatcherMode::MovedToo => libc::IN_MODIFY | libc::IN_MOVED_TO,
        _ => libc::IN_MODIFY,
    };
    ino.watch_dir(run, mask)?;
    let mut cur = register(&watching)?;
    say(b'r').ctx(|| "cannot write to the harness".into())?;
    if mode == WatcherMode::Stall {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    let mut next: Option<File> = None;
    loop {
        loop {
            match next.take() {
                None => {
                    if size(&cur)? == 0 {
                        break;
                    }
                    // Suspend imminent: register for the next cycle, then ready.
                    let n = File::open(&next_path)
                        .ctx(|| format!("cannot open {}", next_path.display()))?;
                    flock(n.as_raw_fd(), libc::LOCK_SH)?;
                    flock(cur.as_raw_fd(), libc::LOCK_UN)?;
                    next = Some(n);
                }
                Some(n) => {
                    let renamed = std::fs::metadata(&watching)
                        .is_ok_and(|m| m.ino() == n.metadata().map_or(0, |h| h.ino()));
                    if size(&cur)? < 3 && !renamed {
                        next = Some(n);
                        break;
                    }
                    // Resumed: the file we hold for the next cycle is current.
                    cur = n;
                    if let Some(c) = &mut counts {
                        c.cycles += 1;
                        c.store()?;
                    }
                }
            }
        }
        ino.wait()?;
        if let Some(c) = &mut counts {
            c.wakeups += 1;
            c.store()?;
        }
    }
}

fn read_byte(sock: &mut UnixStream) -> Result<Option<u8>> {
    let mut b = [0u8; 1];
    loop {
        match sock.read(&mut b) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(b[0])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).ctx(|| "cannot read from lsused".into()),
        }
    }
}

/// Sends lsused a `W` carrying the descriptor `fd` (doc/protocol.md §3).
pub fn send_w(sock: &UnixStream, fd: RawFd) -> Result<()> {
    let fds = [fd];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    let iov = [io::IoSlice::new(b"W")];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .ctx(|| "cannot send W to lsused".into())?;
    Ok(())
}

/// An lsused client: registers one pipe (with a byte in it when
/// `readable`, so that lsused finds it readable at every attempt) and
/// answers every `S` with `R` at once, writing one byte to the harness
/// for each.
pub fn event_client(run: &Path, readable: bool) -> Result<()> {
    die_with_parent().ctx(|| "prctl".into())?;
    let path = run.join(REGISTRATION);
    let mut sock =
        UnixStream::connect(&path).ctx(|| format!("cannot connect to {}", path.display()))?;
    if read_byte(&mut sock)? != Some(b'A') {
        return plumbing("lsused did not greet with A");
    }
    let (r, w) = nix::unistd::pipe().ctx(|| "pipe".into())?;
    if readable {
        nix::unistd::write(&w, b"x").ctx(|| "write".into())?;
    }
    send_w(&sock, r.as_raw_fd())?;
    if read_byte(&mut sock)? != Some(b'A') {
        return plumbing("lsused did not answer W with A");
    }
    say(b'r').ctx(|| "cannot write to the harness".into())?;
    loop {
        match read_byte(&mut sock)? {
            Some(b'S') => {
                sock.write_all(b"R").ctx(|| "cannot send R".into())?;
                say(b's').ctx(|| "cannot write to the harness".into())?;
            }
            Some(_) => {}
            None => return Ok(()),
        }
    }
}

/// What an alarm client process was told to do.
#[derive(Debug, Clone)]
pub struct AlarmJob {
    /// The run directory.
    pub run: PathBuf,
    /// How many connections.
    pub count: usize,
    /// Connection `i` asks for `first + i % spread` (seconds since the epoch).
    pub first: u64,
    /// Seconds over which the times are spread.
    pub spread: u64,
    /// Give up this many seconds after the last time.
    pub grace: u64,
}

struct Conn {
    sock: UnixStream,
    due: u64,
    buf: Vec<u8>,
    lines: u8,
    echoed: Option<SystemTime>,
    now_at: Option<SystemTime>,
}

fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

fn unix_ns(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// A wakealarmd client process holding many connections, each with its
/// own time. Reports on standard output: `registered <ns>` when every
/// time was echoed, then one `late <ns> <echoed-before-due 0|1>` per
/// connection (`late missing` for a `Now` that never came), then `done`.
pub fn alarm_client(job: &AlarmJob) -> Result<()> {
    die_with_parent().ctx(|| "prctl".into())?;
    raise_nofile();
    let path = job.run.join(WAKEALARM);
    let mut conns = Vec::with_capacity(job.count);
    for i in 0..job.count {
        let mut sock =
            UnixStream::connect(&path).ctx(|| format!("cannot connect to {}", path.display()))?;
        let due = job.first + (i as u64) % job.spread.max(1);
        sock.write_all(format!("{due}\n").as_bytes())
            .ctx(|| "cannot write a time to wakealarmd".into())?;
        sock.set_nonblocking(true).ctx(|| "fcntl".into())?;
        conns.push(Conn {
            sock,
            due,
            buf: Vec::new(),
            lines: 0,
            echoed: None,
            now_at: None,
        });
    }
    let give_up = Instant::now()
        + Duration::from_secs(
            (job.first + job.spread + job.grace).saturating_sub(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            ),
        );
    let mut out = io::stdout().lock();
    let mut echoed = 0;
    let mut fired = 0;
    let mut reported = false;
    let mut chunk = [0u8; 256];
    while fired < conns.len() && Instant::now() < give_up {
        let open: Vec<usize> = (0..conns.len())
            .filter(|&i| conns[i].now_at.is_none())
            .collect();
        let mut fds: Vec<PollFd> = open
            .iter()
            .map(|&i| PollFd::new(conns[i].sock.as_fd(), PollFlags::POLLIN))
            .collect();
        let n = match nix::poll::poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).ctx(|| "poll".into()),
        };
        if n == 0 {
            continue;
        }
        let ready: Vec<usize> = open
            .iter()
            .zip(fds.iter())
            .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|(&i, _)| i)
            .collect();
        drop(fds);
        for i in ready {
            let c = &mut conns[i];
            loop {
                match c.sock.read(&mut chunk) {
                    Ok(0) => {
                        return plumbing(format!("wakealarmd closed the connection for {}", c.due))
                    }
                    Ok(k) => c.buf.extend_from_slice(&chunk[..k]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).ctx(|| "cannot read from wakealarmd".into()),
                }
            }
            let at = SystemTime::now();
            while let Some(pos) = c.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = c.buf.drain(..=pos).collect();
                c.lines += 1;
                match c.lines {
                    1 if line == b"0\n" => {}
                    2 if line == format!("{}\n", c.due).as_bytes() => {
                        c.echoed = Some(at);
                        echoed += 1;
                    }
                    3 if line == b"Now\n" => {
                        c.now_at = Some(at);
                        fired += 1;
                    }
                    _ => {
                        return plumbing(format!(
                            "wakealarmd sent {:?} as line {} for time {}",
                            String::from_utf8_lossy(&line),
                            c.lines,
                            c.due
                        ))
                    }
                }
            }
        }
        if !reported && echoed == conns.len() {
            reported = true;
            writeln!(out, "registered {}", unix_ns(SystemTime::now()))
                .and_then(|()| out.flush())
                .ctx(|| "cannot write to the harness".into())?;
        }
    }
    if !reported {
        writeln!(out, "registered -1").ctx(|| "cannot write to the harness".into())?;
    }
    for c in &conns {
        let due = u128::from(c.due) * 1_000_000_000;
        let before = c.echoed.is_some_and(|e| unix_ns(e) <= due);
        match c.now_at {
            Some(t) => writeln!(
                out,
                "late {} {}",
                unix_ns(t) as i128 - due as i128,
                u8::from(before)
            ),
            None => writeln!(out, "late missing {}", u8::from(before)),
        }
        .ctx(|| "cannot write to the harness".into())?;
    }
    writeln!(out, "done")
        .and_then(|()| out.flush())
        .ctx(|| "cannot write to the harness".into())?;
    Ok(())
}

/// A lock holder: takes a shared lock on `disabled`, says so, and waits to
/// be killed (the harness sends SIGABRT). No core file is written: the
/// core limit is set to 0 first.
pub fn holder(run: &Path) -> Result<()> {
    die_with_parent().ctx(|| "prctl".into())?;
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
        .ctx(|| "setrlimit".into())?;
    let path = run.join(lsus_proto::rundir::DISABLED);
    let file = File::open(&path).ctx(|| format!("cannot open {}", path.display()))?;
    flock(file.as_raw_fd(), libc::LOCK_SH)?;
    say(b'r').ctx(|| "cannot write to the harness".into())?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
