//! POSIX ACLs on the mount (issue 10). The kernel enforces them: the adapter asks for
//! `FUSE_POSIX_ACL` (which implies `default_permissions`), and the kernel then only reads and
//! writes the `system.posix_acl_access` / `system.posix_acl_default` xattrs through us. This
//! file answers those and does what the kernel leaves to the filesystem:
//! - a new access ACL sets the mode's rwx bits (owner, mask or group, other), and an ACL the
//!   mode alone expresses is not stored (as on ext4: no `+` in `ls -l`);
//! - a new file, device or directory gets its parent's default ACL, limited by the requested
//!   mode, and a new directory inherits the default ACL itself. The umask applies only when the
//!   parent has no default ACL, which is why the adapter also asks for `FUSE_DONT_MASK` and
//!   calls [`Fs::creation_mode`];
//! - chmod rewrites the access ACL's mode entries (`attr.rs`, via `PosixAcls::chmod`).
//!
//! Values are answered from what the mount knows of the object (the attribute cache, the
//! inode's staged state, a pending upload, the persistent metadata cache by ETag), so the
//! kernel's permission checks cost no request when the metadata is known; a HEAD only when it
//! is not. The mount root has no object to carry ACLs: setting them there is ENOTSUP.

use std::time::SystemTime;

use super::error::{FsError, FsResult};
use super::meta::{store_user_meta, Stat};
use super::posix_acl::{read_acls, Acl, PosixAcls, ACCESS, DEFAULT};
use super::types::{FileKind, InodeNo, ROOT_INO};
use super::Fs;
use crate::store::StoreError;

/// COS's limit on user metadata (names + values).
const META_MAX: usize = 2048;

impl Fs {
    /// The inode's attributes with its ACLs known (one HEAD when they are not).
    async fn stat_with_acl(&self, ino: InodeNo) -> FsResult<Stat> {
        let mut s = self.stat_ino(ino).await?;
        if s.acl.is_some() {
            return Ok(s);
        }
        let rel = self.table.path(ino)?;
        let key = self.key_of(&rel, s.kind)?;
        if key.as_str().is_empty() {
            s.acl = Some(PosixAcls::default());
            return Ok(s);
        }
        self.uploads.wait_key(key.as_str()).await?;
        let since = self.metadb.epoch();
        let acls = match self.store.head_object(key.as_str()).await {
            Ok(meta) => {
                self.metadb.put_seen(
                    key.as_str(),
                    &meta.etag,
                    meta.headers.user_meta.clone(),
                    since,
                );
                read_acls(&meta.headers.user_meta)
            }
            // An implicit directory (no marker) has nothing but the defaults.
            Err(StoreError::NotFound(_)) if s.kind == FileKind::Dir => PosixAcls::default(),
            Err(StoreError::NotFound(_)) => return Err(FsError::NotFound),
            Err(e) => return Err(e.into()),
        };
        s.acl = Some(acls);
        if !self.table.node(ino)?.is_staged() {
            // Later permission checks and getfacl answer from the cache.
            self.attrs.put(&rel, s.clone());
        }
        Ok(s)
    }

    /// getxattr of `system.posix_acl_access` / `_default`.
    pub(crate) async fn get_posix_acl(&self, ino: InodeNo, name: &str) -> FsResult<Vec<u8>> {
        let s = match self.stat_with_acl(ino).await {
            Err(FsError::NotFound) => return Err(FsError::NoAttr),
            r => r?,
        };
        s.acl
            .and_then(|a| a.get(name).cloned())
            .ok_or(FsError::NoAttr)
    }

    /// setxattr (`Some`) or removexattr (`None`) of an ACL; see the module doc.
    pub(crate) async fn set_posix_acl(
        &self,
        ino: InodeNo,
        name: &str,
        value: Option<&[u8]>,
        flags: i32,
    ) -> FsResult<()> {
        self.check_writable()?;
        let acl = value.map(Acl::parse).transpose()?;
        if ino == ROOT_INO {
            return Err(FsError::NotSupported(
                "the mount root has no object to carry ACLs",
            ));
        }
        let mut s = self.stat_with_acl(ino).await?;
        if name == DEFAULT && s.kind != FileKind::Dir {
            // Only directories have a default ACL (the kernel refuses it before us too).
            return match acl {
                Some(_) => Err(FsError::AccessDenied(
                    "a default ACL on a non-directory".into(),
                )),
                None => Ok(()),
            };
        }
        let mut acls = s.acl.clone().unwrap_or_default();
        let exists = acls.get(name).is_some();
        if flags & libc::XATTR_CREATE != 0 && exists {
            return Err(FsError::Exists);
        }
        if flags & libc::XATTR_REPLACE != 0 && !exists {
            return Err(FsError::NoAttr);
        }
        match (name, acl) {
            (ACCESS, Some(a)) => {
                s.perm = (s.perm & !0o777) | a.mode_bits();
                acls.access = (!a.is_minimal()).then(|| a.to_bytes());
            }
            (ACCESS, None) => acls.access = None,
            (_, a) => acls.default = a.map(|a| a.to_bytes()),
        }
        s.acl = Some(acls);
        let mut meta = Default::default();
        store_user_meta(&s, &mut meta);
        let size: usize = meta.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > META_MAX {
            return Err(FsError::TooBig(format!(
                "{name}: the object's metadata would exceed COS's {META_MAX} bytes"
            )));
        }
        s.ctime = SystemTime::now();
        self.persist_attrs(ino, s).await
    }

    /// The default ACL of directory `parent` (None: it has none).
    async fn default_acl(&self, parent: InodeNo) -> FsResult<Option<Acl>> {
        let s = self.stat_with_acl(parent).await?;
        s.acl
            .and_then(|a| a.default)
            .map(|v| Acl::parse(&v))
            .transpose()
    }

    /// The mode a new object in `parent` is created with: the caller's umask applies unless
    /// the parent has a default ACL (which then limits the mode instead, in `inherit_acl`).
    pub async fn creation_mode(&self, parent: InodeNo, mode: u32, umask: u32) -> u32 {
        match self.default_acl(parent).await {
            Ok(Some(_)) => mode,
            Ok(None) => mode & !umask,
            Err(e) => {
                log::warn!("create in {parent}: default ACL unknown ({e}); applying the umask");
                mode & !umask
            }
        }
    }

    /// Gives a new object `s` in `parent` the parent's default ACL (see module doc).
    pub(crate) async fn inherit_acl(&self, parent: InodeNo, s: &mut Stat) {
        if s.kind == FileKind::Symlink {
            return;
        }
        let default = match self.default_acl(parent).await {
            Ok(Some(d)) => d,
            Ok(None) => return,
            Err(e) => {
                log::warn!("create in {parent}: default ACL unknown ({e}); none inherited");
                return;
            }
        };
        let mut acls = PosixAcls::default();
        if s.kind == FileKind::Dir {
            acls.default = Some(default.to_bytes());
        }
        let mut access = default;
        s.perm = access.create_masq(s.perm);
        acls.access = (!access.is_minimal()).then(|| access.to_bytes());
        s.acl = Some(acls);
    }
}
