//! The persistent metadata cache: for each object key, the POSIX metadata (`x-cos-meta-mode`,
//! `-uid`, `-gid`, `-mtime`, ...) it carried at a given ETag. GET Bucket does not return user
//! metadata, so without this a fresh mount would either HEAD every listed object or guess
//! (a symlink shown as a file, a 0600 file as 0644). With it, a listing whose ETags are
//! unchanged costs no HEAD at all, across remounts.
//!
//! File: `CACHE/meta`, one JSON object a line (`{"k":KEY,"e":ETAG,"m":{...}}`), appended on
//! change, last line of a key wins; rewritten with only the live entries when dead lines
//! dominate. Bounded: at most `capacity` keys (least recently used dropped). A changed ETag
//! invalidates the entry (the caller compares it). Losing the file costs HEADs, nothing else.
//!
//! In memory a record is three boxed strings, the metadata kept as its JSON text and parsed on
//! a hit: as a map of owned strings it took about 1.3 KiB a key (130 MiB at the default
//! 100 000 keys), as text about 0.5 KiB.
//!
//! Records from a HEAD or a listing are observations: one that began before a change this
//! mount made (a chmod's copy in place, an upload) yields to it (`put_seen`), since COS keeps
//! the ETag through a copy in place and the stale answer would otherwise stand for the new
//! metadata until the content changes.
//!
//! Locking: one std mutex, a leaf lock (never across `.await`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lru::LruCache;
use serde::Deserialize;

/// File name inside the cache directory.
pub const META_FILE: &str = "meta";

/// One line, as read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Line {
    /// Object key.
    k: String,
    /// ETag the metadata belongs to (quotes stripped).
    e: String,
    /// The metadata (names without `x-cos-meta-`).
    m: BTreeMap<String, String>,
    /// A removal: the key's earlier lines no longer count.
    #[serde(default)]
    x: bool,
}

/// What is cached for one key.
#[derive(Debug, Clone)]
struct Rec {
    /// ETag.
    etag: Box<str>,
    /// Metadata, as JSON text (see module doc).
    meta: Box<str>,
    /// `Inner::clock` when it was recorded (0: read from the file).
    stamp: u64,
}

impl Rec {
    fn new(etag: &str, meta: &BTreeMap<String, String>) -> Option<Rec> {
        Some(Rec {
            etag: norm(etag).into(),
            meta: serde_json::to_string(meta).ok()?.into(),
            stamp: 0,
        })
    }

    /// Same ETag and metadata.
    fn same(&self, other: &Rec) -> bool {
        self.etag == other.etag && self.meta == other.meta
    }

    fn meta(&self) -> Option<BTreeMap<String, String>> {
        serde_json::from_str(&self.meta).ok()
    }

    /// The file's line for `key` (without the newline).
    fn line(&self, key: &str) -> Option<String> {
        let k = serde_json::to_string(key).ok()?;
        let e = serde_json::to_string(&*self.etag).ok()?;
        Some(format!("{{\"k\":{k},\"e\":{e},\"m\":{}}}", self.meta))
    }
}

/// Everything behind the mutex.
struct Inner {
    /// Key → record.
    map: LruCache<String, Rec>,
    /// Append handle (None: memory only).
    file: Option<File>,
    /// Lines in the file.
    lines: usize,
    /// Counts records (see `MetaDb::epoch`).
    clock: u64,
}

/// The persistent metadata cache (see module doc).
pub struct MetaDb {
    /// The file (None: memory only).
    path: Option<PathBuf>,
    /// State; leaf lock.
    inner: Mutex<Inner>,
}

fn norm(etag: &str) -> &str {
    etag.trim_matches('"')
}

