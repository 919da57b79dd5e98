//! Tests of the fs core against `MemoryStore` with operation counts, and a seeded reference
//! model test (random operations on `Fs` and on an in-memory model, compared as they go).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::Duration;

use rand::{RngExt, SeedableRng};

use super::*;
use crate::store::{MemoryStore, ObjectStore, PutOptions, StorageClass};

struct Env {
    fs: Arc<Fs>,
    store: Arc<MemoryStore>,
    uploads: Arc<ManualUploads>,
    _dir: tempfile::TempDir,
}

fn env_with(store: Arc<MemoryStore>, f: impl FnOnce(&mut FsConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let dynstore: Arc<dyn ObjectStore> = store.clone();
    let uploads = ManualUploads::new(dynstore.clone(), dir.path().to_path_buf());
    let mut cfg = FsConfig {
        uid: 1000,
        gid: 1000,
        delete_delay: Duration::from_secs(3600),
        read_part_size: 8,
        readahead_parts: 2,
        readahead_budget: 64,
        ..Default::default()
    };
    f(&mut cfg);
    let fs = Fs::new(dynstore, cfg, uploads.clone());
    Env {
        fs,
        store,
        uploads,
        _dir: dir,
    }
}

fn env() -> Env {
    env_with(MemoryStore::new(), |_| {})
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

async fn resolve(fs: &Fs, path: &str) -> FsResult<InodeNo> {
    let mut ino = ROOT_INO;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        ino = fs.lookup(ino, os(c)).await?.attr.ino;
    }
    Ok(ino)
}

async fn write_file(fs: &Fs, parent: InodeNo, name: &str, data: &[u8]) -> InodeNo {
    let (e, fh) = fs
        .create(parent, os(name), 0o100644, libc::O_WRONLY, 1000, 1000)
        .await
        .unwrap();
    if !data.is_empty() {
        assert_eq!(
            fs.write(e.attr.ino, fh, 0, data).await.unwrap() as usize,
            data.len()
        );
    }
    fs.release(e.attr.ino, fh).await.unwrap();
    e.attr.ino
}

async fn read_all(fs: &Fs, ino: InodeNo) -> FsResult<Vec<u8>> {
    let fh = fs.open(ino, libc::O_RDONLY).await?;
    let mut out = Vec::new();
    loop {
        let b = fs.read(ino, fh, out.len() as i64, 5).await?;
        if b.is_empty() {
            break;
        }
        out.extend_from_slice(&b);
    }
    fs.release(ino, fh).await?;
    Ok(out)
}

async fn names(fs: &Fs, ino: InodeNo) -> Vec<String> {
    let fh = fs.opendir(ino, 0).await.unwrap();
    let mut v: Vec<DirEntry> = Vec::new();
    fs.readdir(ino, fh, 0, &mut v).await.unwrap();
    fs.releasedir(ino, fh).await.unwrap();
    v.into_iter()
        .map(|e| e.name.to_string_lossy().into_owned())
        .filter(|n| n != "." && n != "..")
        .collect()
}

/// A getxattr value as text.
pub(super) async fn getx(fs: &Fs, ino: InodeNo, name: &str) -> FsResult<String> {
    fs.getxattr(ino, os(name))
        .await
        .map(|v| String::from_utf8(v).unwrap())
}

/// Methods of `Uploads` that a test wrapper around a `ManualUploads` (its field `inner`)
/// passes on unchanged, named in its `impl` block: `forward_uploads!(pending, discard);`.
/// (Sync methods only: `#[async_trait]` does not see into a macro.)
macro_rules! forward_uploads {
    ($($m:ident),* $(,)?) => { $(forward_uploads!(@one $m);)* };
    (@one new_staging_file) => {
        fn new_staging_file(&self) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
            self.inner.new_staging_file()
        }
    };
    (@one enqueue) => {
        fn enqueue(&self, h: crate::fs::uploads::Handover) -> std::io::Result<u64> {
            self.inner.enqueue(h)
        }
    };
    (@one pending) => {
        fn pending(&self, key: &str) -> Option<PendingUpload> {
            self.inner.pending(key)
        }
    };
    (@one pending_under) => {
        fn pending_under(&self, prefix: &str) -> Vec<(String, PendingUpload)> {
            self.inner.pending_under(prefix)
        }
    };
    (@one update_pending_opts) => {
        fn update_pending_opts(&self, key: &str, f: &mut dyn FnMut(&mut PutOptions)) -> bool {
            self.inner.update_pending_opts(key, f)
        }
    };
    (@one discard) => {
        fn discard(&self, key: &str) {
            self.inner.discard(key)
        }
    };
}

mod attrs;
mod data;
mod fsync;
mod handles;
mod model;
mod namespace;
mod reads;
mod xattrs;
