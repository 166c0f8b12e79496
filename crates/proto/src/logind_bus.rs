//! systemd-logind's D-Bus interface as lsus-logind and `request-suspend
//! --via-logind` call it: its names, the Manager proxy, `ListInhibitors`
//! and the `PrepareForSleep` signal (zbus's blocking API; the cargo
//! feature `dbus`, so that only these two programs build zbus).

use zbus::blocking::{Connection, Proxy};

use crate::logind::Inhibitor;

/// logind's bus name.
pub const LOGIND: &str = "org.freedesktop.login1";
/// The path of logind's Manager object.
pub const LOGIND_PATH: &str = "/org/freedesktop/login1";
/// The Manager interface.
pub const MANAGER: &str = "org.freedesktop.login1.Manager";

/// The match rule of logind's `PrepareForSleep(bool)` signal: `true`
/// before it suspends, `false` after.
pub fn prepare_for_sleep_rule() -> String {
    format!(
        "type='signal',sender='{LOGIND}',path='{LOGIND_PATH}',interface='{MANAGER}',\
         member='PrepareForSleep'"
    )
}

/// A proxy for logind's Manager on `conn`, with no property cache: a
/// cache would subscribe to signals behind the caller's back (the one
/// property lsus-logind reads, it reads when it needs it).
pub fn manager(conn: &Connection) -> zbus::Result<Proxy<'_>> {
    zbus::blocking::proxy::Builder::new(conn)
        .destination(LOGIND)?
        .path(LOGIND_PATH)?
        .interface(MANAGER)?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
}

/// logind's inhibitors, as `ListInhibitors` returns them.
pub fn list_inhibitors(manager: &Proxy<'_>) -> zbus::Result<Vec<Inhibitor>> {
    type Listed = Vec<(String, String, String, String, u32, u32)>;
    let listed: Listed = manager.call("ListInhibitors", &())?;
    Ok(listed
        .into_iter()
        .map(|(what, who, why, mode, uid, pid)| Inhibitor {
            what,
            who,
            why,
            mode,
            uid,
            pid,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prepare_for_sleep_rule_parses() {
        let rule = prepare_for_sleep_rule();
        let parsed = zbus::MatchRule::try_from(rule.as_str()).unwrap();
        assert_eq!(parsed.member().map(|m| m.as_str()), Some("PrepareForSleep"));
        assert_eq!(parsed.interface().map(|i| i.as_str()), Some(MANAGER));
    }
}
