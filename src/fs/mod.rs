//! The filesystem core: inodes, directories, reads, writes, rename, xattrs, over the
//! `ObjectStore` trait. No fuser, reqwest or quick-xml here.
//!
//! `Fs` is the one entry point; its async methods mirror fuser's low-level calls and return our
//! own types (`types.rs`). One concern per file:
//! - `ops.rs`: lookup/getattr, kernel TTLs (and their invalidation at open), mkdir, unlink,
//!   rmdir, symlink/readlink, link/mknod refusals, statfs; `lookup.rs`: the merged view of a
//!   path (local → pending upload → metadata cache → known absent → HEAD + LIST);
//!   `scan.rs`: one listing answers look-ups that miss in bulk in a directory;
//! - `attr.rs`: setattr (chmod/chown/utimes into `x-cos-meta-*`, truncate);
//! - `dir.rs`: readdir over paged delimited listings; `read.rs`: ranged GETs + read-ahead;
//!   `readcache.rs`: downloaded ranges by key + ETag (its writer thread in `readcache/writer.rs`);
//!   `fill.rs`: background fill of objects read at random;
//! - `node.rs`: the one shared state per inode (file-state diagram, lock order);
//! - `handle.rs`: create/open/read/flush/release/fsync; `write.rs`: the staging copy and its
//!   hand-off to the upload queue; `rename.rs`;
//! - `delete.rs`: batched DELETE Multiple; `xattr.rs` + `xattr_acl.rs`: `user.cos.*`;
//!   `posix_acl.rs` (values, mode arithmetic) + `posix_acl_fs.rs` (get/set, inheritance):
//!   POSIX ACLs, enforced by the kernel;
//!   `aclmemo.rs`: the ACLs this mount gave objects, so copies in place need not read them;
//! - `path.rs` (key rules), `meta.rs` (cosfs metadata formats), `attrcache.rs`, `table.rs`,
//!   `error.rs` (errnos), `uploads.rs` (the upload-queue boundary), `types.rs`.
//!
//! Lock order: see `node.rs` (namespace lock → node gate → node content → handle reader →
//! std leaf locks).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::cache::metadb::MetaDb;
use crate::store::{ObjectStore, StorageClass};

mod aclmemo;
mod attr;
pub mod attrcache;
mod delete;
mod dir;
pub mod error;
mod fill;
mod handle;
mod lookup;
pub mod meta;
pub mod node;
mod ops;
mod owndirs;
pub mod path;
pub mod posix_acl;
mod posix_acl_fs;
mod read;
pub mod readcache;
mod rename;
mod scan;
pub mod table;
pub mod types;
pub mod uploads;
mod write;
mod xattr;
mod xattr_acl;

#[cfg(test)]
mod tests;

pub use error::{FsError, FsResult};
pub use types::*;
pub use uploads::{ManualUploads, PendingUpload, Uploads};

use attrcache::AttrCache;
use delete::DeleteBatch;
use dir::DirHandle;
use handle::FileHandle;
use meta::Defaults;
use table::Table;

/// How new objects get their `Content-Type` (as cosfs and s3fs do, so COS and a CDN serve
/// them to browsers correctly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentType {
    /// From the file name's extension (mime types table); none for unknown extensions.
    Auto,
    /// Never sent (COS then stores `application/octet-stream`).
    Off,
    /// This type for every new object.
    Fixed(String),
}

impl ContentType {
    /// The type of a new object named `name`.
    pub fn for_name(&self, name: &str) -> Option<String> {
        match self {
            ContentType::Auto => mime_guess::from_path(name).first_raw().map(str::to_string),
            ContentType::Off => None,
            ContentType::Fixed(t) => Some(t.clone()),
        }
    }
}

