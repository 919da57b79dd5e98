//! rename: a file is PUT Object - Copy then DELETE (multipart copy above 5 GB); a directory
//! copies every key under it in parallel, then deletes the old keys with DELETE Multiple in
//! batches of ≤ 1000. Renaming over an existing file replaces it; over a non-empty directory
//! is ENOTEMPTY. A file whose upload is still queued is re-targeted to the new name (no copy);
//! otherwise pending uploads are waited for first, so the copy sees their data.
//!
//! Not atomic (COS has no rename): a failure midway leaves both names; the error is returned
//! and logged with the keys involved.

use std::ffi::OsStr;

use futures::stream::{self, TryStreamExt};

use super::error::{FsError, FsResult};
use super::meta::Stat;
use super::path::{join, ValidName};
use super::types::{FileKind, InodeNo};
use super::uploads::Intent;
use super::Fs;
use crate::store::{CompletedPart, CopyOptions, ListRequest, StorageClass};

/// Largest object PUT Object - Copy accepts.
const COPY_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Part size of multipart copies.
const COPY_PART: u64 = 1024 * 1024 * 1024;
/// Bound on listing pages while collecting a tree (10 million keys).
const MAX_PAGES: usize = 10_000;

impl Fs {
    /// rename. `flags`: `RENAME_NOREPLACE` is honoured; `RENAME_EXCHANGE` is EINVAL (COS cannot
    /// swap two names atomically, and a non-atomic swap could lose one of them).
    pub async fn rename(
        &self,
        parent: InodeNo,
        name: &OsStr,
        newparent: InodeNo,
        newname: &OsStr,
        flags: u32,
    ) -> FsResult<()> {
        self.check_writable()?;
        if flags & libc::RENAME_EXCHANGE != 0 {
            return Err(FsError::InvalidArgument(
                "RENAME_EXCHANGE is not supported".into(),
            ));
        }
        let name = ValidName::new(name)?;
        let newname = ValidName::new(newname)?;
        let from = join(&self.dir_path(parent)?, name.as_str());
        let to = join(&self.dir_path(newparent)?, newname.as_str());
        if from == to {
            return Ok(());
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(FsError::InvalidArgument(
                "cannot move a directory into itself".into(),
            ));
        }
        let src = self.stat_path(&from).await?;
        let dst = match self.stat_path(&to).await {
            Ok(s) => Some(s),
            Err(FsError::NotFound) => None,
            Err(e) => return Err(e),
        };
        if dst.is_some() && flags & libc::RENAME_NOREPLACE != 0 {
            return Err(FsError::Exists);
        }
        match (src.kind, dst.as_ref().map(|d| d.kind)) {
            (FileKind::Dir, Some(FileKind::Dir)) => self.ensure_empty_dir(&to).await?,
            (FileKind::Dir, Some(_)) => return Err(FsError::NotDir),
            (_, Some(FileKind::Dir)) => return Err(FsError::IsDir),
            _ => {}
        }
        if src.kind == FileKind::Dir {
            // Nothing may hand off a key under the moving tree meanwhile (lock order 1).
            let _ns = self.ns.write().await;
            self.rename_dir(&from, &to).await?;

            self.table
                .rename(parent, name.as_str(), newparent, newname.as_str());
        } else {
            let _ns = self.ns.read().await;
            let names = Names {
                parent,
                name: name.as_str(),
                newparent,
                newname: newname.as_str(),
            };
            self.rename_file(&names, &from, &to, &src).await?;
        }
        let is_dir = src.kind == FileKind::Dir;
        self.attrs.rename_head(&from, &to, is_dir);
        if is_dir {
            self.attrs.invalidate_tree(&from);
            self.attrs.invalidate_tree(&to);
        } else {
            // A file moves alone (and cannot replace a directory): no scan of the cache.
            // (`from` is marked absent just below.)
            self.attrs.invalidate(&to);
        }
        self.attrs.put_absent(&from);
        if !self
            .table
            .lookup_path(&to)
            .is_some_and(|(_, n)| n.is_staged())
        {
            // A rename changes the status of what moved: ctime now (kept in this mount's cache).
            let mut moved = src.clone();
            moved.ctime = std::time::SystemTime::now();
            moved.etag = None;
            moved.last_modified = None;
            self.attrs.put(&to, moved);
        }
        self.own.renamed(&from, &to, is_dir);
        if is_dir {
            // Keys moved by the dozen: their ACLs are read again when needed.
            self.acls.clear();
        }
        self.listings.drop_tree(&from);
        self.listings.drop_tree(&to);
        self.scans.drop_tree(&from);
        self.scans.drop_tree(&to);
        self.touch_dir(parent);
        self.touch_dir(newparent);
        Ok(())
    }

