//! readdir over GET Bucket with `delimiter=/`, paged to the end: entries from Contents and
//! CommonPrefixes (a `dir/` marker and an implicit directory both count), plus files this mount
//! has pending uploads for or is writing. Each listing entry fills the metadata cache. GET Bucket
//! carries no user metadata, so an entry whose `x-cos-meta-*` is not known for its ETag (from
//! this mount's memory or the persistent cache `cache::metadb`) is HEADed, in parallel, before
//! the kernel sees it: a listing never shows a symlink as a file or a 0600 file as 0644. A
//! warm `ls -l` (same ETags) costs list pages only.
//!
//! Offsets are stable: the first readdir (offset 0) takes a snapshot of the whole directory;
//! entry `i` of the snapshot has offset `i + 1` (`.` and `..` first), so a reader resuming at any
//! offset sees each name exactly once even if COS changes meanwhile. A new readdir at offset 0
//! (rewinddir) takes a new snapshot.

use std::collections::btree_map::Entry as MapEntry;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::attrcache::Cached;
use super::error::{FsError, FsResult};
use super::meta::Stat;
use super::path::{join, ValidName};
use super::types::{DirEntry, DirPlusSink, DirSink, Fh, FileKind, InodeNo, ROOT_INO};
use super::{Fs, Handle};
use futures::stream::{self, StreamExt};

use super::meta::{apply_user_meta, store_user_meta};
use crate::store::{ListRequest, StoreError};

/// Most pages one listing may take (10 million keys): a bound on a request loop.
const MAX_PAGES: usize = 10_000;

/// An open directory.
pub struct DirHandle {
    /// The directory's inode.
    ino: InodeNo,
    /// Snapshot: (name, kind, inode number), without `.` and `..`.
    entries: Vec<(String, FileKind, InodeNo)>,
}

/// A stable inode number for an entry the kernel holds no reference to (high bit set, so it
/// never collides with the table's counter).
fn pseudo_ino(path: &str) -> InodeNo {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    h.finish() | (1 << 63)
}

impl Fs {
    /// opendir.
    pub async fn opendir(&self, ino: InodeNo, _flags: i32) -> FsResult<Fh> {
        self.dir_path(ino)?;
        let h = DirHandle {
            ino,
            entries: Vec::new(),
        };
        Ok(self.add_handle(Handle::Dir(Arc::new(tokio::sync::Mutex::new(h)))))
    }

    /// True when the kernel's cached copy of directory `ino` (if it kept one) holds what a
    /// readdir would give now: the fresh listing it was last given, unchanged. The adapter
    /// then lets the kernel keep it, so a repeated `ls` sends no READDIRPLUS, which would
    /// refresh every entry (and make the kernel drop their cached ACLs).
    pub fn kernel_dir_current(&self, ino: InodeNo) -> bool {
        self.dir_path(ino)
            .map(|rel| self.listings.kernel_current(&rel))
            .unwrap_or(false)
    }

    /// releasedir.
    pub async fn releasedir(&self, _ino: InodeNo, fh: Fh) -> FsResult<()> {
        self.take_handle(fh).map(|_| ())
    }

    /// The handle `fh` of directory `ino`, locked, its snapshot taken anew at offset 0
    /// (rewinddir).
    async fn dir_snapshot(
        &self,
        ino: InodeNo,
        fh: Fh,
        offset: i64,
    ) -> FsResult<tokio::sync::OwnedMutexGuard<DirHandle>> {
        let mut h = match self.handle(fh)? {
            Handle::Dir(d) => d.lock_owned().await,
            Handle::File(_) => return Err(FsError::NotDir),
        };
        if h.ino != ino {
            return Err(FsError::BadHandle);
        }
        if offset == 0 {
            let rel = self.dir_path(ino)?;
            h.entries = self.list_dir(ino).await?;
            self.listings.served(&rel);
        }
        Ok(h)
    }

    /// readdir: fills `sink` from `offset` until it is full or the directory ends.
    pub async fn readdir(
        &self,
        ino: InodeNo,
        fh: Fh,
        offset: i64,
        sink: &mut dyn DirSink,
    ) -> FsResult<()> {
        let h = self.dir_snapshot(ino, fh, offset).await?;
        let start = usize::try_from(offset.max(0)).unwrap_or(usize::MAX);
        let dots = [
            (".".to_string(), FileKind::Dir, ino),
            ("..".to_string(), FileKind::Dir, ROOT_INO),
        ];
        for (i, (name, kind, child)) in dots.iter().chain(h.entries.iter()).enumerate().skip(start)
        {
            let e = DirEntry {
                ino: *child,
                offset: i as i64 + 1,
                kind: *kind,
                name: OsString::from(name),
            };
            if sink.add(e) {
                break;
            }
        }
        Ok(())
    }

