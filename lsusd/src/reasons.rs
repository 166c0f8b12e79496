//! What the kernel says about an attempt (doc/protocol.md §6): the wakeup
//! sources that woke the machine or aborted the attempt, the wake-up IRQ,
//! the kernel's own report of a failed suspend and its counters.
//!
//! Everything here is optional: a file the kernel lacks leaves its key
//! out of the record, never fails the attempt.

use lsus_proto::outcome::Details;
use lsus_sys::power::Power;
use lsus_sys::wakeup::Snapshot;

/// The wakeup sources' counts before a step, and the kernel's failure
/// count (read just before the state write only).
#[derive(Debug, Default)]
pub struct Before {
    sources: Option<Snapshot>,
    fail: Option<u64>,
}

/// Samples the sources (step 4, before the wakeup count is read).
pub fn at_count_read<P: Power>(power: &mut P) -> Before {
    Before {
        sources: power.wakeup_sources(),
        fail: None,
    }
}

/// Samples the sources and `suspend_stats/fail` just before the state
/// write.
pub fn at_state_write<P: Power>(power: &mut P) -> Before {
    Before {
        fail: power.suspend_fail_count(),
        sources: power.wakeup_sources(),
    }
}

/// The names of the sources that moved since `before`, likeliest first;
/// `None` when there is no snapshot to compare.
fn moved<P: Power>(power: &mut P, before: &Before) -> Option<Vec<String>> {
    let before = before.sources.as_ref()?;
    let after = power.wakeup_sources()?;
    Some(
        after
            .moved_since(before)
            .iter()
            .map(|m| power.source_name(&m.key))
            .collect(),
    )
}

/// After a state write that returned (the machine slept and woke): `woke`
/// (`unknown` when nothing moved), the IRQ, the resume reason and the
/// kernel's counters.
pub fn after_resume<P: Power>(power: &mut P, before: &Before, d: &mut Details) {
    d.woke = moved(power, before);
    d.wake_irq = power.wakeup_irq();
    d.resume_reason = power.last_resume_reason();
    kernel_counters(power, d);
}

/// After a failed state write: the sources that moved during it (else
/// since `at_count`), and the kernel's `last_failed_*` when it counted
/// the failure.
pub fn after_failed_write<P: Power>(
    power: &mut P,
    at_count: &Before,
    before: &Before,
    d: &mut Details,
) {
    d.source = moved(power, before).unwrap_or_default();
    if d.source.is_empty() {
        d.source = moved(power, at_count).unwrap_or_default();
    }
    let stats = power.suspend_stats();
    if let Some(stats) = &stats {
        let counted = match (before.fail, stats.counter("fail")) {
            (Some(a), Some(b)) => b > a,
            _ => false,
        };
        if counted {
            d.failed_dev = stats.last_failed_dev.clone();
            d.failed_errno = stats.last_failed_errno;
            d.failed_step = stats.last_failed_step.clone();
        }
        d.kernel_success = stats.counter("success");
        d.kernel_fail = stats.counter("fail");
    }
}

/// After an attempt refused or aborted before the state write: the
/// sources that moved since the count was read.
pub fn after_refusal<P: Power>(power: &mut P, at_count: &Before, d: &mut Details) {
    d.source = moved(power, at_count).unwrap_or_default();
}

fn kernel_counters<P: Power>(power: &mut P, d: &mut Details) {
    if let Some(stats) = power.suspend_stats() {
        d.kernel_success = stats.counter("success");
        d.kernel_fail = stats.counter("fail");
    }
}
