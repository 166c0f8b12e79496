//! lsusd, request-suspend and libsus end to end: the real binaries on a
//! temp run directory and a fake sysfs tree.

mod harness;