    /// readdirplus: like `readdir`, each entry with its attributes, as a lookup would give
    /// them (counted as a lookup: the kernel forgets it later), so `ls -l` needs no LOOKUP per
    /// entry. `.` and `..` carry the directory's attributes (the kernel takes none of them).
    pub async fn readdirplus(
        &self,
        ino: InodeNo,
        fh: Fh,
        offset: i64,
        sink: &mut dyn DirPlusSink,
    ) -> FsResult<()> {
        let h = self.dir_snapshot(ino, fh, offset).await?;
        let rel = self.dir_path(ino)?;
        let start = usize::try_from(offset.max(0)).unwrap_or(usize::MAX);
        let here = self.entry_of(ino, &self.stat_path(&rel).await?);
        for i in start..2 + h.entries.len() {
            let (name, kind, child, e) = match i {
                0 => (".", FileKind::Dir, ino, here.clone()),
                1 => ("..", FileKind::Dir, ROOT_INO, here.clone()),
                _ => {
                    let (name, _, _) = &h.entries[i - 2];
                    let s = match self.stat_path(&join(&rel, name)).await {
                        Ok(s) => s,
                        // Gone since the listing: left out, as a later readdir would.
                        Err(FsError::NotFound) => continue,
                        Err(e) => return Err(e),
                    };
                    let child = self.table.upsert(ino, name, s.kind, true);
                    (name.as_str(), s.kind, child, self.entry_of(child, &s))
                }
            };
            let d = DirEntry {
                ino: child,
                offset: i as i64 + 1,
                kind,
                name: OsString::from(name),
            };
            if sink.add(d, &e) {
                if i >= 2 {
                    self.table.forget(child, 1);
                }
                break;
            }
        }
        Ok(())
    }

