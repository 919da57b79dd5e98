//! The namespace journal: deletes and renames that COS has not fully carried out yet, so a
//! daemon crash neither resurrects a deleted name nor loses a renamed one. Beside the upload
//! journal (`journal.rs`) in the cache directory, as `root/intents`, one JSON object a line:
//! `{"op":"begin","id":N,"intent":{...}}` and `{"op":"end","id":N}`.
//!
//! Durability: records are appended with one `write` and not fsync'd: they survive a daemon
//! crash (`kill -9`: the page cache keeps them), and an `rm -r` of thousands of files costs no
//! disk flush per file. A power loss may forget the last moment's deletes and renames: the
//! files then come back (or both names exist), which loses nothing.
//!
//! Replay at the next mount (`recover_intents`, before any upload is re-queued):
//! - `delete KEY`: DELETE it (a name created again since ended the intent first);
//! - `rename FROM TO copy`: if FROM still exists, copy it to TO when `copy`, then DELETE FROM;
//!   without `copy` the new name's bytes are in the upload journal;
//! - `rename_dir FROM/ TO/`: copy every key left under FROM/ whose TO/ twin is missing, then
//!   DELETE the FROM/ keys.

use std::collections::BTreeMap;
use std::fs::File;
#[cfg(test)]
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fs::uploads::Intent;
use crate::store::{CopyOptions, ListRequest, ObjectStore, StoreError};

/// File name of the namespace journal inside the cache directory.
pub const INTENTS_FILE: &str = "intents";

/// Rewrite the file once this many records were appended and the dead ones dominate.
const COMPACT_AFTER: usize = 8192;

/// Most pages one recovery listing may take.
const MAX_PAGES: usize = 10_000;

/// One line of the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Record {
    /// An intent starts.
    Begin {
        /// Its id.
        id: u64,
        /// What is to happen.
        intent: Intent,
    },
    /// It is done (or withdrawn).
    End {
        /// Its id.
        id: u64,
    },
}

/// The open namespace journal.
#[derive(Debug)]
pub struct IntentLog {
    /// `root/intents`.
    path: PathBuf,
    /// Append handle.
    file: File,
    /// Live intents by id.
    live: BTreeMap<u64, Intent>,
    /// Next id.
    next: u64,
    /// Records appended since the last rewrite.
    appended: usize,
}