impl MetaDb {
    /// A cache in memory only.
    pub fn memory(capacity: usize) -> MetaDb {
        MetaDb {
            path: None,
            inner: Mutex::new(Inner {
                map: LruCache::new(NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN)),
                file: None,
                lines: 0,
                clock: 0,
            }),
        }
    }

    /// Opens (or creates) the cache file in `dir`. An unreadable file is started afresh
    /// (it only saves requests).
    pub fn open(dir: &Path, capacity: usize) -> MetaDb {
        let path = dir.join(META_FILE);
        let db = MetaDb::memory(capacity);
        {
            let mut g = db.lock();
            if let Ok(f) = File::open(&path) {
                for line in BufReader::new(f).split(b'\n').map_while(Result::ok) {
                    let Ok(l) = serde_json::from_slice::<Line>(&line) else {
                        continue;
                    };
                    if l.x {
                        g.map.pop(&l.k);
                    } else if let Some(rec) = Rec::new(&l.e, &l.m) {
                        g.map.put(l.k, rec);
                    }
                }
            }
            match rewrite(&path, &g.map) {
                Ok(f) => {
                    g.lines = g.map.len();
                    g.file = Some(f);
                }
                Err(e) => log::warn!(
                    "metadata cache {}: {e}; keeping it in memory only",
                    path.display()
                ),
            }
        }
        MetaDb {
            path: Some(path),
            inner: db.inner,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The metadata `key` carried at `etag`, if known.
    pub fn get(&self, key: &str, etag: &str) -> Option<BTreeMap<String, String>> {
        let mut g = self.lock();
        match g.map.get(key) {
            Some(r) if &*r.etag == norm(etag) => r.meta(),
            _ => None,
        }
    }

    /// The metadata last known for `key`, whatever its ETag (directory markers, whose ETag a
    /// delimited listing does not show).
    pub fn get_any(&self, key: &str) -> Option<BTreeMap<String, String>> {
        self.lock().map.get(key).and_then(Rec::meta)
    }

    /// Now, for [`MetaDb::put_seen`]: taken before the request whose answer is recorded.
    pub fn epoch(&self) -> u64 {
        self.lock().clock
    }

    /// Records the metadata of `key` at `etag`, as this mount just made it (no write when
    /// nothing changed).
    pub fn put(&self, key: &str, etag: &str, meta: BTreeMap<String, String>) {
        self.record(key, etag, &meta, None);
    }

    /// Records the metadata of `key` at `etag` as a request begun at `since` (an
    /// [`MetaDb::epoch`]) saw it, unless the key was recorded anew meanwhile: that record is
    /// at least as new (see module doc).
    pub fn put_seen(&self, key: &str, etag: &str, meta: BTreeMap<String, String>, since: u64) {
        self.record(key, etag, &meta, Some(since));
    }

    fn record(&self, key: &str, etag: &str, meta: &BTreeMap<String, String>, since: Option<u64>) {
        let Some(mut rec) = Rec::new(etag, meta) else {
            return;
        };
        let mut g = self.lock();
        g.clock += 1;
        rec.stamp = g.clock;
        if let Some(old) = g.map.get_mut(key) {
            if since.is_some_and(|since| old.stamp > since) {
                return;
            }
            if old.same(&rec) {
                old.stamp = rec.stamp;
                return;
            }
        }
        let line = rec.line(key);
        g.map.put(key.to_string(), rec);
        if let Some(line) = line {
            self.append(&mut g, line);
        }
    }

    /// Forgets `key` (deleted, or replaced by a copy of another key), in the file too: a
    /// directory marker's record is used whatever its ETag (`get_any`), so a stale one would
    /// give a later directory of the same name the old one's mode.
    pub fn remove(&self, key: &str) {
        let mut g = self.lock();
        g.clock += 1;
        if g.map.pop(key).is_some() {
            if let Ok(k) = serde_json::to_string(key) {
                self.append(
                    &mut g,
                    format!("{{\"k\":{k},\"e\":\"\",\"m\":{{}},\"x\":true}}"),
                );
            }
        }
    }

    /// `from` was copied to `to` (a rename): `to` now has `from`'s metadata (a copy keeps
    /// the ETag of a single-part object; another ETag simply misses), and `from` is forgotten.
    pub fn rename(&self, from: &str, to: &str) {
        let rec = self.lock().map.peek(from).cloned();
        match rec.and_then(|r| Some((r.etag.clone(), r.meta()?))) {
            Some((etag, meta)) => self.put(to, &etag, meta),
            None => self.remove(to),
        }
        self.remove(from);
    }

    fn append(&self, g: &mut Inner, line: String) {
        let Some(f) = g.file.as_mut() else { return };
        let mut buf = line.into_bytes();
        buf.push(b'\n');
        if let Err(e) = f.write_all(&buf) {
            log::warn!("metadata cache: {e}; keeping it in memory only");
            g.file = None;
            return;
        }
        g.lines += 1;
        if g.lines > 2 * g.map.len() + 1024 {
            if let Some(p) = &self.path {
                match rewrite(p, &g.map) {
                    Ok(f) => {
                        g.file = Some(f);
                        g.lines = g.map.len();
                    }
                    Err(e) => log::warn!("metadata cache {}: {e}", p.display()),
                }
            }
        }
    }

    /// Number of keys cached.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes the live entries (least recently used first, so a reload keeps the order) to a new
/// file and returns its append handle.
fn rewrite(path: &Path, map: &LruCache<String, Rec>) -> io::Result<File> {
    let mut buf = Vec::new();
    for (k, r) in map.iter().rev() {
        if let Some(line) = r.line(k) {
            buf.extend(line.into_bytes());
            buf.push(b'\n');
        }
    }
    // Not fsync'd: losing this cache costs HEAD requests, nothing else.
    super::journal::replace_file(path, &buf, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(mode: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("mode".to_string(), mode.to_string())])
    }

    #[test]
    fn survives_reopen_and_a_changed_etag_invalidates() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = MetaDb::open(dir.path(), 10);
            db.put("a", "\"e1\"", meta("33152"));
            db.put("b", "e2", meta("41471"));
            db.put("a", "e3", meta("33188"));
        }
        let db = MetaDb::open(dir.path(), 10);
        assert_eq!(db.get("a", "e1"), None, "older ETag");
        assert_eq!(db.get("a", "\"e3\""), Some(meta("33188")));
        assert_eq!(db.get("b", "e2"), Some(meta("41471")));
        assert_eq!(db.get_any("b"), Some(meta("41471")));
        db.remove("b");
        assert_eq!(db.get("b", "e2"), None);
    }

    #[test]
    fn keys_and_values_that_need_escaping_survive_a_rewrite_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = "d\"ir/new\nline \\ 名前";
        let m = BTreeMap::from([
            ("mode".to_string(), "33188".to_string()),
            ("xattr".to_string(), "{\"user.a\":\"\\u0000\"}".to_string()),
        ]);
        {
            let db = MetaDb::open(dir.path(), 10);
            db.put(key, "\"e1\"", m.clone());
        }
        // The first reopen reads the appended line, the second the rewritten file.
        for _ in 0..2 {
            let db = MetaDb::open(dir.path(), 10);
            assert_eq!(db.get(key, "e1"), Some(m.clone()));
        }
    }

    #[test]
    fn bounded_by_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let db = MetaDb::open(dir.path(), 3);
        for i in 0..10 {
            db.put(&format!("k{i}"), "e", meta("1"));
        }
        assert_eq!(db.len(), 3);
        drop(db);
        let db = MetaDb::open(dir.path(), 3);
        assert_eq!(db.len(), 3);
        assert!(db.get("k9", "e").is_some() && db.get("k0", "e").is_none());
    }

    #[test]
    fn an_answer_from_before_a_change_yields_to_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = MetaDb::open(dir.path(), 10);
            db.put("f", "e", meta("33188"));
            // A HEAD goes out, then a chmod copies the object in place (same ETag) ...
            let head_sent = db.epoch();
            db.put("f", "e", meta("33152"));
            // ... and the HEAD's older answer arrives last: the chmod's record stands.
            db.put_seen("f", "e", meta("33188"), head_sent);
            assert_eq!(db.get("f", "e"), Some(meta("33152")));
            // An answer from a request sent after the change is taken.
            let later = db.epoch();
            db.put_seen("f", "e2", meta("33261"), later);
            assert_eq!(db.get("f", "e2"), Some(meta("33261")));
            // Nor does a change equal to the record let an older answer through.
            let head_sent = db.epoch();
            db.put("f", "e2", meta("33261"));
            db.put_seen("f", "e2", meta("33188"), head_sent);
            assert_eq!(db.get("f", "e2"), Some(meta("33261")));
        }
        let db = MetaDb::open(dir.path(), 10);
        assert_eq!(db.get("f", "e2"), Some(meta("33261")), "after a reopen");
    }

    #[test]
    fn removals_and_renames_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = MetaDb::open(dir.path(), 10);
            db.put("a/", "", meta("16832"));
            db.put("b/", "", meta("16877"));
            db.put("c/", "", meta("16888"));
            db.remove("a/");
            db.rename("b/", "a/");
            db.rename("gone/", "c/");
            assert_eq!(db.get_any("a/"), Some(meta("16877")));
            assert_eq!(db.get_any("b/"), None);
            assert_eq!(db.get_any("c/"), None, "renamed from an unknown key");
        }
        let db = MetaDb::open(dir.path(), 10);
        assert_eq!(db.get_any("a/"), Some(meta("16877")));
        assert_eq!(db.get_any("b/"), None);
        assert_eq!(db.get_any("c/"), None);
    }
}