    /// HEADs (bounded concurrency) the listed entries whose metadata is not known for their
    /// ETag, so no attribute reaches the kernel from a guess; remembers the answers in the
    /// persistent cache. Entries are (name, key, path, ETag; None for a `dir/` prefix).
    /// Returns each entry's name and kind (one deleted meanwhile is left out).
    async fn learn_metadata(
        &self,
        unknown: Vec<(String, String, String, Option<String>)>,
    ) -> FsResult<Vec<(String, FileKind)>> {
        let d = self.defaults();
        // Answers yield to changes made while the HEADs are out (`put_seen`).
        let since = self.metadb.epoch();
        let seen_at = self.attrs.epoch();
        let heads: Vec<_> = stream::iter(unknown)
            .map(|(name, key, path, etag)| async move {
                let r = self.store.head_object(&key).await;
                (name, key, path, etag, r)
            })
            .buffer_unordered(self.cfg.head_parallelism.max(1))
            .collect()
            .await;
        let mut out = Vec::new();
        for (name, key, path, etag, r) in heads {
            let is_dir = etag.is_none();
            let s = match r {
                Ok(meta) => {
                    self.metadb
                        .put_seen(&key, &meta.etag, meta.headers.user_meta.clone(), since);
                    Stat::from_head(&meta, is_dir, &d)
                }
                // An implicit directory (no marker) keeps the documented defaults, as a fact.
                Err(StoreError::NotFound(_)) if is_dir => {
                    self.metadb.put_seen(&key, "", Default::default(), since);
                    let mut s = Stat::dir(&d, self.started);
                    s.acl = Some(Default::default());
                    s
                }
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            out.push((name, s.kind));
            self.attrs.put_seen(&path, Some(s), seen_at);
        }
        Ok(out)
    }

    /// Lists directory `ino` completely (see module doc).
    pub(crate) async fn list_dir(
        &self,
        ino: InodeNo,
    ) -> FsResult<Vec<(String, FileKind, InodeNo)>> {
        let rel = self.dir_path(ino)?;
        let names = match self.listings.get(&rel) {
            Some(names) => names,
            None => {
                let names = self.fetch_listing(ino, &rel).await?;
                self.listings.put(&rel, names.clone());
                names
            }
        };
        Ok(names
            .into_iter()
            .map(|(name, kind)| {
                let child = self
                    .table
                    .child(ino, &name)
                    .unwrap_or_else(|| pseudo_ino(&join(&rel, &name)));
                (name, kind, child)
            })
            .collect())
    }

    /// The merged listing of directory `rel` (inode `ino`): COS's pages, pending uploads and
    /// staged files, without names waiting for deletion.
    async fn fetch_listing(&self, ino: InodeNo, rel: &str) -> FsResult<BTreeMap<String, FileKind>> {
        let rel = rel.to_string();
        let prefix = self.key_of(&rel, FileKind::Dir)?.to_string();
        let d = self.defaults();
        let mut names: BTreeMap<String, FileKind> = BTreeMap::new();
        let add = |names: &mut BTreeMap<String, FileKind>, name: &str, kind: FileKind| {
            match names.entry(name.to_string()) {
                MapEntry::Vacant(v) => {
                    v.insert(kind);
                }
                // A directory and a file of one name: the directory wins, as in lookup.
                MapEntry::Occupied(mut o) if kind == FileKind::Dir => {
                    o.insert(kind);
                }
                MapEntry::Occupied(_) => {}
            }
        };
        let mut marker: Option<String> = None;
        self.deletes.touch();
        // The HEADs of one page run while the next page is listed.
        let mut learning: Option<Learning<'_>> = None;
        for _ in 0..MAX_PAGES {
            let req = ListRequest {
                prefix: prefix.clone(),
                delimiter: Some('/'),
                marker: marker.clone(),
                max_keys: Some(1000),
            };
            let prev = learning.take();
            let since = self.metadb.epoch();
            let seen_at = self.attrs.epoch();
            let (page, learned) = futures::join!(self.store.list_objects(&req), async {
                match prev {
                    Some(f) => f.await,
                    None => Ok(Vec::new()),
                }
            });
            for (name, kind) in learned? {
                add(&mut names, &name, kind);
            }
            let page = page?;
            let mut unknown = Vec::new();
            for cp in &page.common_prefixes {
                if self.deletes.dir_removed(cp) {
                    continue;
                }
                let name = cp[prefix.len()..].trim_end_matches('/');
                if ValidName::parse(name).is_err() {
                    log::debug!("skipping unrepresentable prefix {cp:?}");
                    continue;
                }
                let path = join(&rel, name);
                if matches!(self.attrs.get(&path), Cached::Unknown | Cached::Stale(_)) {
                    match self.metadb.get_any(cp) {
                        Some(m) => {
                            let mut s = Stat::dir(&d, self.started);
                            apply_user_meta(&mut s, &m, true);
                            self.attrs.put_seen(&path, Some(s), seen_at);
                        }
                        None => unknown.push((name.to_string(), cp.clone(), path, None)),
                    }
                }
                add(&mut names, name, FileKind::Dir);
            }
            for o in &page.objects {
                if o.key == prefix || self.deletes.contains(&o.key) {
                    continue;
                }
                let name = &o.key[prefix.len()..];
                if ValidName::parse(name).is_err() {
                    log::debug!("skipping unrepresentable key {:?}", o.key);
                    continue;
                }
                if names.get(name) == Some(&FileKind::Dir) {
                    // A file and a directory of one name (other tools make both): the
                    // directory wins here as in lookup, so its attributes must not be the file's.
                    continue;
                }
                let path = join(&rel, name);
                let mut s = self.attrs.put_listed(&path, Stat::from_list(o, false, &d));
                if s.from_head {
                    // Known (this mount wrote it, or a HEAD told): keep it for later mounts.
                    let mut m = std::collections::BTreeMap::new();
                    store_user_meta(&s, &mut m);
                    self.metadb.put_seen(&o.key, &o.etag, m, since);
                } else if let Some(m) = self.metadb.get(&o.key, &o.etag) {
                    apply_user_meta(&mut s, &m, false);
                    s.from_head = true;
                    self.attrs.put_seen(&path, Some(s.clone()), seen_at);
                } else {
                    unknown.push((name.to_string(), o.key.clone(), path, Some(o.etag.clone())));
                    continue;
                }
                add(&mut names, name, s.kind);
            }
            learning = Some(Box::pin(self.learn_metadata(unknown)));
            if !page.is_truncated {
                break;
            }
            // COS always sends NextMarker when truncated; fall back to the last item if not.
            marker = page.next_marker.clone().or_else(|| {
                let last_obj = page.objects.last().map(|o| o.key.clone());
                let last_cp = page.common_prefixes.last().cloned();
                last_obj.max(last_cp)
            });
            if marker.is_none() {
                break;
            }
        }
        if let Some(f) = learning {
            for (name, kind) in f.await? {
                add(&mut names, &name, kind);
            }
        }
        for (key, p) in self.uploads.pending_under(&prefix) {
            let rest = &key[prefix.len()..];
            match rest.split_once('/') {
                Some((dir, _)) if !dir.is_empty() => add(&mut names, dir, FileKind::Dir),
                Some(_) => {}
                None if !rest.is_empty() => {
                    let st = self.pending_stat(&p);
                    add(&mut names, rest, st.kind)
                }
                None => {}
            }
        }
        self.listed_dirs().insert(rel.clone());
        for (name, _, node) in self.table.staged_children(ino) {
            add(&mut names, &name, node.kind);
        }
        Ok(names)
    }
}

/// The HEADs of one listing page, running (names and kinds learnt).
type Learning<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = FsResult<Vec<(String, FileKind)>>> + Send + 'a>,
>;

/// One kept listing.
struct Listing {
    /// When it was listed.
    at: std::time::Instant,
    /// Names and kinds.
    names: BTreeMap<String, FileKind>,
    /// A snapshot of exactly these names went to the kernel (a readdir at offset 0), so the
    /// kernel's directory cache, when it has one, holds them.
    served: bool,
}

impl Listing {
    /// Younger than `ttl`.
    fn fresh(&self, ttl: std::time::Duration) -> bool {
        self.at.elapsed() < ttl
    }
}

/// Directory path → its listing.
type ListingMap = lru::LruCache<String, Listing>;

/// Directory listings kept for `list_ttl`, so a repeated `ls` asks COS nothing; this mount's
/// own changes of a directory drop its listing at once (`Fs::touch_dir`), other clients'
/// changes show after the TTL. Bounded by entry count. Leaf lock.
pub struct Listings {
    /// Validity.
    ttl: std::time::Duration,
    /// Directory path → (when listed, names and kinds).
    map: std::sync::Mutex<ListingMap>,
}

impl Listings {
    /// Listings valid for `ttl` (zero: never kept), at most `dirs` of them.
    pub fn new(ttl: std::time::Duration, dirs: usize) -> Listings {
        let cap = std::num::NonZeroUsize::new(dirs.max(1)).unwrap_or(std::num::NonZeroUsize::MIN);
        Listings {
            ttl,
            map: std::sync::Mutex::new(lru::LruCache::new(cap)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ListingMap> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The listing of `rel`, if fresh.
    pub fn get(&self, rel: &str) -> Option<BTreeMap<String, FileKind>> {
        match self.lock().get(rel) {
            Some(l) if l.fresh(self.ttl) => Some(l.names.clone()),
            _ => None,
        }
    }

    /// A snapshot of the listing of `rel` went to the kernel.
    pub fn served(&self, rel: &str) {
        if let Some(l) = self.lock().peek_mut(rel) {
            l.served = true;
        }
    }

    /// True when the listing of `rel` is fresh and is what the kernel was last given, so the
    /// kernel may keep its cached copy of the directory (FOPEN_KEEP_CACHE).
    pub fn kernel_current(&self, rel: &str) -> bool {
        match self.lock().peek(rel) {
            Some(l) => l.served && l.fresh(self.ttl),
            None => false,
        }
    }

    /// The number of subdirectories in the listing of `rel`, if fresh.
    pub fn subdirs(&self, rel: &str) -> Option<usize> {
        match self.lock().peek(rel) {
            Some(l) if l.fresh(self.ttl) => {
                Some(l.names.values().filter(|k| **k == FileKind::Dir).count())
            }
            _ => None,
        }
    }

    /// True when a fresh listing of `dir` exists and has no `name`: the name is absent as far
    /// as a listing younger than the TTL knows (like a negative cache entry).
    pub fn lacks(&self, dir: &str, name: &str) -> bool {
        match self.lock().peek(dir) {
            Some(l) => l.fresh(self.ttl) && !l.names.contains_key(name),
            None => false,
        }
    }

    /// This mount made `name` in `dir`: a kept listing of `dir` gains it (and stays as fresh as
    /// it was), so the next create there still needs no request.
    pub fn add(&self, dir: &str, name: &str, kind: FileKind) {
        if let Some(l) = self.lock().peek_mut(dir) {
            if l.names.insert(name.to_string(), kind) != Some(kind) {
                l.served = false;
            }
        }
    }

    /// Keeps a listing.
    pub fn put(&self, rel: &str, names: BTreeMap<String, FileKind>) {
        if !self.ttl.is_zero() {
            let l = Listing {
                at: std::time::Instant::now(),
                names,
                served: false,
            };
            self.lock().put(rel.to_string(), l);
        }
    }

    /// Drops the listing of `rel` and of every directory under it.
    pub fn drop_tree(&self, rel: &str) {
        drop_tree_in(&mut self.lock(), rel);
    }
}

/// Removes the entries of directory `rel` and of every directory under it from a cache keyed
/// by directory path (`""` is the root: everything).
pub(crate) fn drop_tree_in<V>(cache: &mut lru::LruCache<String, V>, rel: &str) {
    let under = format!("{rel}/");
    // Only the victims' keys are cloned: the scan runs under the cache's lock on every rename.
    let victims: Vec<String> = cache
        .iter()
        .filter(|(k, _)| *k == rel || k.starts_with(&under) || rel.is_empty())
        .map(|(k, _)| k.clone())
        .collect();
    for v in victims {
        cache.pop(&v);
    }
}