/// Configuration of the fs core (built by `config`/`run` from the mount options).
#[derive(Debug, Clone)]
pub struct FsConfig {
    /// Key prefix of the mount (`""` or `a/b/`, see `path::mount_prefix`).
    pub prefix: String,
    /// Owner of objects without `x-cos-meta-uid`.
    pub uid: u32,
    /// Group of objects without `x-cos-meta-gid`.
    pub gid: u32,
    /// umask applied to objects without `x-cos-meta-mode`.
    pub umask: u32,
    /// How long the kernel may cache entries and attributes.
    pub entry_ttl: Duration,
    /// Validity of positive metadata cache entries.
    pub meta_ttl: Duration,
    /// Validity of negative metadata cache entries.
    pub negative_ttl: Duration,
    /// Maximum paths in the metadata cache.
    pub meta_capacity: usize,
    /// Size of one ranged GET of a sequential reader.
    pub read_part_size: u64,
    /// Parts fetched ahead of a sequential reader, in parallel.
    pub readahead_parts: usize,
    /// Global memory budget of read-ahead buffers, in bytes.
    pub readahead_budget: u64,
    /// Block of a random read and chunk of the read cache, in bytes.
    pub read_block: u64,
    /// Size limit of the read cache in bytes (0: no cache).
    pub read_cache_size: u64,
    /// Eviction policy of the read cache.
    pub read_cache_evict: readcache::Evict,
    /// Directory of the read cache (None: in memory).
    pub read_cache_dir: Option<std::path::PathBuf>,
    /// Objects up to this size (and half the read cache) read at random are filled into the
    /// read cache in the background (`fill.rs`); 0 never.
    pub read_fill_max: u64,
    /// Storage class for new objects (None = bucket default).
    pub storage_class: Option<StorageClass>,
    /// Content-Type of new objects.
    pub content_type: ContentType,
    /// Canned ACL for new objects (None = not sent).
    pub acl: Option<String>,
    /// Parallel copies during a directory rename.
    pub copy_parallelism: usize,
    /// Idle time after the last unlink before batched deletes are sent.
    pub delete_delay: Duration,
    /// Expiry of `user.cos.url` presigned URLs.
    pub presign_expiry: Duration,
    /// Refuse every change (EROFS).
    pub read_only: bool,
    /// How long `close` waits for the upload of a small file (see `Fs::flush`); zero = never.
    pub close_wait: Duration,
    /// Files up to this size are waited for on close; larger ones upload in the background.
    pub close_wait_max_size: u64,
    /// How long a directory listing is reused (this mount's changes drop it at once).
    pub list_ttl: Duration,
    /// An open revalidates a file (one HEAD) whose attributes are older than this
    /// (close-to-open consistency); zero revalidates every open.
    pub open_revalidate: Duration,
    /// Longest wait of a call that waits for the upload queue (fsync); requests themselves are
    /// bounded by the store (`store::DeadlineStore`).
    pub op_timeout: Duration,
    /// Directory of the persistent metadata cache (None: in memory only).
    pub meta_dir: Option<std::path::PathBuf>,
    /// The mount's counters (cache hits and misses are counted here).
    pub metrics: Arc<crate::store::metrics::Metrics>,
    /// HEAD requests in flight while a listing learns unknown metadata.
    pub head_parallelism: usize,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            prefix: String::new(),
            // SAFETY: getuid/getgid have no preconditions and cannot fail.
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
            umask: 0o022,
            entry_ttl: Duration::from_secs(1),
            meta_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            meta_capacity: 100_000,
            // 2 MiB parts, 8 ahead, 32 MiB in all: as fast as 8 MiB parts on the emulator and
            // a quarter of the memory (a GET's body is briefly held twice while it arrives).
            read_part_size: 2 * 1024 * 1024,
            readahead_parts: 8,
            readahead_budget: 32 * 1024 * 1024,
            read_block: 128 * 1024,
            // The daemon sets its own (see `run::wire`); unit tests opt in.
            read_cache_size: 0,
            read_cache_evict: readcache::Evict::Lru,
            read_cache_dir: None,
            read_fill_max: 0,
            storage_class: None,
            content_type: ContentType::Auto,
            acl: None,
            copy_parallelism: 16,
            delete_delay: Duration::from_millis(200),
            presign_expiry: Duration::from_secs(3600),
            read_only: false,
            close_wait: Duration::from_secs(5),
            close_wait_max_size: 8 * 1024 * 1024,
            meta_dir: None,
            metrics: Arc::default(),
            head_parallelism: 32,
            open_revalidate: Duration::from_secs(1),
            list_ttl: Duration::ZERO,
            op_timeout: Duration::from_secs(30),
        }
    }
}

/// An open handle.
#[derive(Clone)]
enum Handle {
    /// opendir.
    Dir(Arc<tokio::sync::Mutex<DirHandle>>),
    /// open/create.
    File(Arc<FileHandle>),
}

