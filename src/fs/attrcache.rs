//! The metadata cache: positive entries (`Stat` by relative path) and negative entries with
//! TTLs, bounded by entry count (LRU), plus the HEAD-only metadata (mode/uid/gid/mtime) kept by
//! ETag + Last-Modified so a later listing showing the same pair reuses it without a HEAD
//! (ARCHITECTURE.md §3). Files created or being written by this mount are not here: their
//! state is the inode's (`node.rs`), which lookups consult first.
//!
//! What a look-up learns from COS is an observation (`put_seen`): one that began before this
//! mount changed the path (chmod, utimes, a hand-off, unlink, a rename) yields to that change,
//! so a HEAD answered just before a chmod's copy in place cannot undo the chmod here.
//!
//! Locking: one std mutex, a leaf lock (never held with another lock, never across `.await`).

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use lru::LruCache;

use super::dir::drop_tree_in;
use super::meta::Stat;
use super::posix_acl::PosixAcls;
use super::types::FileKind;

/// How long a directory's attributes are served without asking COS again (files: the TTL).
const DIR_TTL: Duration = Duration::from_secs(60);

/// HEAD-only metadata remembered for one object identity.
#[derive(Debug, Clone)]
struct HeadMeta {
    /// ETag it belongs to (None: written by this mount, ETag not known yet).
    etag: Option<String>,
    /// Last-Modified it belongs to (None: not known yet).
    last_modified: Option<SystemTime>,
    /// Size, matched while the ETag is unknown.
    size: u64,
    /// Kind (a symlink is only known from its mode).
    kind: FileKind,
    /// Permission bits.
    perm: u32,
    /// Owner.
    uid: u32,
    /// Group.
    gid: u32,
    /// mtime from `x-cos-meta-mtime`.
    mtime: SystemTime,
    /// atime from `x-cos-meta-atime`.
    atime: SystemTime,
    /// ctime from `x-cos-meta-ctime`.
    ctime: SystemTime,
    /// Device number.
    rdev: u32,
    /// POSIX ACLs (None: not known).
    acl: Option<PosixAcls>,
}

/// A cached answer for one path.
#[derive(Debug, Clone)]
enum Slot {
    /// Exists, with these attributes, fetched at the instant.
    Present(Stat, Instant),
    /// Known absent since the instant.
    Absent(Instant),
}

/// Everything behind the mutex.
struct Inner {
    /// Path → slot.
    entries: LruCache<String, Slot>,
    /// Path → HEAD-only metadata by identity.
    head: LruCache<String, HeadMeta>,
    /// Directory path → (mtime, ctime) set by this mount's changes of its entries. COS keeps
    /// no time for a listing, so these live here and win over what a later look-up fetches:
    /// a directory's times never go back (`tar` compares them before and after reading).
    dir_times: LruCache<String, (SystemTime, SystemTime)>,
    /// Path → `clock` at this mount's last change of it (bounded: only changes newer than
    /// the look-ups in flight matter).
    changed: LruCache<String, u64>,
    /// Counts changes.
    clock: u64,
    /// `clock` at the last change of a whole tree (`invalidate_tree`).
    tree_changed: u64,
}

/// Changes remembered for `put_seen`.
const CHANGES_KEPT: usize = 4096;

/// Attribute + negative cache (see module doc).
pub struct AttrCache {
    /// Validity of positive entries.
    ttl: Duration,
    /// Validity of negative entries.
    neg_ttl: Duration,
    /// State; leaf lock.
    inner: Mutex<Inner>,
}

/// What the cache knows about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// Exists.
    Present(Stat),
    /// Known absent.
    Absent,
    /// Known, but older than the TTL: revalidate (one request) before trusting it.
    Stale(Stat),
    /// Unknown: ask COS.
    Unknown,
}

