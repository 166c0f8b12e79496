//! The D-Bus side: follows logind's inhibitors by signal and feeds [`Hold`].
//!
//! zbus's blocking API, on two threads of ours: a *reader* that drains
//! every message the connection receives, keeps the signals we asked for
//! and passes them on through a channel, and the *session* thread (the
//! caller of [`run`]) that acts on them, calling `ListInhibitors` and
//! `Inhibit`. The reader never calls anything, so a burst of signals can
//! never fill zbus's queue while the session thread waits for a reply
//! (zbus stops reading the socket when a queue is full). zbus itself runs
//! one internal executor thread for its socket I/O; there is no async
//! runtime of ours.
//!
//! What is followed (match rules on the bus):
//! - `PropertiesChanged` of `org.freedesktop.login1.Manager` naming
//!   `BlockInhibited` or `DelayInhibited` (logind sends it whenever an
//!   inhibitor starts or stops) ⇒ `ListInhibitors` again;
//! - `PrepareForSleep(b)` ⇒ let go of `disabled` while logind suspends,
//!   and of our own delay inhibitor once we have let go;
//! - `NameOwnerChanged` of `org.freedesktop.login1` ⇒ logind went away
//!   (keep the last state) or came back (list again).
//!
//! Never polling: between signals the threads sleep in `recv`. When the
//! bus itself goes away, [`run`] connects again after 1 s, doubling up to
//! 30 s, and says so in the log.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lsus_proto::logind_bus::{self, LOGIND, LOGIND_PATH, MANAGER};
use zbus::blocking::{fdo::DBusProxy, Connection, MessageIterator, Proxy};
use zbus::message::Type as MessageType;
use zbus::zvariant::{OwnedFd, OwnedValue};

use crate::hold::Hold;

/// The first pause before connecting again, and the longest.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Why lsus-logind takes its own delay inhibitor (`systemd-inhibit
/// --list` shows it).
const DELAY_WHY: &str = "lets go of its lsusd block before logind suspends";

/// What the reader passes on.
#[derive(Debug, PartialEq)]
enum Event {
    /// The inhibitors changed: list them again.
    Changed,
    /// `PrepareForSleep(b)`.
    PrepareForSleep(bool),
    /// logind has (`true`) or has no (`false`) owner on the bus now.
    LogindOwner(bool),
    /// The connection ended.
    Closed(String),
}

/// Locks the shared state, whatever a panicking holder left (the
/// bookkeeping is consistent after each call).
pub fn lock(hold: &Mutex<Hold>) -> MutexGuard<'_, Hold> {
    hold.lock().unwrap_or_else(|e| e.into_inner())
}