/// The filesystem (see module doc).
pub struct Fs {
    /// Storage.
    store: Arc<dyn ObjectStore>,
    /// Configuration.
    cfg: FsConfig,
    /// Staging files and uploads.
    uploads: Arc<dyn Uploads>,
    /// Inodes.
    table: Table,
    /// Metadata cache.
    attrs: AttrCache,
    /// Open handles by number. Leaf lock.
    handles: Mutex<HashMap<Fh, Handle>>,
    /// Next handle number.
    next_fh: AtomicU64,
    /// Unlinked keys waiting for a DELETE Multiple.
    deletes: DeleteBatch,
    /// Read-ahead memory budget, in KiB (`read::BUDGET_UNIT`).
    readahead: Arc<tokio::sync::Semaphore>,
    /// Downloaded ranges by key + ETag.
    readcache: readcache::ReadCache,
    /// Background fills of objects read at random.
    fills: fill::Fills,
    /// Ourselves, for background tasks (debounced deletes).
    me: Weak<Fs>,
    /// Mount time: the mtime of the root and of implicit directories (COS has none for them).
    started: std::time::SystemTime,
    /// The namespace lock (lock order 1 in `node.rs`): a directory rename holds it for writing
    /// so no hand-off names a key under the moving tree meanwhile.
    ns: tokio::sync::RwLock<()>,
    /// POSIX metadata by key + ETag, kept across mounts (`cache::metadb`).
    metadb: Arc<MetaDb>,
    /// Recent directory listings (`dir.rs`).
    listings: dir::Listings,
    /// Directories this mount created and the names it put there (`owndirs.rs`).
    own: owndirs::OwnDirs,
    /// Directories this mount has listed (relative paths), for offline creates. Leaf lock.
    listed_dirs: Mutex<std::collections::HashSet<String>>,
    /// ACLs this mount gave objects (`aclmemo.rs`).
    acls: aclmemo::AclMemo,
    /// Directories listed to answer look-ups that miss in bulk (`scan.rs`).
    scans: scan::Scans,
    /// The kernel's caches, once mounted (`attach_kernel`).
    kernel: std::sync::OnceLock<Arc<dyn KernelCache>>,
}

/// What the fs core may ask of the kernel's caches (implemented over FUSE notifications by
/// the adapter; absent in unit tests).
pub trait KernelCache: Send + Sync {
    /// The kernel forgets the attributes it caches for `ino` (the page cache is left alone:
    /// an open without `keep_cache` drops it anyway). Must not block on the kernel.
    fn invalidate_attrs(&self, ino: InodeNo);
}

impl Fs {
    /// Builds the filesystem over `store`, writing through `uploads`.
    pub fn new(store: Arc<dyn ObjectStore>, cfg: FsConfig, uploads: Arc<dyn Uploads>) -> Arc<Fs> {
        let budget = (cfg.readahead_budget / 1024).max(1) as usize;
        let readcache = readcache::ReadCache::new(
            cfg.read_cache_dir.clone(),
            cfg.read_cache_size,
            cfg.read_block,
            cfg.read_cache_evict,
        );
        let metadb = Arc::new(match &cfg.meta_dir {
            Some(dir) => MetaDb::open(dir, cfg.meta_capacity),
            None => MetaDb::memory(cfg.meta_capacity),
        });
        uploads.attach_metadb(metadb.clone());
        let listings = dir::Listings::new(cfg.list_ttl, 4096);
        Arc::new_cyclic(|me| Fs {
            store,
            attrs: AttrCache::new(cfg.meta_ttl, cfg.negative_ttl, cfg.meta_capacity),
            cfg,
            uploads: uploads.clone(),
            table: Table::new(),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            deletes: DeleteBatch::new(uploads.clone()),
            readahead: Arc::new(tokio::sync::Semaphore::new(budget)),
            readcache,
            fills: fill::Fills::default(),
            me: me.clone(),
            started: std::time::SystemTime::now(),
            ns: tokio::sync::RwLock::new(()),
            metadb,
            own: owndirs::OwnDirs::default(),
            listings,
            listed_dirs: Mutex::default(),
            acls: aclmemo::AclMemo::default(),
            scans: scan::Scans::default(),
            kernel: std::sync::OnceLock::new(),
        })
    }

    /// Connects the kernel's caches (once, after the mount).
    pub fn attach_kernel(&self, k: Arc<dyn KernelCache>) {
        let _ = self.kernel.set(k);
    }

    /// The configuration.
    pub fn config(&self) -> &FsConfig {
        &self.cfg
    }

    fn defaults(&self) -> Defaults {
        Defaults {
            uid: self.cfg.uid,
            gid: self.cfg.gid,
            umask: self.cfg.umask,
        }
    }

    fn listed_dirs(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.listed_dirs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_writable(&self) -> FsResult<()> {
        if self.cfg.read_only {
            Err(FsError::ReadOnly)
        } else {
            Ok(())
        }
    }

    fn add_handle(&self, h: Handle) -> Fh {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fh, h);
        fh
    }

    fn handle(&self, fh: Fh) -> FsResult<Handle> {
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&fh)
            .cloned()
            .ok_or(FsError::BadHandle)
    }

    fn take_handle(&self, fh: Fh) -> FsResult<Handle> {
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fh)
            .ok_or(FsError::BadHandle)
    }

    fn file_handle(&self, fh: Fh) -> FsResult<Arc<FileHandle>> {
        match self.handle(fh)? {
            Handle::File(f) => Ok(f),
            Handle::Dir(_) => Err(FsError::IsDir),
        }
    }

    /// Drains what the fs holds back: batched deletes (called by `run` before unmount; the
    /// upload queue is drained separately).
    pub async fn shutdown(&self) {
        self.flush_deletes().await;
    }
}
