//! event_test — the original's wake-event test program.
//!
//! Opens a device or FIFO, registers it with lsused and prints what it
//! reads. When a suspend is imminent while input is waiting, lsused sends
//! `S`: the program prints `suspend: handling wake event`, reads the input,
//! then answers `R`; after resume it prints `awake`.
//!
//! ```text
//! mkfifo /tmp/f; event_test /tmp/f &
//! echo hello > /tmp/f; request-suspend
//! ```

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use libsus::{WakeEvent, WakeEvents};
use nix::poll::{PollFd, PollFlags, PollTimeout};

/// Register a device or FIFO with lsused and print what it reads.
#[derive(Debug, Parser)]
#[command(name = "event_test", version)]
struct Cli {
    /// Run directory of lsusd and lsused [default: $LSUSD_RUN_DIR or /run/suspend].
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,

    /// The device or FIFO to watch.
    path: PathBuf,
}

fn main() -> ExitCode {
    lsus_examples::exit_status("event_test", run(&Cli::parse()))
}

/// Opens `path` non-blocking. A FIFO is opened read-write, so the program
/// is its own writer and never sees EOF when a writer goes away.
fn open(path: &Path) -> io::Result<File> {
    let fifo = std::fs::metadata(path)?.file_type().is_fifo();
    std::fs::OpenOptions::new()
        .read(true)
        .write(fifo)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Reads and prints everything `input` has now. Returns false at EOF.
fn drain(input: &mut File) -> io::Result<bool> {
    let mut buf = [0u8; 4096];
    loop {
        match input.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => println!(
                "read {n} byte{}: {:?}",
                if n == 1 { "" } else { "s" },
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn run(cli: &Cli) -> Result<(), Box<dyn std::error::Error>> {
    let mut input =
        open(&cli.path).map_err(|e| format!("cannot open {}: {e}", cli.path.display()))?;
    let mut events = match &cli.run_dir {
        Some(dir) => WakeEvents::connect_in(dir)?,
        None => WakeEvents::connect()?,
    };
    events.register(&[&input])?;
    println!("registered {}", cli.path.display());
    loop {
        let (input_ready, events_ready) = {
            let mut fds = [
                PollFd::new(input.as_fd(), PollFlags::POLLIN | PollFlags::POLLPRI),
                PollFd::new(events.as_fd(), PollFlags::POLLIN),
            ];
            match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(format!("poll failed: {e}").into()),
            }
            let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        // The input first: it is what a wake event is about.
        if input_ready && !drain(&mut input)? {
            println!("end of input");
            return Ok(());
        }
        if events_ready {
            while let Some(event) = events.poll_event()? {
                match event {
                    WakeEvent::SuspendImminent => {
                        println!("suspend: handling wake event");
                        // Drain before answering: what is read now is
                        // handled before the machine sleeps.
                        let open = drain(&mut input)?;
                        events.ready()?;
                        if !open {
                            println!("end of input");
                            return Ok(());
                        }
                    }
                    WakeEvent::Awake => println!("awake"),
                }
            }
        }
    }
}