impl AttrCache {
    /// A cache of at most `capacity` paths.
    pub fn new(ttl: Duration, neg_ttl: Duration, capacity: usize) -> AttrCache {
        let cap = NonZeroUsize::new(capacity.max(16)).unwrap_or(NonZeroUsize::MIN);
        AttrCache {
            ttl,
            neg_ttl,
            inner: Mutex::new(Inner {
                entries: LruCache::new(cap),
                head: LruCache::new(cap),
                dir_times: LruCache::new(cap),
                changed: LruCache::new(
                    NonZeroUsize::new(CHANGES_KEPT).unwrap_or(NonZeroUsize::MIN),
                ),
                clock: 0,
                tree_changed: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Looks a path up.
    pub fn get(&self, path: &str) -> Cached {
        let mut g = self.lock();
        match g.entries.get(path) {
            Some(Slot::Present(s, at)) if at.elapsed() < self.ttl => Cached::Present(s.clone()),
            // Directories change rarely and are looked up at every path walk: they keep a
            // longer life (their contents are listed afresh by every readdir anyway).
            Some(Slot::Present(s, at)) if s.kind == FileKind::Dir && at.elapsed() < DIR_TTL => {
                Cached::Present(s.clone())
            }
            Some(Slot::Present(s, _)) => Cached::Stale(s.clone()),
            Some(Slot::Absent(at)) if at.elapsed() < self.neg_ttl => Cached::Absent,
            _ => Cached::Unknown,
        }
    }

    /// True when `path`'s attributes came from COS (or this mount) less than `d` ago.
    pub fn validated_within(&self, path: &str, d: Duration) -> bool {
        matches!(self.lock().entries.peek(path), Some(Slot::Present(_, at)) if at.elapsed() < d)
    }

    /// Now, for [`AttrCache::put_seen`]: taken before the look-up whose answer is recorded.
    pub fn epoch(&self) -> u64 {
        self.lock().clock
    }

    /// Records what a look-up begun at `since` (an [`AttrCache::epoch`]) found at `path`
    /// (None: nothing), unless this mount changed the path meanwhile; returns what now
    /// stands (the change, when it is still cached; else the answer, not recorded).
    pub fn put_seen(&self, path: &str, s: Option<Stat>, since: u64) -> Option<Stat> {
        let mut g = self.lock();
        let changed = g.tree_changed > since || g.changed.peek(path).is_some_and(|&c| c > since);
        if changed {
            return match g.entries.peek(path) {
                Some(Slot::Present(now, _)) => Some(now.clone()),
                Some(Slot::Absent(_)) => None,
                None => s,
            };
        }
        match s {
            Some(s) => {
                Self::store(&mut g, path, s.clone());
                Some(s)
            }
            None => {
                g.entries
                    .put(path.to_string(), Slot::Absent(Instant::now()));
                None
            }
        }
    }

    /// Marks a change of `path` by this mount.
    fn change(g: &mut Inner, path: &str) {
        g.clock += 1;
        let now = g.clock;
        g.changed.put(path.to_string(), now);
    }

    /// Records attributes from a local change (or a HEAD; remembers HEAD-only metadata).
    pub fn put(&self, path: &str, s: Stat) {
        let mut g = self.lock();
        Self::change(&mut g, path);
        Self::store(&mut g, path, s);
    }

    fn store(g: &mut Inner, path: &str, mut s: Stat) {
        if s.kind == FileKind::Dir {
            if let Some(&(m, c)) = g.dir_times.get(path) {
                s.mtime = s.mtime.max(m);
                s.ctime = s.ctime.max(c);
            }
        }
        // Directories are never listed as Contents, so their metadata is not needed here (and an
        // empty marker's ETag equals an empty file's: never let one stand for the other).
        if s.from_head && s.kind != FileKind::Dir {
            let hm = HeadMeta {
                etag: s.etag.clone(),
                last_modified: s.last_modified,
                size: s.size,
                kind: s.kind,
                perm: s.perm,
                uid: s.uid,
                gid: s.gid,
                mtime: s.mtime,
                atime: s.atime,
                ctime: s.ctime,
                rdev: s.rdev,
                acl: s.acl.clone(),
            };
            g.head.put(path.to_string(), hm);
        }
        g.entries
            .put(path.to_string(), Slot::Present(s, Instant::now()));
    }

    /// Records attributes from a listing: HEAD-only metadata cached for the same ETag and
    /// Last-Modified is applied; otherwise the listing's defaults stand. Returns the result.
    pub fn put_listed(&self, path: &str, mut s: Stat) -> Stat {
        let mut g = self.lock();
        if let Some(hm) = g.head.get_mut(path) {
            // Our own writes are remembered before COS names their ETag/Last-Modified: match
            // on what is known, then pin the identity so a later outside change is noticed.
            let etag_ok = match &hm.etag {
                Some(e) => s.etag.as_ref() == Some(e),
                None => hm.size == s.size,
            };
            let lm_ok = hm.last_modified.is_none() || hm.last_modified == s.last_modified;
            if etag_ok && lm_ok {
                hm.etag = s.etag.clone();
                hm.last_modified = s.last_modified;
                if s.kind == FileKind::File {
                    s.kind = hm.kind;
                }
                s.perm = hm.perm;
                s.uid = hm.uid;
                s.gid = hm.gid;
                s.mtime = hm.mtime;
                s.atime = hm.atime;
                s.ctime = hm.ctime;
                s.rdev = hm.rdev;
                s.acl = hm.acl.clone();
                s.from_head = true;
            }
        }
        g.entries
            .put(path.to_string(), Slot::Present(s.clone(), Instant::now()));
        s
    }

    /// A directory's entries changed now: its mtime and ctime become `now`, kept over later
    /// look-ups. `base` is what is known of it when the cache holds nothing.
    pub fn touch_dir(&self, path: &str, now: SystemTime, base: Option<Stat>) {
        let mut g = self.lock();
        g.dir_times.put(path.to_string(), (now, now));
        let current = match g.entries.get(path) {
            Some(Slot::Present(s, _)) => Some(s.clone()),
            _ => base,
        };
        drop(g);
        if let Some(s) = current {
            self.put(path, s);
        }
    }

    /// A directory's times set by hand (utimes, chmod): they replace what `touch_dir` recorded,
    /// which `put` would otherwise keep as the later of the two.
    pub fn set_dir_times(&self, path: &str, mtime: SystemTime, ctime: SystemTime) {
        self.lock().dir_times.put(path.to_string(), (mtime, ctime));
    }

    /// Records that a path does not exist (a local change, or a look-up's answer).
    pub fn put_absent(&self, path: &str) {
        let mut g = self.lock();
        Self::change(&mut g, path);
        g.entries
            .put(path.to_string(), Slot::Absent(Instant::now()));
    }

    /// Forgets what is known about a path (not its local state).
    pub fn invalidate(&self, path: &str) {
        let mut g = self.lock();
        Self::change(&mut g, path);
        g.entries.pop(path);
    }

    /// Forgets every path equal to `dir` or under `dir/` (directory rename/removal).
    pub fn invalidate_tree(&self, dir: &str) {
        let mut g = self.lock();
        g.clock += 1;
        g.tree_changed = g.clock;
        drop_tree_in(&mut g.entries, dir);
        drop_tree_in(&mut g.dir_times, dir);
    }

    /// Moves the HEAD-only metadata of `from` (and, for a directory, of every path under it)
    /// to `to`. A copy keeps x-cos-meta-* but may change the ETag (multipart sources) and
    /// always changes Last-Modified, so the moved entries match by size until a listing pins
    /// them again. A file's costs one look-up, not a scan of the cache (`rsync` and `pip`
    /// rename every file they write).
    pub fn rename_head(&self, from: &str, to: &str, dir: bool) {
        let mut g = self.lock();
        let moved: Vec<(String, HeadMeta)> = if dir {
            let under = format!("{from}/");
            g.head
                .iter()
                .filter(|(k, _)| *k == from || k.starts_with(&under))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            g.head
                .pop(from)
                .map(|hm| (from.to_string(), hm))
                .into_iter()
                .collect()
        };
        for (k, mut hm) in moved {
            g.head.pop(&k);
            hm.etag = None;
            hm.last_modified = None;
            g.head.put(format!("{to}{}", &k[from.len()..]), hm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::meta::Defaults;
    use crate::store::{ListEntry, StorageClass};

    const D: Defaults = Defaults {
        uid: 1,
        gid: 2,
        umask: 0o022,
    };

    fn listed(etag: &str) -> Stat {
        let e = ListEntry {
            key: "k".into(),
            size: 3,
            etag: etag.into(),
            last_modified: SystemTime::UNIX_EPOCH,
            storage_class: StorageClass::Standard,
        };
        Stat::from_list(&e, false, &D)
    }

    #[test]
    fn listing_reuses_head_meta_for_same_identity_only() {
        let c = AttrCache::new(Duration::from_secs(60), Duration::from_secs(60), 100);
        let mut h = listed("e1");
        h.perm = 0o600;
        h.uid = 42;
        h.from_head = true;
        c.put("a", h);
        let same = c.put_listed("a", listed("e1"));
        assert_eq!((same.perm, same.uid, same.from_head), (0o600, 42, true));
        let changed = c.put_listed("a", listed("e2"));
        assert_eq!(
            (changed.perm, changed.uid, changed.from_head),
            (0o644, 1, false)
        );
    }

    #[test]
    fn negative_expiry() {
        let c = AttrCache::new(Duration::from_secs(60), Duration::ZERO, 100);
        c.put_absent("x");
        assert_eq!(c.get("x"), Cached::Unknown); // zero negative TTL
        let c = AttrCache::new(Duration::from_secs(60), Duration::from_secs(60), 100);
        c.put_absent("x");
        assert_eq!(c.get("x"), Cached::Absent);
        c.put("e/x", Stat::new_local(FileKind::File, 0o644, 0, 0));
        assert!(matches!(c.get("e/x"), Cached::Present(_)));
        c.invalidate_tree("e");
        assert_eq!(c.get("e/x"), Cached::Unknown);
    }

    #[test]
    fn a_look_up_yields_to_changes_made_while_it_ran() {
        let c = AttrCache::new(Duration::from_secs(60), Duration::from_secs(60), 100);
        let mut old = listed("e");
        old.from_head = true;
        let mut new = old.clone();
        new.perm = 0o600;
        // chmod while a HEAD was out: the chmod stands, and is the answer.
        let since = c.epoch();
        c.put("a", new.clone());
        assert_eq!(c.put_seen("a", Some(old.clone()), since), Some(new.clone()));
        assert_eq!(c.get("a"), Cached::Present(new.clone()));
        // unlink while it was out: absent.
        let since = c.epoch();
        c.put_absent("a");
        assert_eq!(c.put_seen("a", Some(old.clone()), since), None);
        assert_eq!(c.get("a"), Cached::Absent);
        // Forgotten (rename) while it was out: the answer is given, not kept.
        let since = c.epoch();
        c.invalidate("a");
        assert_eq!(c.put_seen("a", Some(old.clone()), since), Some(old.clone()));
        assert_eq!(c.get("a"), Cached::Unknown);
        let since = c.epoch();
        c.invalidate_tree("d");
        assert_eq!(c.put_seen("d/x", None, since), None);
        assert_eq!(c.get("d/x"), Cached::Unknown);
        // Nothing changed meanwhile: kept, absent ones too.
        let since = c.epoch();
        assert_eq!(c.put_seen("a", Some(old.clone()), since), Some(old.clone()));
        assert_eq!(c.get("a"), Cached::Present(old));
        assert_eq!(c.put_seen("b", None, since), None);
        assert_eq!(c.get("b"), Cached::Absent);
    }

    #[test]
    fn renamed_files_and_trees_keep_their_head_metadata() {
        let c = AttrCache::new(Duration::from_secs(60), Duration::from_secs(60), 100);
        let mut h = listed("e1");
        h.perm = 0o600;
        h.from_head = true;
        for p in ["d/f", "d/f2", "t/x", "t/sub/y"] {
            c.put(p, h.clone());
        }
        c.rename_head("d/f", "d/g", false);
        c.rename_head("t", "u", true);
        // Moved entries match by size (a copy may change the ETag); the others stay put.
        for p in ["d/g", "u/x", "u/sub/y"] {
            assert_eq!(c.put_listed(p, listed("e9")).perm, 0o600, "{p}");
        }
        assert_eq!(c.put_listed("d/f2", listed("e1")).perm, 0o600, "a sibling");
        for p in ["d/f", "t/x", "t/sub/y"] {
            assert_eq!(c.put_listed(p, listed("e1")).perm, 0o644, "{p}");
        }
    }
}
