//! The crash journal of the write-back cache: one record per pending upload, so a daemon that
//! dies with uploads queued lets the next mount on the same cache directory finish them.
//!
//! Format: `root/journal`, one JSON object a line, append-only. A `put` record inserts or replaces
//! the entry with its id (enqueue, retarget, metadata change, multipart upload id); a `remove`
//! record ends it (uploaded, cancelled, discarded, superseded). Replay folds the lines in order;
//! a torn last line (crash in the middle of a write) is skipped with a warning. On open, and when
//! dead records dominate, the file is rewritten atomically (tmp + fsync + rename + dir fsync)
//! with only the live entries.
//!
//! Durability: records that must survive a crash (enqueue, completion) are appended with
//! `sync = true` (fdatasync before returning). Records whose loss is harmless (a superseded
//! entry's removal, which replay re-derives) may skip the sync.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::{ObjectHeaders, PutOptions, StorageClass};

/// File name of the journal inside the cache directory.
pub const JOURNAL_FILE: &str = "journal";

/// Rewrite the journal when more than this many records were appended since the last rewrite
/// and they outnumber the live entries four to one.
const COMPACT_AFTER: usize = 4096;

/// What the local copy was based on, for conflict detection at recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    /// A new file: no object existed when it was created.
    New,
    /// The object had this ETag when the local copy started from it.
    Etag(String),
    /// Overwrite whatever is there (e.g. a renamed pending file).
    Any,
}

impl Base {
    /// From the `base_etag` argument of `enqueue`.
    pub fn from_etag(etag: Option<String>) -> Base {
        match etag {
            Some(e) => Base::Etag(e.trim_matches('"').to_string()),
            None => Base::New,
        }
    }
}

/// `PutOptions` as stored in the journal (the store types are not serde types).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptsRecord {
    /// `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Cache-Control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Expires`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `x-cos-meta-*`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_meta: BTreeMap<String, String>,
    /// Storage class wire name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Canned ACL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
    /// `x-cos-grant-read`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_read: Option<String>,
    /// `x-cos-grant-full-control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_full_control: Option<String>,
}

impl From<&PutOptions> for OptsRecord {
    fn from(o: &PutOptions) -> Self {
        OptsRecord {
            content_type: o.headers.content_type.clone(),
            cache_control: o.headers.cache_control.clone(),
            content_disposition: o.headers.content_disposition.clone(),
            content_encoding: o.headers.content_encoding.clone(),
            expires: o.headers.expires.clone(),
            user_meta: o.headers.user_meta.clone(),
            storage_class: o.storage_class.as_ref().map(|c| c.as_str().to_string()),
            acl: o.acl.clone(),
            grant_read: o.grant_read.clone(),
            grant_full_control: o.grant_full_control.clone(),
        }
    }
}

impl OptsRecord {
    /// Back to the store type.
    pub fn to_opts(&self) -> PutOptions {
        PutOptions {
            headers: ObjectHeaders {
                content_type: self.content_type.clone(),
                cache_control: self.cache_control.clone(),
                content_disposition: self.content_disposition.clone(),
                content_encoding: self.content_encoding.clone(),
                expires: self.expires.clone(),
                user_meta: self.user_meta.clone(),
            },
            storage_class: self.storage_class.as_deref().map(StorageClass::parse),
            acl: self.acl.clone(),
            grant_read: self.grant_read.clone(),
            grant_full_control: self.grant_full_control.clone(),
        }
    }
}

/// One pending upload as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Task id (unique within the cache directory's lifetime of journal).
    pub id: u64,
    /// Order among uploads of the same key (newer = larger).
    pub seq: u64,
    /// Target object key.
    pub key: String,
    /// The staging file holding the data.
    pub file: PathBuf,
    /// Size given at enqueue.
    pub size: u64,
    /// Metadata the upload sends.
    pub opts: OptsRecord,
    /// What the local copy was based on.
    pub base: Base,
    /// Multipart upload id in COS, so a later daemon can abort a half-done upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// An early multipart upload (`early.rs`) of a file not yet closed: not an upload to
    /// finish. Recovery aborts `upload_id`; the staging file counts as unclosed (orphan).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unclosed: bool,
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Record {
    /// Insert or replace an entry.
    Put(Box<Entry>),
    /// End an entry.
    Remove {
        /// The task id.
        id: u64,
    },
    /// Ids up to this one were handed out (written first by a rewrite, so ids stay unique
    /// across daemons even after the entries holding them are gone).
    MaxId {
        /// The largest id or seq used so far.
        max: u64,
    },
}

/// The open journal: file handle plus the live entries it describes.
#[derive(Debug)]
pub struct Journal {
    /// `root/journal`.
    path: PathBuf,
    /// Append handle.
    file: File,
    /// Live entries by id (mirrors what a replay of the file would produce).
    live: BTreeMap<u64, Entry>,
    /// Records appended since the last rewrite.
    appended: usize,
    /// Entries found at open that no `UploadQueue::recover` has taken yet.
    replayed: Vec<Entry>,
    /// Largest id seen in the file at open.
    max_id: u64,
}

