//! Metadata cache, staging files with their crash journal, and the upload queue.
//!
//! - [`staging`]: `CacheDir`, the cache directory (lock, staging files, recovery dir);
//! - [`early`]: multipart uploads started while a large file is still being written;
//! - [`journal`]: the crash journal of pending uploads (fsync'd, replayed at startup);
//! - [`intents`]: the namespace journal of deletes and renames under way;
//! - [`label`]: the key a staging file was made for, in an xattr (crash recovery names);
//! - [`metadb`]: the persistent metadata cache (POSIX metadata by key + ETag);
//! - [`upload`]: `UploadQueue`, the write-back upload queue (enqueue, wait, pending views,
//!   drain), with list/pause/restart/cancel in `queue_control`, the per-key operations of the
//!   fs core in `keys`,
//!   its workers in `worker`/`multipart` and crash recovery in `recover`;
//! - [`task`]: the queue's value types (`TaskInfo`, `TaskState`, `UploadConfig`, ...).

pub mod early;
pub mod intents;
pub mod journal;
mod keys;
pub mod label;
pub mod metadb;
mod multipart;
mod queue_control;
mod recover;
mod spares;
pub mod staging;
pub mod task;
pub mod upload;
mod worker;

#[cfg(test)]
mod tests;

pub use staging::CacheDir;
pub use task::{PendingFile, RecoveryReport, TaskId, TaskInfo, TaskState, UploadConfig};
pub use upload::UploadQueue;