    async fn ensure_empty_dir(&self, rel: &str) -> FsResult<()> {
        let key = self.key_of(rel, FileKind::Dir)?;
        self.flush_deletes_under(key.as_str()).await;
        let staged = self
            .table
            .lookup_path(rel)
            .is_some_and(|(ino, _)| self.table.has_staged_under(ino));
        if staged || !self.uploads.pending_under(key.as_str()).is_empty() {
            return Err(FsError::NotEmpty);
        }
        let req = ListRequest {
            prefix: key.to_string(),
            delimiter: None,
            marker: None,
            max_keys: Some(2),
        };
        let page = self.store.list_objects(&req).await?;
        if page
            .objects
            .iter()
            .any(|o| o.key != key.as_str() && !self.deletes.contains(&o.key))
        {
            return Err(FsError::NotEmpty);
        }
        Ok(())
    }

    /// A file (or symlink) rename, under the namespace read lock and the source's gate: the
    /// name moves first, so any hand-off from then on names the new key; then COS follows
    /// (staged data handed off, queued uploads re-targeted, else copy), and the old key goes
    /// through the journaled delete batch. The journal holds the intent in between, so a crash
    /// leaves the old or the new name, never neither, and the next mount finishes the job.
    async fn rename_file(&self, n: &Names<'_>, from: &str, to: &str, src: &Stat) -> FsResult<()> {
        let fk = self.key_of(from, src.kind)?.to_string();
        let tk = self.key_of(to, src.kind)?.to_string();
        let node = self.table.child_node(n.parent, n.name);
        let _gate = match &node {
            Some((_, nd)) => Some(nd.gate.lock().await),
            None => None,
        };
        // The replaced file's own pending upload must not land after ours.
        self.uploads.discard(&tk);
        self.uploads.wait_key(&tk).await?;
        self.deletes.cancel(&tk);
        self.table.rename(n.parent, n.name, n.newparent, n.newname);
        let handed = match &node {
            Some((ino, nd)) => match self.hand_off_locked(*ino, nd, true).await {
                Ok(h) => h.is_some(),
                Err(e) => {
                    self.table.rename(n.newparent, n.newname, n.parent, n.name);
                    return Err(e);
                }
            },
            None => false,
        };
        let retargeted = self.uploads.retarget(&fk, &tk);
        // An upload of the old name already running must land before the copy reads it.
        self.uploads.wait_key(&fk).await?;
        let copy = !handed && !retargeted;
        let id = self.uploads.intent_begin(Intent::Rename {
            from: fk.clone(),
            to: tk.clone(),
            copy,
        });
        if copy {
            if let Err(e) = self.copy_key(&fk, &tk, src.size, &src.storage_class).await {
                self.uploads.intent_end(id);
                self.table.rename(n.newparent, n.newname, n.parent, n.name);
                log::warn!("rename {fk} -> {tk}: copy failed: {e}");
                return Err(e);
            }
        }
        // The new key's ACL: a copy names the mount's; an upload (handed off now, or re-targeted)
        // names the one its hand-off recorded. Other keys' memos stay (a chmod or `touch` after
        // a rename, as rsync does, needs no GET Object acl).
        if copy {
            self.acls.set(&tk, self.cfg.acl.as_deref());
        } else if !handed {
            match self.acls.get(&fk) {
                Some(acl) => self.acls.set(&tk, acl.as_deref()),
                None => self.acls.forget(&tk),
            }
        }
        self.acls.forget(&fk);
        // The old name's downloaded bytes are of no use under it any more (the cache is by key),
        // unless open descriptors may still read through them.
        if !node.as_ref().is_some_and(|(_, nd)| nd.is_open()) {
            self.readcache.forget(&fk);
        }
        if copy {
            // The copy has the old key's metadata (a stale record of an earlier object of the
            // new name must not stand for it); an upload records its own when it lands.
            self.metadb.rename(&fk, &tk);
        }
        // The delete batch journals the old key itself, so the intent can end.
        self.queue_delete(fk).await;
        self.uploads.intent_end(id);
        Ok(())
    }

