//! The fuser adapter: translates kernel requests into `fs` calls and replies. Nothing else.
//!
//! - [`adapter`]: `FuseAdapter`, the `fuser::Filesystem` implementation.
//! - [`convert`]: pure conversions between our `fs` types and fuser's.
//! - [`reply`]: replies from `fs` results, and the kernel-cache notifications.

pub mod adapter;
pub mod convert;
pub mod reply;

pub use adapter::FuseAdapter;
