//! Extended attributes: the `user.cos.*` namespace (issue 4) and free-form `user.*` names.
//!
//! | name | get | set / remove |
//! |---|---|---|
//! | `user.cos.acl` | canned ACL (`default`, `private`, `public-read`) | PUT Object acl |
//! | `user.cos.grant-read`, `user.cos.grant-full-control` | `id="..."` list | PUT Object acl (grant header) |
//! | `user.cos.acl-policy` | JSON (see `xattr_acl.rs`) | PUT Object acl (policy body) |
//! | `user.cos.storage-class` | class | copy in place with the class |
//! | `user.cos.restore` | `none` / `in-progress` / `restored until DATE` | `days=N[,tier=T]`: POST restore |
//! | `user.cos.etag`, `-crc64`, `-object-type`, `-last-modified`, `user.cos.url` | from HEAD / presign | EPERM |
//! | `user.cos.content-type`, `-cache-control`, `-content-disposition`, `-content-encoding`, `-expires` | header | copy in place |
//! | `user.cos.meta.NAME` | `x-cos-meta-NAME` | copy in place |
//! | other `user.*` | stored as cosfs/s3fs do: JSON `{name: base64}` in `x-cos-meta-xattr` | copy in place |
//!
//! `system.posix_acl_access` / `system.posix_acl_default` are POSIX ACLs (`posix_acl_fs.rs`),
//! stored in the same map. Other namespaces (`security.`, `system.`, `trusted.`) are not kept:
//! reading or setting them gives ENOTSUP (so `ls -l` stops asking for SELinux labels). User metadata is limited to 2 KB in total (E2BIG beyond); metadata names may
//! contain only letters, digits and `-` (EINVAL otherwise). Pending uploads are waited for first,
//! so every change applies to the object in COS. A copy in place does not keep an object ACL set
//! with `user.cos.acl` (COS does not copy ACLs); the mount's `acl=` default is applied instead.

use std::ffi::OsStr;

use super::error::{FsError, FsResult};
use super::path::ObjectKey;
use super::posix_acl::{is_acl_name, set_xattr_map, xattr_map};
use super::types::{FileKind, InodeNo};
use super::xattr_acl::{
    decode_value, encode_value, grants_header, parse_policy, parse_restore, policy_json,
    restore_text,
};
use super::Fs;
use crate::store::{
    AclSpec, CopyOptions, MetadataDirective, ObjectHeaders, ObjectMeta, StorageClass, StoreError,
};

/// COS's limit on user metadata (names + values).
const META_MAX: usize = 2048;
/// `x-cos-meta-` names the fs uses itself (not shown as `user.cos.meta.*`).
const RESERVED_META: [&str; 5] = ["mode", "uid", "gid", "mtime", "xattr"];
/// Standard headers exposed as xattrs.
const HEADERS: [&str; 5] = [
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "expires",
];
/// Names listed for every object.
const ALWAYS: [&str; 11] = [
    "user.cos.acl",
    "user.cos.grant-read",
    "user.cos.grant-full-control",
    "user.cos.acl-policy",
    "user.cos.storage-class",
    "user.cos.restore",
    "user.cos.etag",
    "user.cos.crc64",
    "user.cos.object-type",
    "user.cos.last-modified",
    "user.cos.url",
];

fn header_slot<'a>(h: &'a mut ObjectHeaders, name: &str) -> Option<&'a mut Option<String>> {
    match name {
        "content-type" => Some(&mut h.content_type),
        "cache-control" => Some(&mut h.cache_control),
        "content-disposition" => Some(&mut h.content_disposition),
        "content-encoding" => Some(&mut h.content_encoding),
        "expires" => Some(&mut h.expires),
        _ => None,
    }
}

fn meta_size(h: &ObjectHeaders) -> usize {
    h.user_meta.iter().map(|(k, v)| k.len() + v.len()).sum()
}

fn valid_meta_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn text(v: &[u8]) -> FsResult<String> {
    String::from_utf8(v.to_vec())
        .map(|s| s.trim_end_matches('\0').to_string())
        .map_err(|_| FsError::InvalidArgument("value is not UTF-8".into()))
}

impl Fs {
    /// The object behind an inode, for xattrs (root of an unprefixed mount: none).
    async fn xattr_key(&self, ino: InodeNo) -> FsResult<(String, FileKind, ObjectKey)> {
        let rel = self.table.path(ino)?;
        let kind = self.table.kind(ino)?;
        let key = self.key_of(&rel, kind)?;
        if key.as_str().is_empty() {
            return Err(FsError::NoAttr);
        }
        Ok((rel, kind, key))
    }

