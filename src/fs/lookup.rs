//! The merged view of one path (`stat_path`): what this mount holds (staged, pending upload)
//! wins, then the attribute cache, then what is known absent (directories this mount made, a
//! fresh listing, a bulk-lookup scan), then COS: a HEAD of the file and a LIST of `path/` at
//! once (a directory wins over a file of the same name); close-to-open revalidation by ETag.

use std::time::SystemTime;

use super::attrcache::Cached;
use super::error::{FsError, FsResult};
use super::meta::{apply_user_meta, Stat};
use super::types::FileKind;
use super::uploads::PendingUpload;
use super::Fs;
use crate::store::{ListRequest, StoreError};

impl Fs {
    /// Builds the stat of a pending upload.
    pub(crate) fn pending_stat(&self, p: &PendingUpload) -> Stat {
        let d = self.defaults();
        let mut s = Stat::dir(&d, SystemTime::now());
        s.kind = FileKind::File;
        s.perm = super::meta::default_perm(FileKind::File, &d);
        s.size = p.size;
        apply_user_meta(&mut s, &p.opts.headers.user_meta, false);
        s.from_head = true;
        s
    }

    /// What is at relative path `rel` (ENOENT when nothing).
    pub(crate) async fn stat_path(&self, rel: &str) -> FsResult<Stat> {
        if rel.is_empty() {
            return Ok(match self.attrs.get(rel) {
                Cached::Present(s) | Cached::Stale(s) => s,
                _ => Stat::dir(&self.defaults(), self.started),
            });
        }
        // What COS answers below yields to a change this mount makes meanwhile.
        let since = self.attrs.epoch();
        // The merged view: what this mount holds locally wins over what COS has.
        let node = self.table.lookup_path(rel).map(|(_, n)| n);
        if let Some(node) = &node {
            if let Some(s) = self.staged_stat(node).await {
                return Ok(s);
            }
        }
        let cached = self.attrs.get(rel);
        self.cfg
            .metrics
            .attr_cache(matches!(cached, Cached::Present(_) | Cached::Absent));
        let stale = match cached {
            Cached::Present(s) => return Ok(s),
            Cached::Absent => return Err(FsError::NotFound),
            // A file this mount has open is served from what it opened: no request.
            Cached::Stale(s) if node.as_ref().is_some_and(|n| n.is_open()) => {
                return Ok(s);
            }
            Cached::Stale(s) => Some(s),
            Cached::Unknown => None,
        };
        let file_key = self.key_of(rel, FileKind::File)?;
        if let Some(p) = self.uploads.pending(file_key.as_str()) {
            // Cached (and its metadata remembered) so the listing that later shows the
            // uploaded object keeps mode/owner/mtime.
            let s = self.pending_stat(&p);
            self.attrs.put(rel, s.clone());
            return Ok(s);
        }
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let known_absent = stale.is_none()
            && node.is_none()
            && (self.own.known_absent(rel) || self.listings.lacks(parent, name));
        if known_absent {
            // A directory this mount created holds what this mount put there (and what a
            // listing of it showed, which is in the cache); a listing younger than `list_ttl`
            // holds every name (as `neg_ttl` vouches for an absent one): nothing to ask.
            return Err(FsError::NotFound);
        }
        if stale.is_none() {
            match self.scan_lookup(parent, rel).await? {
                super::scan::Answer::Ask => {}
                super::scan::Answer::Absent => {
                    return self.seen(rel, None, since);
                }
                super::scan::Answer::File(s) => {
                    return self.seen(rel, Some(s), since);
                }
            }
        }
        if let Some(old) = stale.filter(|s| s.kind != FileKind::Dir) {
            if let Some(s) = self.revalidate(rel, old).await? {
                return self.seen(rel, Some(s), since);
            }
        }
        let fetched = match self.fetch_stat(rel).await {
            // Offline: in a directory this mount has listed, a name the listing did not show
            // (it is not in the cache) is taken as absent, so files can be created in the
            // cache while COS is unreachable; their uploads wait in the queue.
            Err(FsError::Unavailable(why)) if self.listed_dirs().contains(parent) => {
                log::info!("{rel}: COS unreachable ({why}); taken as absent (not in the listing)");
                return Err(FsError::NotFound);
            }
            r => r?,
        };
        self.seen(rel, fetched, since)
    }

