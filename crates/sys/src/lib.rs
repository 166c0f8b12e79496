//! The kernel at the edge.
//!
//! Each kernel interface the daemons use is one small type with a
//! configurable sysfs root, so tests run against a fake tree and the
//! suspend logic runs in-process against a simulated kernel.

pub mod power;
pub mod rtc;
pub mod wakeup;
