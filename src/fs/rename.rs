//! rename: a file is PUT Object - Copy then DELETE (multipart copy above 5 GB); a directory
//! copies every key under it in parallel, then deletes the old keys with DELETE Multiple in
//! batches of ≤ 1000. Renaming over an existing file replaces it; over a non-empty directory
//! is ENOTEMPTY. Files with pending uploads are waited for first, so the copy sees their data.
//!
//! Not atomic (COS has no rename): a failure midway leaves both names; the error is returned
//! and logged with the keys involved.

use std::ffi::OsStr;

use futures::stream::{self, TryStreamExt};

use super::error::{FsError, FsResult};
use super::meta::Stat;
use super::path::{join, ValidName};
use super::types::{FileKind, InodeNo};
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
            self.rename_dir(&from, &to).await?;
        } else {
            self.rename_file(&from, &to, &src).await?;
        }
        self.attrs.rename_locals(&from, &to);
        self.attrs.invalidate_tree(&from);
        self.attrs.invalidate_tree(&to);
        self.attrs.put_absent(&from);
        self.table
            .rename(parent, name.as_str(), newparent, newname.as_str());
        Ok(())
    }

    async fn ensure_empty_dir(&self, rel: &str) -> FsResult<()> {
        let key = self.key_of(rel, FileKind::Dir)?;
        self.flush_deletes_under(key.as_str()).await;
        if !self.attrs.locals_in(rel).is_empty()
            || !self.uploads.pending_under(key.as_str()).is_empty()
        {
            return Err(FsError::NotEmpty);
        }
        let req = ListRequest {
            prefix: key.to_string(),
            delimiter: None,
            marker: None,
            max_keys: Some(2),
        };
        let page = self.store.list_objects(&req).await?;
        if page.objects.iter().any(|o| o.key != key.as_str()) {
            return Err(FsError::NotEmpty);
        }
        Ok(())
    }

    async fn rename_file(&self, from: &str, to: &str, src: &Stat) -> FsResult<()> {
        let fk = self.key_of(from, src.kind)?;
        let tk = self.key_of(to, src.kind)?;
        if self.attrs.local(from).is_some() {
            // Open and unflushed: the data follows the inode; it uploads under the new name.
            return Ok(());
        }
        self.uploads.wait_key(fk.as_str()).await?;
        // The replaced file's own pending upload must not land after our copy.
        self.uploads.discard(tk.as_str());
        self.uploads.wait_key(tk.as_str()).await?;
        self.deletes.cancel(tk.as_str());
        self.copy_key(fk.as_str(), tk.as_str(), src.size, &src.storage_class)
            .await?;
        self.store.delete_object(fk.as_str()).await?;
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

    /// Copies every key under `from/` to `to/` in parallel, then batch-deletes the old keys.
    async fn rename_dir(&self, from: &str, to: &str) -> FsResult<()> {
        let fk = self.key_of(from, FileKind::Dir)?.to_string();
        let tk = self.key_of(to, FileKind::Dir)?.to_string();
        for (key, _) in self.uploads.pending_under(&fk) {
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
        stream::iter(keys.iter().map(Ok::<_, FsError>))
            .try_for_each_concurrent(self.cfg.copy_parallelism.max(1), |(k, size, class)| {
                let dst = format!("{tk}{}", &k[fk.len()..]);
                async move {
                    self.deletes.cancel(&dst);
                    self.copy_key(k, &dst, *size, class).await
                }
            })
            .await?;
        // Names removed earlier under the destination are live again.
        self.deletes.unmark_tree(&tk);
        if keys.is_empty() {
            // An implicit directory with only unflushed local files: nothing to move in COS.
            return Ok(());
        }
        let old: Vec<String> = keys.into_iter().map(|k| k.0).collect();
        self.send_deletes(old).await;
        Ok(())
    }
}