    /// Caches what a look-up begun at `since` found at `rel` (see `AttrCache::put_seen`) and
    /// answers with what stands.
    fn seen(&self, rel: &str, s: Option<Stat>, since: u64) -> FsResult<Stat> {
        self.attrs.put_seen(rel, s, since).ok_or(FsError::NotFound)
    }

    /// Close-to-open consistency: one HEAD checks a file known from before the TTL. The same
    /// ETag keeps what was known (and its metadata); a new one replaces it. None when the
    /// object is gone (the caller then looks again, it may be a directory now).
    pub(crate) async fn revalidate(&self, rel: &str, old: Stat) -> FsResult<Option<Stat>> {
        let key = self.key_of(rel, FileKind::File)?;
        let since = self.metadb.epoch();
        match self.store.head_object(key.as_str()).await {
            Ok(meta) if self.deletes.contains(&meta.key) => Ok(None),
            Ok(meta) => {
                let same = old
                    .etag
                    .as_deref()
                    .is_some_and(|e| e.trim_matches('"') == meta.etag.trim_matches('"'));
                if same && old.from_head {
                    return Ok(Some(old));
                }
                self.metadb
                    .put_seen(&meta.key, &meta.etag, meta.headers.user_meta.clone(), since);
                Ok(Some(Stat::from_head(&meta, false, &self.defaults())))
            }
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// HEAD `rel` and LIST `rel/` (max-keys 1) concurrently; a directory wins over a file of
    /// the same name (its contents would be unreachable otherwise).
    async fn fetch_stat(&self, rel: &str) -> FsResult<Option<Stat>> {
        let file_key = self.key_of(rel, FileKind::File)?;
        let dir_key = self.key_of(rel, FileKind::Dir)?;
        let req = ListRequest {
            prefix: dir_key.to_string(),
            delimiter: None,
            marker: None,
            max_keys: Some(2),
        };
        let since = self.metadb.epoch();
        let (head, list) = futures::join!(
            self.store.head_object(file_key.as_str()),
            self.store.list_objects(&req)
        );
        let page = list?;
        let d = self.defaults();
        // Keys waiting for deletion still make a directory (as on a disk, a directory whose
        // files were removed exists until rmdir), unless rmdir already removed it.
        let listed: Vec<_> = if self.deletes.dir_removed(dir_key.as_str()) {
            Vec::new()
        } else {
            page.objects.iter().collect()
        };
        if !listed.is_empty() {
            if head.is_ok() {
                log::warn!(
                    "{rel}: both a file and a directory exist in COS; showing the directory"
                );
            }
            let marker = listed.iter().find(|o| o.key == dir_key.as_str());
            let mut s = Stat::dir(&d, listed[0].last_modified);
            // No marker: nothing can carry ACLs (a marker's HEAD below sets what it holds).
            s.acl = Some(Default::default());
            if let Some(m) = marker {
                // The marker carries the directory's mode/owner; one more HEAD, only here.
                match self.store.head_object(&m.key).await {
                    Ok(meta) => {
                        self.metadb.put_seen(
                            &m.key,
                            &meta.etag,
                            meta.headers.user_meta.clone(),
                            since,
                        );
                        s = Stat::from_head(&meta, true, &d)
                    }
                    Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(Some(s));
        }
        match head {
            Ok(meta) if !self.deletes.contains(&meta.key) => {
                self.metadb
                    .put_seen(&meta.key, &meta.etag, meta.headers.user_meta.clone(), since);
                Ok(Some(Stat::from_head(&meta, false, &d)))
            }
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