impl IntentLog {
    /// Opens (or creates) the journal in `dir` and replays it; the live intents stay until
    /// [`IntentLog::take_live`] hands them to recovery.
    pub fn open(dir: &Path) -> io::Result<IntentLog> {
        let path = dir.join(INTENTS_FILE);
        let mut live = BTreeMap::new();
        let mut next = 1;
        match File::open(&path) {
            Ok(f) => {
                for line in BufReader::new(f).split(b'\n') {
                    let line = line?;
                    match serde_json::from_slice::<Record>(&line) {
                        Ok(Record::Begin { id, intent }) => {
                            next = next.max(id + 1);
                            live.insert(id, intent);
                        }
                        Ok(Record::End { id }) => {
                            live.remove(&id);
                        }
                        // A torn last line from a crash: the intent never started.
                        Err(_) => {}
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let file = Self::rewrite(&path, &live)?;
        Ok(IntentLog {
            path,
            file,
            live,
            next,
            appended: 0,
        })
    }

    fn rewrite(path: &Path, live: &BTreeMap<u64, Intent>) -> io::Result<File> {
        let mut buf = Vec::new();
        for (&id, intent) in live {
            buf.extend(encode(&Record::Begin {
                id,
                intent: intent.clone(),
            })?);
        }
        super::journal::replace_file(path, &buf, true)
    }

    fn append(&mut self, rec: &Record) -> io::Result<()> {
        self.file.write_all(&encode(rec)?)?;
        self.appended += 1;
        if self.appended > COMPACT_AFTER && self.appended > 4 * self.live.len() {
            self.file = Self::rewrite(&self.path, &self.live)?;
            self.appended = 0;
        }
        Ok(())
    }

    /// Records an intent; returns its id.
    pub fn begin(&mut self, intent: Intent) -> io::Result<u64> {
        let id = self.next;
        self.next += 1;
        self.live.insert(id, intent.clone());
        self.append(&Record::Begin { id, intent })?;
        Ok(id)
    }

    /// Ends an intent (unknown ids are ignored).
    pub fn end(&mut self, id: u64) -> io::Result<()> {
        if self.live.remove(&id).is_some() {
            self.append(&Record::End { id })?;
        }
        Ok(())
    }

    /// The live intents, oldest first (what a previous daemon left undone).
    pub fn live(&self) -> Vec<(u64, Intent)> {
        self.live.iter().map(|(&id, i)| (id, i.clone())).collect()
    }
}

fn encode(rec: &Record) -> io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(rec).map_err(io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

/// Carries out one intent left by a previous daemon (see the module doc).
pub async fn finish(store: &dyn ObjectStore, intent: &Intent) -> Result<(), StoreError> {
    match intent {
        Intent::Delete { key } => delete(store, key).await,
        Intent::Rename { from, to, copy } => {
            match store.head_object(from).await {
                Ok(_) => {}
                Err(StoreError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
            if *copy {
                // Copy again even when TO exists: it may be the file the rename replaced.
                store.copy_object(from, to, &CopyOptions::default()).await?;
            }
            delete(store, from).await
        }
        Intent::RenameDir { from, to } => {
            let mut marker = None;
            let mut old = Vec::new();
            for _ in 0..MAX_PAGES {
                let page = store
                    .list_objects(&ListRequest {
                        prefix: from.clone(),
                        delimiter: None,
                        marker: marker.clone(),
                        max_keys: Some(1000),
                    })
                    .await?;
                old.extend(page.objects.into_iter().map(|o| o.key));
                if !page.is_truncated {
                    break;
                }
                marker = page.next_marker.or_else(|| old.last().cloned());
            }
            for k in &old {
                let dst = format!("{to}{}", &k[from.len()..]);
                match store.head_object(&dst).await {
                    Ok(_) => {}
                    Err(StoreError::NotFound(_)) => {
                        store.copy_object(k, &dst, &CopyOptions::default()).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            for chunk in old.chunks(1000) {
                store.delete_objects(chunk).await?;
            }
            Ok(())
        }
    }
}

impl crate::cache::UploadQueue {
    /// At startup, before uploads are re-queued: carries out the deletes and renames a previous
    /// daemon left unfinished. One that fails (COS unreachable) stays journaled for the next
    /// mount and is logged. Returns how many were finished.
    pub async fn recover_intents(&self) -> usize {
        let live = self.cache_dir().intents().live();
        let mut done = 0;
        for (id, intent) in live {
            match finish(self.inner.store.as_ref(), &intent).await {
                Ok(()) => {
                    done += 1;
                    if let Err(e) = self.cache_dir().intents().end(id) {
                        log::warn!("namespace journal: {e}");
                    }
                }
                Err(e) => {
                    log::error!("could not finish {intent:?} left by the previous daemon: {e}")
                }
            }
        }
        if done > 0 {
            log::warn!("finished {done} delete(s)/rename(s) the previous daemon left undone");
        }
        done
    }
}

async fn delete(store: &dyn ObjectStore, key: &str) -> Result<(), StoreError> {
    match store.delete_object(key).await {
        Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_keeps_only_unfinished_intents() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = IntentLog::open(dir.path()).unwrap();
            let a = log.begin(Intent::Delete { key: "a".into() }).unwrap();
            let b = log
                .begin(Intent::Rename {
                    from: "x".into(),
                    to: "y".into(),
                    copy: true,
                })
                .unwrap();
            log.end(a).unwrap();
            assert_ne!(a, b);
        }
        // A torn last line (crash mid-write) is skipped.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(INTENTS_FILE))
            .unwrap();
        f.write_all(b"{\"op\":\"beg").unwrap();
        let log = IntentLog::open(dir.path()).unwrap();
        let live = log.live();
        assert_eq!(live.len(), 1);
        assert_eq!(
            live[0].1,
            Intent::Rename {
                from: "x".into(),
                to: "y".into(),
                copy: true
            }
        );
    }

    #[tokio::test]
    async fn finish_renames_and_deletes_against_a_store() {
        use crate::store::{MemoryStore, PutOptions};
        let store = MemoryStore::new();
        let put = |k: &'static str, v: &'static [u8]| {
            let s = store.clone();
            async move {
                s.put_object(
                    k,
                    bytes::Bytes::from_static(v).into(),
                    &PutOptions::default(),
                )
                .await
                .unwrap();
            }
        };
        put("old", b"new bytes").await;
        put("target", b"replaced").await;
        put("d1/a", b"1").await;
        put("d1/b", b"2").await;
        put("d2/a", b"1").await; // copied before the crash
        put("gone", b"x").await;
        let s: &dyn ObjectStore = store.as_ref();
        finish(
            s,
            &Intent::Rename {
                from: "old".into(),
                to: "target".into(),
                copy: true,
            },
        )
        .await
        .unwrap();
        finish(
            s,
            &Intent::RenameDir {
                from: "d1/".into(),
                to: "d2/".into(),
            },
        )
        .await
        .unwrap();
        finish(s, &Intent::Delete { key: "gone".into() })
            .await
            .unwrap();
        let body = |k: &'static str| async move { s.get_object(k, None).await.map(|g| g.data) };
        assert_eq!(&body("target").await.unwrap()[..], b"new bytes");
        assert!(body("old").await.is_err());
        assert_eq!(&body("d2/b").await.unwrap()[..], b"2");
        assert!(body("d1/a").await.is_err() && body("d1/b").await.is_err());
        assert!(body("gone").await.is_err());
    }
}
