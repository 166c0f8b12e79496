//! Process resource limits.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft limit on open descriptors to the hard limit (every
/// client and every registered descriptor costs one). Returns the limit now
/// in force.
pub fn raise_descriptor_limit() -> nix::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard.max(soft))
}

/// [`raise_descriptor_limit`] at a daemon's start: the limit is logged
/// (debug); a failure is a warning, and the daemon goes on with its soft
/// limit.
pub fn raise_descriptor_limit_or_warn() {
    match raise_descriptor_limit() {
        Ok(limit) => tracing::debug!("descriptor limit: {limit}"),
        Err(e) => tracing::warn!("cannot raise the descriptor limit: {e}"),
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