/// Parses journal text; returns the live entries and the number of unreadable lines.
fn replay(reader: impl BufRead) -> io::Result<(BTreeMap<u64, Entry>, usize, u64)> {
    let mut live = BTreeMap::new();
    let mut bad = 0;
    let mut max_id = 0;
    for line in reader.split(b'\n') {
        let line = line?;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match serde_json::from_slice::<Record>(&line) {
            Ok(Record::Put(e)) => {
                max_id = max_id.max(e.id).max(e.seq);
                live.insert(e.id, *e);
            }
            Ok(Record::Remove { id }) => {
                max_id = max_id.max(id);
                live.remove(&id);
            }
            Ok(Record::MaxId { max }) => max_id = max_id.max(max),
            Err(_) => bad += 1,
        }
    }
    Ok((live, bad, max_id))
}

fn encode(rec: &Record) -> io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(rec).map_err(io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

/// Atomically replaces the file at `path` with `contents` (a temporary file renamed over it;
/// `durable`: fsync'd, with its directory, so a crash leaves the old or the new file whole) and
/// returns an append handle on it. The journals and caches of this module rewrite themselves
/// compacted this way.
pub(crate) fn replace_file(path: &Path, contents: &[u8], durable: bool) -> io::Result<File> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(contents)?;
        if durable {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if durable {
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
    }
    OpenOptions::new().append(true).open(path)
}

/// fsyncs a directory so a create/rename inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, replays it and rewrites it compacted.
    pub fn open(dir: &Path) -> io::Result<Journal> {
        let path = dir.join(JOURNAL_FILE);
        let (live, bad, max_id) = match File::open(&path) {
            Ok(f) => replay(BufReader::new(f))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => (BTreeMap::new(), 0, 0),
            Err(e) => return Err(e),
        };
        if bad > 0 {
            log::warn!(
                "journal {}: skipped {bad} unreadable line(s) (torn write from a crash?)",
                path.display()
            );
        }
        let mut replayed: Vec<Entry> = live.values().cloned().collect();
        replayed.sort_by_key(|e| e.seq);
        let file = Self::rewrite(&path, &live, max_id)?;
        Ok(Journal {
            path,
            file,
            live,
            appended: 0,
            replayed,
            max_id,
        })
    }

    /// Atomically replaces the file at `path` with the `live` entries; returns an append handle.
    fn rewrite(path: &Path, live: &BTreeMap<u64, Entry>, max_id: u64) -> io::Result<File> {
        let mut buf = encode(&Record::MaxId { max: max_id })?;
        for e in live.values() {
            buf.extend_from_slice(&encode(&Record::Put(Box::new(e.clone())))?);
        }
        replace_file(path, &buf, true)
    }

    /// Largest task id (or seq) ever journaled in this directory; new ids must be above it.
    pub fn max_id(&self) -> u64 {
        self.max_id
    }

    /// Entries left by a previous daemon, oldest first; returned once.
    pub fn take_replayed(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.replayed)
    }

    /// Gives entries back (a recovery that stopped half-way).
    pub fn put_back_replayed(&mut self, mut entries: Vec<Entry>) {
        entries.append(&mut self.replayed);
        self.replayed = entries;
    }

    /// The live entry with this id.
    pub fn get(&self, id: u64) -> Option<&Entry> {
        self.live.get(&id)
    }

    /// Live entry ids and files (to tell orphaned staging files).
    pub fn live_files(&self) -> Vec<PathBuf> {
        // An unclosed file's early upload does not make it a pending upload.
        self.live
            .values()
            .filter(|e| !e.unclosed)
            .map(|e| e.file.clone())
            .collect()
    }

    fn append(&mut self, recs: &[Record], sync: bool) -> io::Result<()> {
        if recs.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for r in recs {
            buf.extend_from_slice(&encode(r)?);
        }
        // One write per batch: a crash tears at most the last line, which replay skips.
        self.file.write_all(&buf)?;
        if sync {
            self.file.sync_data()?;
        }
        self.appended += recs.len();
        if self.appended > COMPACT_AFTER && self.appended > 4 * self.live.len() {
            self.file = Self::rewrite(&self.path, &self.live, self.max_id)?;
            self.appended = 0;
        }
        Ok(())
    }

    /// Inserts or replaces an entry.
    pub fn put(&mut self, e: Entry, sync: bool) -> io::Result<()> {
        self.max_id = self.max_id.max(e.id).max(e.seq);
        self.live.insert(e.id, e.clone());
        self.append(&[Record::Put(Box::new(e))], sync)
    }

    /// Changes a live entry in place; false when there is none with this id.
    pub fn update(&mut self, id: u64, f: impl FnOnce(&mut Entry), sync: bool) -> io::Result<bool> {
        let Some(e) = self.live.get_mut(&id) else {
            return Ok(false);
        };
        f(e);
        self.max_id = self.max_id.max(e.id).max(e.seq);
        let rec = Record::Put(Box::new(e.clone()));
        self.append(&[rec], sync).map(|_| true)
    }

    /// Ends entries.
    pub fn remove(&mut self, ids: &[u64], sync: bool) -> io::Result<()> {
        let recs: Vec<Record> = ids
            .iter()
            .filter(|id| self.live.remove(id).is_some())
            .map(|&id| Record::Remove { id })
            .collect();
        self.append(&recs, sync)
    }

    /// Makes every record written so far durable (those appended with `sync: false`).
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// The upload of `id` reached COS with `etag`: ends it, and rebases later entries of the
    /// same key on that ETag (they now start from our own upload, not a foreign change).
    /// `sync: false` for an entry that was never fsync'd itself (a lazy one): if a power loss
    /// forgets the end, recovery finds COS already holding the content (or keeps the copy aside).
    pub fn complete(&mut self, id: u64, etag: &str, sync: bool) -> io::Result<()> {
        let Some(done) = self.live.remove(&id) else {
            return Ok(());
        };
        let mut recs = vec![Record::Remove { id }];
        for e in self.live.values_mut() {
            if e.key == done.key && e.seq > done.seq {
                e.base = Base::Etag(etag.to_string());
                recs.push(Record::Put(Box::new(e.clone())));
            }
        }
        // A rebased later entry is worth the fsync (its recovery judges by the new base).
        let sync = sync || recs.len() > 1;
        self.append(&recs, sync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, key: &str) -> Entry {
        Entry {
            id,
            seq: id,
            key: key.to_string(),
            file: PathBuf::from(format!("/tmp/f{id}")),
            size: 10,
            opts: OptsRecord::default(),
            base: Base::New,
            upload_id: None,
            unclosed: false,
        }
    }

    #[test]
    fn opts_round_trip() {
        let mut o = PutOptions::default();
        o.headers.content_type = Some("text/plain".into());
        o.headers.user_meta.insert("mode".into(), "33188".into());
        o.storage_class = Some(StorageClass::StandardIa);
        o.acl = Some("private".into());
        let rec = OptsRecord::from(&o);
        let json = serde_json::to_string(&rec).unwrap();
        let back: OptsRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_opts(), o);
    }

    #[test]
    fn replay_folds_puts_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path()).unwrap();
            assert!(j.take_replayed().is_empty());
            j.put(entry(1, "a"), true).unwrap();
            j.put(entry(2, "b"), true).unwrap();
            j.put(entry(3, "a"), false).unwrap();
            j.remove(&[1], true).unwrap();
            j.update(2, |e| e.upload_id = Some("up".into()), true)
                .unwrap();
            j.complete(3, "etag3", true).unwrap();
        }
        let mut j = Journal::open(dir.path()).unwrap();
        let got = j.take_replayed();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, 2);
        assert_eq!(got[0].upload_id.as_deref(), Some("up"));
        assert_eq!(j.max_id(), 3);
        assert!(
            j.take_replayed().is_empty(),
            "replayed entries are handed out once"
        );
        // Ids stay unique across daemons even after every entry is gone.
        j.remove(&[2], true).unwrap();
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.max_id(), 3);
    }

    #[test]
    fn complete_rebases_later_entries_of_same_key() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path()).unwrap();
            j.put(entry(1, "a"), true).unwrap();
            j.put(entry(2, "a"), true).unwrap();
            j.put(entry(3, "b"), true).unwrap();
            j.complete(1, "e1", true).unwrap();
        }
        let mut j = Journal::open(dir.path()).unwrap();
        let got = j.take_replayed();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].base, Base::Etag("e1".into()));
        assert_eq!(got[1].base, Base::New);
    }

    #[test]
    fn torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path()).unwrap();
            j.put(entry(1, "a"), true).unwrap();
            j.put(entry(2, "b"), true).unwrap();
        }
        let path = dir.path().join(JOURNAL_FILE);
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"{\"op\":\"remove\",\"i");
        std::fs::write(&path, text).unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let ids: Vec<u64> = j.take_replayed().iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![1, 2]);
        // The rewrite at open dropped the torn line: a further append replays cleanly.
        j.remove(&[1], true).unwrap();
        drop(j);
        let mut j = Journal::open(dir.path()).unwrap();
        let ids: Vec<u64> = j.take_replayed().iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![2]);
    }

    #[test]
    fn compaction_keeps_live_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.put(entry(1, "keep"), false).unwrap();
        for i in 2..(COMPACT_AFTER as u64 / 2 + 10) {
            j.put(entry(i, "tmp"), false).unwrap();
            j.remove(&[i], false).unwrap();
        }
        let len = std::fs::metadata(dir.path().join(JOURNAL_FILE))
            .unwrap()
            .len();
        assert!(len < 100_000, "journal was not compacted: {len} bytes");
        drop(j);
        let mut j = Journal::open(dir.path()).unwrap();
        let got = j.take_replayed();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].key, "keep");
    }
}