    /// Copies one key (multipart copy above 5 GB), keeping its metadata and storage class.
    async fn copy_key(
        &self,
        from: &str,
        to: &str,
        size: u64,
        class: &StorageClass,
    ) -> FsResult<()> {
        let opts = CopyOptions {
            storage_class: (*class != StorageClass::Standard).then(|| class.clone()),
            acl: self.cfg.acl.clone(),
            ..Default::default()
        };
        if size <= COPY_MAX {
            self.store.copy_object(from, to, &opts).await?;
            return Ok(());
        }
        let meta = self.store.head_object(from).await?;
        let put = crate::store::PutOptions {
            headers: meta.headers,
            storage_class: opts.storage_class.clone(),
            acl: opts.acl.clone(),
            ..Default::default()
        };
        let id = self.store.initiate_multipart(to, &put).await?;
        let mut parts = Vec::new();
        let mut off = 0u64;
        let mut n = 1u32;
        while off < size {
            let end = (off + COPY_PART).min(size);
            match self
                .store
                .upload_part_copy(to, &id, n, from, off..end)
                .await
            {
                Ok(etag) => parts.push(CompletedPart {
                    part_number: n,
                    etag,
                }),
                Err(e) => {
                    let _ = self.store.abort_multipart(to, &id).await;
                    return Err(e.into());
                }
            }
            off = end;
            n += 1;
        }
        self.store.complete_multipart(to, &id, &parts).await?;
        Ok(())
    }

    /// Copies every key under `from/` to `to/` in parallel, then batch-deletes the old keys
    /// (under the namespace write lock, so no hand-off names a key of the tree meanwhile).
    /// Queued uploads under it are re-targeted (their keys need no copy), running ones waited
    /// for; the journal holds the intent until the old keys are gone.
    async fn rename_dir(&self, from: &str, to: &str) -> FsResult<()> {
        let fk = self.key_of(from, FileKind::Dir)?.to_string();
        let tk = self.key_of(to, FileKind::Dir)?.to_string();
        let mut fresh = std::collections::HashSet::new();
        for (key, _) in self.uploads.pending_under(&fk) {
            let dst = format!("{tk}{}", &key[fk.len()..]);
            if self.uploads.retarget(&key, &dst) {
                fresh.insert(dst);
            }
            self.uploads.wait_key(&key).await?;
        }
        self.flush_deletes_under(&fk).await;
        let mut keys = Vec::new();
        let mut marker = None;
        for _ in 0..MAX_PAGES {
            let req = ListRequest {
                prefix: fk.clone(),
                delimiter: None,
                marker: marker.clone(),
                max_keys: Some(1000),
            };
            let page = self.store.list_objects(&req).await?;
            keys.extend(
                page.objects
                    .into_iter()
                    .map(|o| (o.key, o.size, o.storage_class)),
            );
            if !page.is_truncated {
                break;
            }
            marker = page
                .next_marker
                .or_else(|| keys.last().map(|k| k.0.clone()));
        }
        // Every new key must fit COS's limit before anything is copied.
        for (k, _, _) in &keys {
            super::path::ObjectKey::file("", &format!("{tk}{}", &k[fk.len()..]))?;
        }
        let id = self.uploads.intent_begin(Intent::RenameDir {
            from: fk.clone(),
            to: tk.clone(),
        });
        let copied = stream::iter(keys.iter().map(Ok::<_, FsError>))
            .try_for_each_concurrent(self.cfg.copy_parallelism.max(1), |(k, size, class)| {
                let dst = format!("{tk}{}", &k[fk.len()..]);
                let skip = fresh.contains(&dst);
                async move {
                    self.deletes.cancel(&dst);
                    if skip {
                        // A re-targeted upload brings newer bytes: a copy could land after it.
                        return Ok(());
                    }
                    self.copy_key(k, &dst, *size, class).await?;
                    // Markers' records are used whatever their ETag: move them with the keys.
                    self.metadb.rename(k, &dst);
                    Ok(())
                }
            })
            .await;
        if let Err(e) = copied {
            // The intent stays journaled: the next mount finishes the move.
            log::warn!("rename of {fk} -> {tk} stopped half-way: {e}; both names may exist");
            return Err(e);
        }
        // Names removed earlier under the destination are live again.
        self.deletes.unmark_tree(&tk);
        let old: Vec<String> = keys.into_iter().map(|k| k.0).collect();
        if self.send_deletes(old).await {
            self.uploads.intent_end(id);
        }
        Ok(())
    }
}

/// The four names of a rename.
struct Names<'a> {
    /// Source directory.
    parent: InodeNo,
    /// Source name.
    name: &'a str,
    /// Destination directory.
    newparent: InodeNo,
    /// Destination name.
    newname: &'a str,
}
