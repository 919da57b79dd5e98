//! Look-ups that miss in bulk (`find`, `stat` of every name, a build tool checking its
//! inputs after a remount): each cold look-up would cost a HEAD and a LIST. After
//! `SCAN_AFTER` cold look-ups in one directory within `SCAN_WINDOW`, one delimited listing of
//! it (at most `SCAN_PAGES` pages, no HEADs) answers the following ones while it is fresh
//! (`list_ttl`, at least `neg_ttl`: other clients' new names show as soon as they would
//! without it):
//! - a name the listing covers but does not show is absent, without a request;
//! - a file whose POSIX metadata is known for its listed ETag (this mount's memory or the
//!   persistent `metadb`) costs nothing;
//! - any other file costs one HEAD and no LIST (the listing said it is not a directory).
//!
//! Directories, names past what the listing covered, and keys waiting for deletion take the
//! ordinary path. Attributes are never guessed: a listed file whose metadata is unknown is not
//! put in the attribute cache until its HEAD answers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::error::FsResult;
use super::meta::{apply_user_meta, Stat};
use super::types::FileKind;
use super::Fs;
use crate::store::{ListEntry, ListRequest, StoreError};

/// Cold look-ups in one directory that make the next one list it.
const SCAN_AFTER: u32 = 4;
/// ... counted within this window.
const SCAN_WINDOW: Duration = Duration::from_secs(2);
/// Most pages one scan lists (10 000 names); a bigger directory is covered in part.
const SCAN_PAGES: usize = 10;
/// Directories whose scan state is kept.
const SCAN_DIRS: usize = 256;

/// What a scan saw of one name.
#[derive(Debug, Clone)]
enum Seen {
    /// An object (and no prefix of the same name).
    File(ListEntry),
    /// A common prefix (the directory wins over a file of the same name).
    Dir,
}

/// A directory's scan state.
#[derive(Debug)]
enum State {
    /// Cold look-ups counted since the instant.
    Counting(u32, Instant),
    /// A scan is running (other look-ups take the ordinary path meanwhile).
    Running,
    /// Names listed at the instant, covering keys up to `last` (None: the whole directory).
    Done {
        /// When the listing began.
        at: Instant,
        /// Name → what it is.
        names: HashMap<String, Seen>,
        /// Last key of a truncated scan.
        last: Option<String>,
    },
}

/// Scan states by directory path. Leaf lock.
pub struct Scans {
    /// Directory path → state.
    map: std::sync::Mutex<lru::LruCache<String, State>>,
}

impl Default for Scans {
    fn default() -> Scans {
        let cap = std::num::NonZeroUsize::new(SCAN_DIRS).unwrap_or(std::num::NonZeroUsize::MIN);
        Scans {
            map: std::sync::Mutex::new(lru::LruCache::new(cap)),
        }
    }
}

/// What a look-up learns from the scans.
enum Verdict {
    /// No scan answers: the ordinary path.
    Ask,
    /// Scan now (this look-up started it).
    Scan,
    /// The fresh scan says this.
    Known(Option<Seen>),
}

impl Scans {
    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, State>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a cold look-up of `name` (key `key`) in `dir` and says what to do.
    fn check(&self, dir: &str, name: &str, key: &str, fresh: Duration) -> Verdict {
        let mut g = self.lock();
        let now = Instant::now();
        let state = g.get_or_insert_mut(dir.to_string(), || State::Counting(0, now));
        match state {
            State::Running => Verdict::Ask,
            State::Done { at, names, last } if at.elapsed() < fresh => {
                if last.as_deref().is_some_and(|l| key > l) {
                    return Verdict::Ask;
                }
                Verdict::Known(names.get(name).cloned())
            }
            // A scan that was useful is renewed at once while look-ups keep coming.
            State::Done { at, .. } if at.elapsed() < fresh + SCAN_WINDOW => {
                *state = State::Running;
                Verdict::Scan
            }
            State::Counting(n, since) if since.elapsed() < SCAN_WINDOW => {
                *n += 1;
                if *n >= SCAN_AFTER {
                    *state = State::Running;
                    Verdict::Scan
                } else {
                    Verdict::Ask
                }
            }
            _ => {
                *state = State::Counting(1, now);
                Verdict::Ask
            }
        }
    }

