//! cosfuse: mount a Tencent Cloud COS bucket as a directory, and a faithful local COS emulator.
//!
//! # Layout
//! - [`store`]: the `ObjectStore` trait (methods named after COS operations) and its value types;
//!   `MemoryStore` for unit tests of the fs core.
//! - [`cos`]: `CosClient`, the HTTP implementation of `ObjectStore`: signer, XML, errors, retries.
//! - [`fs`]: the filesystem core (inodes, directories, reads, writes, rename, xattrs); no FUSE,
//!   HTTP or XML inside.
//! - [`cache`]: metadata cache, staging files with their crash journal, and the upload queue.
//! - [`fuse`]: the fuser adapter, which only translates kernel requests to `fs` calls.
//! - [`cli`], [`config`], [`run`]: command line, validated configuration and credentials, and the
//!   wiring that mounts, daemonizes and drains on unmount.
//! - [`docgen`]: the man page's options part and shell completions, rendered from the clap
//!   definitions.
//! - [`emulator`]: `cosfuse-emulator`, a file-backed COS-compatible endpoint.

pub mod cache;
pub mod cli;
pub mod config;
pub mod control;
pub mod cos;
pub mod docgen;
pub mod emulator;
pub mod fs;
pub mod fuse;
pub mod run;
pub mod store;