    /// HEAD after pending uploads of the key are in COS; a missing marker is "no attributes".
    async fn xattr_head(&self, key: &ObjectKey) -> FsResult<ObjectMeta> {
        self.uploads.wait_key(key.as_str()).await?;
        match self.store.head_object(key.as_str()).await {
            Ok(m) => Ok(m),
            Err(StoreError::NotFound(_)) => Err(FsError::NoAttr),
            Err(e) => Err(e.into()),
        }
    }

    /// getxattr: the value (see module doc).
    pub async fn getxattr(&self, ino: InodeNo, name: &OsStr) -> FsResult<Vec<u8>> {
        let name = name.to_str().ok_or(FsError::NoAttr)?;
        if is_acl_name(name) {
            return self.get_posix_acl(ino, name).await;
        }
        if !name.starts_with("user.") {
            self.table.path(ino)?;
            // ENOTSUP, not ENODATA: `ls -l` asks every file for `security.selinux` and stops
            // asking for the whole file system after one ENOTSUP (one round trip per entry
            // saved); a file system without such labels answers so.
            return Err(FsError::NoNamespace);
        }
        let (_, _, key) = self.xattr_key(ino).await?;
        self.uploads.wait_key(key.as_str()).await?;
        let acl = || async {
            match self.store.get_object_acl(key.as_str()).await {
                Ok(p) => Ok(p),
                Err(StoreError::NotFound(_)) => Err(FsError::NoAttr),
                Err(e) => Err(FsError::from(e)),
            }
        };
        let v = match name {
            "user.cos.acl" => acl().await?.canned.unwrap_or_else(|| "default".into()),
            "user.cos.grant-read" => grants_header(&acl().await?, "READ"),
            "user.cos.grant-full-control" => grants_header(&acl().await?, "FULL_CONTROL"),
            "user.cos.acl-policy" => policy_json(&acl().await?),
            "user.cos.url" => self
                .store
                .presign_get(key.as_str(), self.cfg.presign_expiry)
                .ok_or(FsError::NotSupported("this endpoint cannot presign"))?,
            _ => {
                let m = self.xattr_head(&key).await?;
                match name {
                    "user.cos.storage-class" => m.storage_class.as_str().to_string(),
                    "user.cos.restore" => restore_text(m.restore.as_ref()),
                    "user.cos.etag" => m.etag,
                    "user.cos.crc64" => m.crc64.map(|c| c.to_string()).ok_or(FsError::NoAttr)?,
                    "user.cos.object-type" => m.object_type.unwrap_or_else(|| "normal".into()),
                    "user.cos.last-modified" => httpdate::fmt_http_date(m.last_modified),
                    _ => return self.get_meta_xattr(name, m.headers),
                }
            }
        };
        Ok(v.into_bytes())
    }

    fn get_meta_xattr(&self, name: &str, mut h: ObjectHeaders) -> FsResult<Vec<u8>> {
        if let Some(hn) = name.strip_prefix("user.cos.") {
            if let Some(slot) = header_slot(&mut h, hn) {
                return slot.clone().map(String::into_bytes).ok_or(FsError::NoAttr);
            }
            if let Some(mn) = hn.strip_prefix("meta.") {
                if RESERVED_META.contains(&mn) {
                    return Err(FsError::NoAttr);
                }
                return h
                    .user_meta
                    .get(mn)
                    .map(|v| decode_value(v))
                    .ok_or(FsError::NoAttr);
            }
            return Err(FsError::NoAttr);
        }
        xattr_map(&h.user_meta).remove(name).ok_or(FsError::NoAttr)
    }

