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
use crate::store::{
    AccessControlPolicy, AclSpec, CopyOptions, Grantee, MetadataDirective, PutOptions, PutResult,
    StoreError,
};

/// The AllUsers group (what `public-read` grants READ to).
const ALL_USERS: &str = "http://cam.qcloud.com/groups/global/AllUsers";

/// True when the policy is exactly what its canned value grants (owner FULL_CONTROL, plus
/// AllUsers for the public ones): then the canned value alone restores it.
fn is_pure_canned(p: &AccessControlPolicy) -> bool {
    p.grants.iter().all(|g| match &g.grantee {
        Grantee::User { id, .. } => *id == p.owner_id && g.permission == "FULL_CONTROL",
        Grantee::Group { uri } => uri == ALL_USERS,
    })
}

impl Fs {
    /// setattr.
    pub async fn setattr(&self, ino: InodeNo, req: SetAttr, fh: Option<Fh>) -> FsResult<Attr> {
        if let Some(size) = req.size {
            self.truncate(ino, fh, size).await?;
        }
        let meta_change = req.mode.is_some()
            || req.uid.is_some()
            || req.gid.is_some()
            || req.mtime.is_some()
            || req.atime.is_some();
        if meta_change && ino != super::types::ROOT_INO {
            self.check_writable()?;
            let old = self.stat_ino(ino).await?;
            let mut s = old.clone();
            if let Some(m) = req.mode {
                s.perm = m & 0o7777;
                // As on a local disk, chmod rewrites the access ACL's owner/mask/other.
                if let Some(acl) = &mut s.acl {
                    acl.chmod(s.perm);
                }
            }
            if let Some(u) = req.uid {
                s.uid = u;
            }
            if let Some(g) = req.gid {
                s.gid = g;
            }
            let now = SystemTime::now();
            let at = |t: SetTime| match t {
                SetTime::Now => now,
                SetTime::At(t) => t,
            };
            if let Some(t) = req.mtime {
                s.mtime = at(t);
            }
            if let Some(t) = req.atime {
                s.atime = at(t);
            }
            // Any change of the inode's status changes ctime (and only ctime for chmod/chown).
            s.ctime = now;
            self.persist_attrs(ino, s).await?;
        }
        self.getattr(ino).await
    }

    /// Stores changed attributes where they will reach COS (see module doc).
    pub(crate) async fn persist_attrs(&self, ino: InodeNo, s: Stat) -> FsResult<()> {
        let node = self.table.node(ino)?;
        {
            // A staged file carries them in its next upload.
            let mut c = node.content.lock().await;
            if let Some(st) = c.staged_mut() {
                if st.stat.mtime != s.mtime || st.stat.atime != s.atime {
                    // Times set by hand: an early upload could only carry Complete's time.
                    st.early = None;
                }
                st.stat.perm = s.perm;
                st.stat.uid = s.uid;
                st.stat.gid = s.gid;
                st.stat.mtime = s.mtime;
                st.stat.atime = s.atime;
                st.stat.ctime = s.ctime;
                st.stat.acl = s.acl.clone();
                st.dirty = true;
                node.changed(&c);
                return Ok(());
            }
        }
        // A directory rename must not move the object between its path being read here and
        // its copy in place (a chmod would land on the old key, or bring it back).
        let _ns = self.ns.read().await;
        // Unlinked while open and not staged: nothing left to change.
        let rel = self.table.path(ino)?;
        let rel = rel.as_str();
        if s.kind == FileKind::Dir {
            // `touch -d` / tar's directory times win over the "a child changed" time.
            self.attrs.set_dir_times(rel, s.mtime, s.ctime);
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
                let user_meta = headers.user_meta.clone();
                let opts = CopyOptions {
                    directive: MetadataDirective::Replaced(headers),
                    storage_class: Some(meta.storage_class.clone()),
                    acl: self.cfg.acl.clone(),
                    if_match: Some(meta.etag.clone()),
                };
                let r = self.copy_in_place_keeping_acl(key.as_str(), opts).await?;
                self.metadb.put(key.as_str(), &r.etag, user_meta);
                // The new ETag/Last-Modified are pinned by the next listing (matched by size
                // until then: ETag spellings of copy answers and listings need not agree).
                let mut after = s;
                after.etag = None;
                after.last_modified = None;
                self.attrs.put(rel, after);
                Ok(())
            }
            Err(StoreError::NotFound(_)) if s.kind == FileKind::Dir => {
                // Implicit directory: give it a marker carrying the attributes.
                let mut opts = self.new_object_opts(&s);
                opts.storage_class = None;
                self.put_own_object(key.as_str(), Bytes::new(), &opts)
                    .await?;
                self.attrs.put(rel, s);
                Ok(())
            }
            Err(StoreError::NotFound(_)) => Err(FsError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Copies `key` onto itself with `opts`, keeping its ACL: COS gives a copy the default
    /// ACL, so a chmod or metadata change would otherwise undo `user.cos.acl`.
    /// An ACL this mount gave the object (`aclmemo.rs`) is named in the copy without reading it.
    pub(crate) async fn copy_in_place_keeping_acl(
        &self,
        key: &str,
        mut opts: CopyOptions,
    ) -> FsResult<PutResult> {
        let mut reapply = None;
        match self.acls.get(key) {
            Some(canned) => opts.acl = canned,
            None => match self.store.get_object_acl(key).await {
                Ok(p) => match p.canned.as_deref() {
                    Some(c) if is_pure_canned(&p) && c != "default" => {
                        opts.acl = Some(c.to_string())
                    }
                    Some("default") | None if is_pure_canned(&p) => {}
                    _ => reapply = Some(p),
                },
                Err(e) => {
                    log::debug!("{key}: ACL not readable before a copy in place ({e}); not kept");
                }
            },
        }
        let r = self.store.copy_object(key, key, &opts).await;
        if r.is_err() {
            self.acls.forget(key);
        }
        let r = r?;
        match reapply {
            Some(p) => {
                self.acls.forget(key);
                self.store.put_object_acl(key, &AclSpec::Policy(p)).await?;
            }
            None => self.acls.set(key, opts.acl.as_deref()),
        }
        Ok(r)
    }
}