/// Follows logind on the bus at `address` (the system bus if `None`)
/// for ever, connecting again whenever the connection is lost. Calls
/// `ready` once, after the first attempt to connect.
pub fn run(address: Option<&str>, hold: &Arc<Mutex<Hold>>, ready: impl FnOnce()) {
    let mut ready = Some(ready);
    let mut pause = RETRY_FIRST;
    let mut failures = 0u32;
    loop {
        let result = session(address, hold, &mut || {
            if let Some(f) = ready.take() {
                f();
            }
        });
        lock(hold).connected(false);
        if let Some(f) = ready.take() {
            f();
        }
        match result {
            Ok(why) => {
                tracing::warn!("the D-Bus connection ended ({why}); connecting again");
                pause = RETRY_FIRST;
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(
                        "cannot follow logind on D-Bus: {e}; trying again every {}-{} s",
                        RETRY_FIRST.as_secs(),
                        RETRY_MAX.as_secs()
                    );
                } else {
                    tracing::debug!("still cannot follow logind: {e}");
                }
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// One connection: returns why it ended, or the error that ended it.
fn session(
    address: Option<&str>,
    hold: &Mutex<Hold>,
    connected: &mut dyn FnMut(),
) -> zbus::Result<String> {
    let conn = match address {
        Some(a) => zbus::blocking::connection::Builder::address(a)?.build()?,
        None => Connection::system()?,
    };
    // Subscribe before the first listing, so no change falls in between.
    let messages = MessageIterator::from(&conn);
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("dbus-reader".into())
        .spawn(move || read(messages, tx))
        .map_err(|e| zbus::Error::Failure(format!("cannot start the reader thread: {e}")))?;
    let dbus = DBusProxy::new(&conn)?;
    for rule in [
        format!(
            "type='signal',sender='{LOGIND}',path='{LOGIND_PATH}',\
             interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',arg0='{MANAGER}'"
        ),
        logind_bus::prepare_for_sleep_rule(),
        format!(
            "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',\
             member='NameOwnerChanged',arg0='{LOGIND}'"
        ),
    ] {
        dbus.add_match_rule(zbus::MatchRule::try_from(rule.as_str())?)?;
    }
    let manager = logind_bus::manager(&conn)?;
    tracing::info!(
        "connected to D-Bus{}",
        address.map_or(String::new(), |a| format!(" at {a}"))
    );
    let mut logind = Logind {
        manager,
        delay: None,
    };
    logind.start(hold);
    connected();

    while let Ok(first) = rx.recv() {
        // Act once on everything that has queued up meanwhile.
        let mut events = vec![first];
        events.extend(rx.try_iter());
        let mut relist = false;
        for event in events {
            match event {
                Event::Closed(why) => return Ok(why),
                Event::Changed => relist = true,
                Event::PrepareForSleep(true) => {
                    lock(hold).sleeping(true);
                    // Only now, with our lock gone, may logind go on.
                    if logind.delay.take().is_some() {
                        tracing::debug!("released our delay inhibitor");
                    }
                }
                Event::PrepareForSleep(false) => {
                    lock(hold).sleeping(false);
                    logind.take_delay();
                    relist = true;
                }
                Event::LogindOwner(false) => {
                    tracing::warn!("logind left the bus");
                    logind.delay = None;
                    lock(hold).connected(false);
                    relist = false;
                }
                Event::LogindOwner(true) => {
                    tracing::info!("logind is on the bus again");
                    logind.start(hold);
                    relist = false;
                }
            }
        }
        if relist {
            logind.list(hold);
        }
    }
    Ok("the reader thread ended".into())
}

/// logind as seen through one connection.
struct Logind<'c> {
    manager: Proxy<'c>,
    /// Our own delay inhibitor on sleep, while we hold it.
    delay: Option<OwnedFd>,
}

impl Logind<'_> {
    /// On connecting, and when logind comes back: is it suspending, what
    /// does it list, and our delay inhibitor.
    fn start(&mut self, hold: &Mutex<Hold>) {
        match self.manager.get_property::<bool>("PreparingForSleep") {
            Ok(sleeping) => lock(hold).sleeping(sleeping),
            Err(e) => tracing::debug!("cannot read PreparingForSleep: {e}"),
        }
        if self.list(hold) {
            self.take_delay();
        }
    }

    /// Lists the inhibitors; returns true if logind answered.
    fn list(&self, hold: &Mutex<Hold>) -> bool {
        match logind_bus::list_inhibitors(&self.manager) {
            Ok(inhibitors) => {
                lock(hold).inhibitors(inhibitors);
                true
            }
            Err(e) => {
                tracing::warn!("logind did not list its inhibitors: {e}");
                lock(hold).connected(false);
                false
            }
        }
    }

    /// Takes a delay inhibitor on sleep, so logind waits for us to let go
    /// of `disabled` before it starts its suspend. Without one (logind
    /// refused), we still let go on `PrepareForSleep(true)`, only without
    /// logind waiting for it; the log says so.
    fn take_delay(&mut self) {
        if self.delay.is_some() {
            return;
        }
        let args = ("sleep", "lsus-logind", DELAY_WHY, "delay");
        match self.manager.call::<_, _, OwnedFd>("Inhibit", &args) {
            Ok(fd) => self.delay = Some(fd),
            Err(e) => tracing::warn!(
                "cannot take a delay inhibitor ({e}): a suspend that logind starts may find \
                 lsusd still blocked by us"
            ),
        }
    }
}

/// The reader thread: passes the signals we follow on to the session.
fn read(messages: MessageIterator, tx: mpsc::Sender<Event>) {
    let mut why = "the bus closed the connection".to_string();
    for msg in messages {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                why = e.to_string();
                break;
            }
        };
        if let Some(event) = event_of(&msg) {
            if tx.send(event).is_err() {
                return;
            }
        }
    }
    let _ = tx.send(Event::Closed(why));
}

/// Returns the event a message means to us, if any; a signal whose body
/// does not have the expected type means nothing (and is logged).
fn event_of(msg: &zbus::Message) -> Option<Event> {
    let header = msg.header();
    if header.message_type() != MessageType::Signal {
        return None;
    }
    let member = header.member()?.as_str();
    let interface = header.interface()?.as_str();
    let odd = |e: zbus::Error| {
        tracing::debug!("ignoring a {interface}.{member} signal with an odd body: {e}");
        None
    };
    match (interface, member) {
        ("org.freedesktop.DBus.Properties", "PropertiesChanged") => {
            type Body = (String, HashMap<String, OwnedValue>, Vec<String>);
            let (iface, changed, invalidated) = match msg.body().deserialize::<Body>() {
                Ok(b) => b,
                Err(e) => return odd(e),
            };
            let ours = |name: &str| name == "BlockInhibited" || name == "DelayInhibited";
            (iface == MANAGER
                && (changed.keys().any(|k| ours(k)) || invalidated.iter().any(|k| ours(k))))
            .then_some(Event::Changed)
        }
        (MANAGER, "PrepareForSleep") => match msg.body().deserialize::<bool>() {
            Ok(b) => Some(Event::PrepareForSleep(b)),
            Err(e) => odd(e),
        },
        ("org.freedesktop.DBus", "NameOwnerChanged") => {
            match msg.body().deserialize::<(String, String, String)>() {
                Ok((name, _, new)) if name == LOGIND => Some(Event::LogindOwner(!new.is_empty())),
                Ok(_) => None,
                Err(e) => odd(e),
            }
        }
        _ => None,
    }
}