    /// Stores a scan's result (None: it failed; counting starts again).
    fn finish(&self, dir: &str, r: Option<(Instant, HashMap<String, Seen>, Option<String>)>) {
        let state = match r {
            Some((at, names, last)) => State::Done { at, names, last },
            None => State::Counting(0, Instant::now()),
        };
        self.lock().put(dir.to_string(), state);
    }

    /// Forgets the scans of `dir` and of every directory under it (this mount changed them).
    pub fn drop_tree(&self, dir: &str) {
        super::dir::drop_tree_in(&mut self.lock(), dir);
    }
}

/// A scan's answer to one look-up.
pub(crate) enum Answer {
    /// No answer: look up the ordinary way.
    Ask,
    /// The name is absent.
    Absent,
    /// The name is this file.
    File(Stat),
}

impl Fs {
    /// The scan's answer for the cold look-up of `rel` (in directory `parent`; see module
    /// doc).
    pub(crate) async fn scan_lookup(&self, parent: &str, rel: &str) -> FsResult<Answer> {
        let name = rel.rsplit_once('/').map_or(rel, |(_, n)| n);
        let key = self.key_of(rel, FileKind::File)?;
        let fresh = self.cfg.list_ttl.max(self.cfg.negative_ttl);
        let seen = match self.scans.check(parent, name, key.as_str(), fresh) {
            Verdict::Ask => return Ok(Answer::Ask),
            Verdict::Known(seen) => seen,
            Verdict::Scan => match self.scan(parent).await {
                Ok((at, names, last)) => {
                    let seen = names.get(name).cloned();
                    let covered = last.as_deref().is_none_or(|l| key.as_str() <= l);
                    self.scans.finish(parent, Some((at, names, last)));
                    if !covered {
                        return Ok(Answer::Ask);
                    }
                    seen
                }
                Err(e) => {
                    self.scans.finish(parent, None);
                    log::debug!("{parent}: scan failed ({e}); looking up one by one");
                    return Ok(Answer::Ask);
                }
            },
        };
        let o = match seen {
            None => return Ok(Answer::Absent),
            Some(Seen::Dir) => return Ok(Answer::Ask),
            Some(Seen::File(o)) => o,
        };
        if self.deletes.contains(&o.key) {
            return Ok(Answer::Ask);
        }
        let d = self.defaults();
        if let Some(m) = self.metadb.get(&o.key, &o.etag) {
            let mut s = Stat::from_list(&o, false, &d);
            apply_user_meta(&mut s, &m, false);
            s.from_head = true;
            return Ok(Answer::File(s));
        }
        let since = self.metadb.epoch();
        match self.store.head_object(&o.key).await {
            Ok(meta) => {
                self.metadb
                    .put_seen(&meta.key, &meta.etag, meta.headers.user_meta.clone(), since);
                Ok(Answer::File(Stat::from_head(&meta, false, &d)))
            }
            // Gone since the listing (or never a plain object): the ordinary path decides.
            Err(StoreError::NotFound(_)) => Ok(Answer::Ask),
            Err(e) => Err(e.into()),
        }
    }

    /// One delimited listing of directory `rel`, at most `SCAN_PAGES` pages.
    async fn scan(&self, rel: &str) -> FsResult<(Instant, HashMap<String, Seen>, Option<String>)> {
        let prefix = self.key_of(rel, FileKind::Dir)?.to_string();
        let at = Instant::now();
        let mut names = HashMap::new();
        let mut marker: Option<String> = None;
        for _ in 0..SCAN_PAGES {
            let req = ListRequest {
                prefix: prefix.clone(),
                delimiter: Some('/'),
                marker: marker.clone(),
                max_keys: Some(1000),
            };
            let page = self.store.list_objects(&req).await?;
            for cp in &page.common_prefixes {
                let name = cp[prefix.len()..].trim_end_matches('/');
                names.insert(name.to_string(), Seen::Dir);
            }
            for o in page.objects {
                if o.key.len() > prefix.len() {
                    let name = o.key[prefix.len()..].to_string();
                    names.entry(name).or_insert(Seen::File(o));
                }
            }
            if !page.is_truncated {
                return Ok((at, names, None));
            }
            marker = page.next_marker.clone();
            if marker.is_none() {
                break;
            }
        }
        // Covered up to the marker (COS sends the last key of a truncated page).
        Ok((at, names, Some(marker.unwrap_or_default())))
    }
}
