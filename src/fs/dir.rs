//! readdir over GET Bucket with `delimiter=/`, paged to the end: entries from Contents and
//! CommonPrefixes (a `dir/` marker and an implicit directory both count), plus files this mount
//! has pending uploads for or is writing. Each listing entry fills the metadata cache, so `ls -l`
//! costs list pages only, no HEAD per entry.
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
use super::types::{DirEntry, DirSink, Fh, FileKind, InodeNo, ROOT_INO};
use super::{Fs, Handle};
use crate::store::ListRequest;

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

    /// releasedir.
    pub async fn releasedir(&self, _ino: InodeNo, fh: Fh) -> FsResult<()> {
        self.take_handle(fh).map(|_| ())
    }

    /// readdir: fills `sink` from `offset` until it is full or the directory ends.
    pub async fn readdir(
        &self,
        ino: InodeNo,
        fh: Fh,
        offset: i64,
        sink: &mut dyn DirSink,
    ) -> FsResult<()> {
        let h = match self.handle(fh)? {
            Handle::Dir(d) => d,
            Handle::File(_) => return Err(FsError::NotDir),
        };
        let mut h = h.lock().await;
        if h.ino != ino {
            return Err(FsError::BadHandle);
        }
        if offset == 0 {
            h.entries = self.list_dir(ino).await?;
        }
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

    /// Lists directory `ino` completely (see module doc).
    pub(crate) async fn list_dir(
        &self,
        ino: InodeNo,
    ) -> FsResult<Vec<(String, FileKind, InodeNo)>> {
        let rel = self.dir_path(ino)?;
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
        for _ in 0..MAX_PAGES {
            let req = ListRequest {
                prefix: prefix.clone(),
                delimiter: Some('/'),
                marker: marker.clone(),
                max_keys: Some(1000),
            };
            let page = self.store.list_objects(&req).await?;
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
                if self.attrs.get(&path) == Cached::Unknown {
                    self.attrs.put(&path, Stat::dir(&d, self.started));
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
                let s = self
                    .attrs
                    .put_listed(&join(&rel, name), Stat::from_list(o, false, &d));
                add(&mut names, name, s.kind);
            }
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
        for (name, _, node) in self.table.staged_children(ino) {
            add(&mut names, &name, node.kind);
        }
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
}