    /// listxattr: NUL-terminated names.
    pub async fn listxattr(&self, ino: InodeNo) -> FsResult<Vec<u8>> {
        let key = match self.xattr_key(ino).await {
            Ok((_, _, k)) => k,
            Err(FsError::NoAttr) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let m = match self.xattr_head(&key).await {
            Ok(m) => m,
            Err(FsError::NoAttr) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names: Vec<String> = ALWAYS.iter().map(|s| s.to_string()).collect();
        let mut h = m.headers.clone();
        for hn in HEADERS {
            if header_slot(&mut h, hn).is_some_and(|s| s.is_some()) {
                names.push(format!("user.cos.{hn}"));
            }
        }
        for k in m
            .headers
            .user_meta
            .keys()
            .filter(|k| !RESERVED_META.contains(&k.as_str()))
        {
            names.push(format!("user.cos.meta.{k}"));
        }
        names.extend(xattr_map(&m.headers.user_meta).into_keys());
        let mut out = Vec::new();
        for n in names {
            out.extend_from_slice(n.as_bytes());
            out.push(0);
        }
        Ok(out)
    }

    /// setxattr (see module doc). `flags`: XATTR_CREATE / XATTR_REPLACE for free-form names.
    pub async fn setxattr(
        &self,
        ino: InodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> FsResult<()> {
        self.check_writable()?;
        let name = name
            .to_str()
            .ok_or(FsError::NotSupported("non-UTF-8 xattr name"))?
            .to_string();
        if is_acl_name(&name) {
            return self.set_posix_acl(ino, &name, Some(value), flags).await;
        }
        if !name.starts_with("user.") {
            return Err(FsError::NotSupported("only user.* extended attributes"));
        }
        // Not moved by a directory rename between the key read here and the change in COS.
        let _ns = self.ns.read().await;
        let (rel, kind, key) = match self.xattr_key(ino).await {
            Err(FsError::NoAttr) => {
                return Err(FsError::NotSupported("the mount root has no object"))
            }
            r => r?,
        };
        if name.starts_with("user.cos.") && flags & (libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0
        {
            // The user.cos.* names exist or not like any attribute: XATTR_CREATE of one that
            // exists is EEXIST, XATTR_REPLACE of one that does not is ENODATA.
            let exists = match self.getxattr(ino, OsStr::new(&name)).await {
                Ok(_) => true,
                Err(FsError::NoAttr) => false,
                Err(e) => return Err(e),
            };
            if flags & libc::XATTR_CREATE != 0 && exists {
                return Err(FsError::Exists);
            }
            if flags & libc::XATTR_REPLACE != 0 && !exists {
                return Err(FsError::NoAttr);
            }
        }
        if kind == FileKind::Dir {
            self.ensure_marker(&rel, &key).await?;
        }
        let v = text(value);
        match name.as_str() {
            "user.cos.acl" => {
                let canned = v?;
                // Object ACLs (PUT Object acl) take only these; public-read-write is a bucket ACL.
                if !["default", "private", "public-read"].contains(&canned.as_str()) {
                    return Err(FsError::InvalidArgument(format!(
                        "unknown canned ACL {canned:?}"
                    )));
                }
                self.uploads.wait_key(key.as_str()).await?;
                let spec = AclSpec::Headers {
                    canned: Some(canned.clone()),
                    grant_read: None,
                    grant_full_control: None,
                };
                self.acls.forget(key.as_str());
                self.store.put_object_acl(key.as_str(), &spec).await?;
                self.acls.set(key.as_str(), Some(&canned));
                Ok(())
            }
            "user.cos.grant-read" | "user.cos.grant-full-control" => {
                let g = Some(v?);
                self.uploads.wait_key(key.as_str()).await?;
                self.acls.forget(key.as_str());
                let spec = if name == "user.cos.grant-read" {
                    AclSpec::Headers {
                        canned: None,
                        grant_read: g,
                        grant_full_control: None,
                    }
                } else {
                    AclSpec::Headers {
                        canned: None,
                        grant_read: None,
                        grant_full_control: g,
                    }
                };
                Ok(self.store.put_object_acl(key.as_str(), &spec).await?)
            }
            "user.cos.acl-policy" => {
                let p = parse_policy(&v?)?;
                self.uploads.wait_key(key.as_str()).await?;
                self.acls.forget(key.as_str());
                Ok(self
                    .store
                    .put_object_acl(key.as_str(), &AclSpec::Policy(p))
                    .await?)
            }
            "user.cos.restore" => {
                let (days, tier) = parse_restore(&v?)?;
                self.uploads.wait_key(key.as_str()).await?;
                match self.store.restore_object(key.as_str(), days, tier).await {
                    Ok(_) => Ok(()),
                    // Not archived: nothing to restore, nothing to report (docs/protocol.md §5).
                    Err(StoreError::InvalidRequest { code, .. })
                        if code == "RestoreNonArchiveObject" =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                }
            }
            "user.cos.storage-class" => {
                let class = StorageClass::parse(&v?);
                if let StorageClass::Other(c) = &class {
                    log::info!(
                        "{rel}: storage class {c} is not known to this build; sending it as given"
                    );
                }
                let m = self.xattr_head(&key).await?;
                self.copy_in_place(&rel, &key, &m, m.headers.clone(), Some(class))
                    .await
            }
            "user.cos.etag"
            | "user.cos.crc64"
            | "user.cos.object-type"
            | "user.cos.last-modified"
            | "user.cos.url" => Err(FsError::NotPermitted("read-only attribute")),
            _ => {
                let m = self.xattr_head(&key).await?;
                let mut h = m.headers.clone();
                self.edit_meta(&mut h, &name, Some(value), flags)?;
                self.copy_in_place(&rel, &key, &m, h, None).await
            }
        }
    }

    /// removexattr of a header, `user.cos.meta.*` or free-form name.
    pub async fn removexattr(&self, ino: InodeNo, name: &OsStr) -> FsResult<()> {
        self.check_writable()?;
        let name = name.to_str().ok_or(FsError::NoAttr)?.to_string();
        if is_acl_name(&name) {
            return self.set_posix_acl(ino, &name, None, 0).await;
        }
        if !name.starts_with("user.") {
            return Err(FsError::NoAttr);
        }
        let _ns = self.ns.read().await;
        let (rel, _, key) = self.xattr_key(ino).await?;
        if ALWAYS.contains(&name.as_str()) {
            return Err(FsError::NotPermitted("this attribute cannot be removed"));
        }
        let m = self.xattr_head(&key).await?;
        let mut h = m.headers.clone();
        self.edit_meta(&mut h, &name, None, 0)?;
        self.copy_in_place(&rel, &key, &m, h, None).await
    }

    /// Sets (`Some`) or removes (`None`) a header / metadata / free-form xattr in `h`.
    fn edit_meta(
        &self,
        h: &mut ObjectHeaders,
        name: &str,
        value: Option<&[u8]>,
        flags: i32,
    ) -> FsResult<()> {
        if let Some(hn) = name.strip_prefix("user.cos.") {
            if let Some(slot) = header_slot(h, hn) {
                if value.is_none() && slot.is_none() {
                    return Err(FsError::NoAttr);
                }
                *slot = value.map(text).transpose()?;
                return Ok(());
            }
            let mn = hn
                .strip_prefix("meta.")
                .ok_or(FsError::NotSupported("unknown user.cos attribute"))?;
            let mn = mn.to_ascii_lowercase();
            if !valid_meta_name(&mn) || RESERVED_META.contains(&mn.as_str()) {
                return Err(FsError::InvalidArgument(format!(
                    "metadata name {mn:?}: letters, digits and '-' only"
                )));
            }
            match value {
                Some(v) => {
                    h.user_meta.insert(mn, encode_value(v));
                }
                None => {
                    h.user_meta.remove(&mn).ok_or(FsError::NoAttr)?;
                }
            }
        } else {
            let mut m = xattr_map(&h.user_meta);
            let exists = m.contains_key(name);
            if flags & libc::XATTR_CREATE != 0 && exists {
                return Err(FsError::Exists);
            }
            if (flags & libc::XATTR_REPLACE != 0 || value.is_none()) && !exists {
                return Err(FsError::NoAttr);
            }
            match value {
                Some(v) => m.insert(name.to_string(), v.to_vec()),
                None => m.remove(name),
            };
            set_xattr_map(&mut h.user_meta, &m);
        }
        if meta_size(h) > META_MAX {
            return Err(FsError::TooBig(format!(
                "user metadata over COS's {META_MAX} bytes"
            )));
        }
        Ok(())
    }

    /// PUT Object - Copy onto itself with new headers (and class), keeping the data.
    async fn copy_in_place(
        &self,
        rel: &str,
        key: &ObjectKey,
        m: &ObjectMeta,
        headers: ObjectHeaders,
        class: Option<StorageClass>,
    ) -> FsResult<()> {
        let class = class.or_else(|| {
            (m.storage_class != StorageClass::Standard).then(|| m.storage_class.clone())
        });
        let opts = CopyOptions {
            directive: MetadataDirective::Replaced(headers),
            storage_class: class,
            acl: self.cfg.acl.clone(),
            if_match: Some(m.etag.clone()),
        };
        self.copy_in_place_keeping_acl(key.as_str(), opts).await?;
        self.attrs.invalidate(rel);
        Ok(())
    }

    /// Gives an implicit directory a marker so it can carry metadata.
    async fn ensure_marker(&self, rel: &str, key: &ObjectKey) -> FsResult<()> {
        match self.store.head_object(key.as_str()).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound(_)) => {
                let s = self.stat_path(rel).await?;
                let mut opts = self.new_object_opts(&s);
                opts.storage_class = None;
                self.store
                    .put_object(key.as_str(), bytes::Bytes::new().into(), &opts)
                    .await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
