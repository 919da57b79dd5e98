//! setattr: truncate (via the write path) and chmod/chown/utimes, persisted in
//! `x-cos-meta-mode/-uid/-gid/-mtime`: kept in the local state of a file being written, folded
//! into a pending upload when there is one, else a copy in place with
//! `MetadataDirective::Replaced` (PUT of a marker for an implicit directory).

use std::time::SystemTime;

use bytes::Bytes;

use super::error::{FsError, FsResult};
use super::meta::{store_user_meta, Stat};
use super::types::{Attr, Fh, FileKind, InodeNo, SetAttr, SetTime};
use super::Fs;
use crate::store::{CopyOptions, MetadataDirective, PutOptions, StoreError};

impl Fs {
    /// setattr.
    pub async fn setattr(&self, ino: InodeNo, req: SetAttr, fh: Option<Fh>) -> FsResult<Attr> {
        if let Some(size) = req.size {
            self.truncate(ino, fh, size).await?;
        }
        let rel = self.table.path(ino)?;
        let meta_change =
            req.mode.is_some() || req.uid.is_some() || req.gid.is_some() || req.mtime.is_some();
        if meta_change && !rel.is_empty() {
            self.check_writable()?;
            let old = self.stat_path(&rel).await?;
            let mut s = old.clone();
            if let Some(m) = req.mode {
                s.perm = m & 0o7777;
            }
            if let Some(u) = req.uid {
                s.uid = u;
            }
            if let Some(g) = req.gid {
                s.gid = g;
            }
            match req.mtime {
                Some(SetTime::Now) => s.mtime = SystemTime::now(),
                Some(SetTime::At(t)) => s.mtime = t,
                None => {}
            }
            self.persist_attrs(&rel, s).await?;
        }
        self.getattr(ino).await
    }

    /// Stores changed attributes where they will reach COS (see module doc).
    async fn persist_attrs(&self, rel: &str, s: Stat) -> FsResult<()> {
        let new = s.clone();
        if self.attrs.update_local(rel, move |l| {
            l.perm = new.perm;
            l.uid = new.uid;
            l.gid = new.gid;
            l.mtime = new.mtime;
        }) {
            return Ok(());
        }
        let key = self.key_of(rel, s.kind)?;
        if s.kind != FileKind::Dir
            && self
                .uploads
                .update_pending_opts(key.as_str(), &mut |o: &mut PutOptions| {
                    store_user_meta(&s, &mut o.headers.user_meta)
                })
        {
            self.attrs.put(rel, s);
            return Ok(());
        }
        // An upload already running cannot take new metadata: let it land, then copy in place.
        self.uploads.wait_key(key.as_str()).await?;
        match self.store.head_object(key.as_str()).await {
            Ok(meta) => {
                let mut headers = meta.headers.clone();
                store_user_meta(&s, &mut headers.user_meta);
                let opts = CopyOptions {
                    directive: MetadataDirective::Replaced(headers),
                    storage_class: Some(meta.storage_class.clone()),
                    acl: self.cfg.acl.clone(),
                    if_match: Some(meta.etag.clone()),
                };
                let r = self
                    .store
                    .copy_object(key.as_str(), key.as_str(), &opts)
                    .await?;
                let mut after = s;
                after.etag = Some(r.etag);
                after.last_modified = None;
                // Last-Modified is unknown until the next listing, which pins it.
                self.attrs.put(rel, after);
                Ok(())
            }
            Err(StoreError::NotFound(_)) if s.kind == FileKind::Dir => {
                // Implicit directory: give it a marker carrying the attributes.
                let mut opts = self.new_object_opts(&s);
                opts.storage_class = None;
                self.store
                    .put_object(key.as_str(), Bytes::new(), &opts)
                    .await?;
                self.attrs.put(rel, s);
                Ok(())
            }
            Err(StoreError::NotFound(_)) => Err(FsError::NotFound),
            Err(e) => Err(e.into()),
        }
    }
}
