//! Process set-up around the event loop: the descriptor limit and the
//! readiness announcement.

use std::os::fd::AsRawFd;

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft limit on open descriptors to the hard limit: every
/// client is a descriptor, and thousands of alarms are normal. Returns the
/// limit now in force.
pub fn raise_descriptor_limit() -> nix::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard.max(soft))
}

/// Says "ready": to systemd when it started us, and — as the original
/// daemons did — by closing standard input (it is replaced by `/dev/null`),
/// which scripts that started us can watch for.
pub fn announce_ready() {
    lsus_daemon::notify::ready();
    match std::fs::File::open("/dev/null") {
        Ok(null) => {
            if let Err(e) = nix::unistd::dup2(null.as_raw_fd(), 0) {
                tracing::warn!("cannot close standard input: {e}");
            }
        }
        Err(e) => tracing::warn!("cannot open /dev/null: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_reaches_the_hard_limit() {
        let limit = raise_descriptor_limit().unwrap();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, hard);
        assert_eq!(limit, hard);
    }
}
