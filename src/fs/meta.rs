//! POSIX attributes in object metadata: `x-cos-meta-mode`, `-uid`, `-gid`, `-mtime`, with the
//! names and formats cosfs and s3fs use (mode = decimal `st_mode` including the file-type bits,
//! uid/gid decimal, mtime decimal seconds), plus `-atime`, `-ctime` and `-rdev` as s3fs writes
//! them, and the defaults for objects without them (atime and ctime default to mtime).
//!
//! We write mtime as `SECS` or `SECS.NNNNNNNNN` (nanoseconds when not zero) so `rsync -a` sees
//! exactly the time it set; cosfs/s3fs parse the leading integer and ignore the rest.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::posix_acl::{read_acls, write_acls, PosixAcls};
use super::types::FileKind;
use crate::store::{ListEntry, ObjectMeta, StorageClass};

/// `x-cos-meta-` names (lower case, without the prefix).
pub const META_MODE: &str = "mode";
/// Owner uid.
pub const META_UID: &str = "uid";
/// Owner gid.
pub const META_GID: &str = "gid";
/// Modification time.
pub const META_MTIME: &str = "mtime";
/// Access time (s3fs's name and format).
pub const META_ATIME: &str = "atime";
/// Status-change time (s3fs's name and format).
pub const META_CTIME: &str = "ctime";
/// Device number of a character or block device (s3fs's name).
pub const META_RDEV: &str = "rdev";

/// Owner and mode defaults for objects without metadata (mount options uid/gid/umask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Owner of objects without `x-cos-meta-uid`.
    pub uid: u32,
    /// Group of objects without `x-cos-meta-gid`.
    pub gid: u32,
    /// Applied to 0666 (files) and 0777 (directories) for objects without `x-cos-meta-mode`.
    pub umask: u32,
}

/// What the fs knows about one path: kind, size, times, owner, mode and the object identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Kind.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (`x-cos-meta-mtime`, else Last-Modified).
    pub mtime: SystemTime,
    /// Access time (`x-cos-meta-atime`, else mtime).
    pub atime: SystemTime,
    /// Status-change time (`x-cos-meta-ctime`, else mtime).
    pub ctime: SystemTime,
    /// Device number (character and block devices; 0 otherwise).
    pub rdev: u32,
    /// Permission bits only (`0o7777`).
    pub perm: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// ETag of the object behind it (None: implicit directory or not yet uploaded).
    pub etag: Option<String>,
    /// Last-Modified of the object (None as for `etag`).
    pub last_modified: Option<SystemTime>,
    /// Storage class (STANDARD when unknown).
    pub storage_class: StorageClass,
    /// True when mode/uid/gid/mtime came from the object's metadata (a HEAD, or a cached HEAD
    /// for the same ETag + Last-Modified); false when they are defaults from a listing.
    pub from_head: bool,
    /// POSIX ACLs (stored in `x-cos-meta-xattr`); None when not known (a listing's defaults,
    /// a directory seen only as a prefix): ask COS before relying on them.
    pub acl: Option<PosixAcls>,
}

impl Stat {
    /// A directory with default attributes (implicit directory, the root).
    pub fn dir(d: &Defaults, mtime: SystemTime) -> Stat {
        Stat {
            kind: FileKind::Dir,
            size: 0,
            mtime,
            atime: mtime,
            ctime: mtime,
            rdev: 0,
            perm: 0o777 & !d.umask,
            uid: d.uid,
            gid: d.gid,
            etag: None,
            last_modified: None,
            storage_class: StorageClass::Standard,
            from_head: false,
            acl: None,
        }
    }

    /// A new local file/symlink/dir created by this mount.
    pub fn new_local(kind: FileKind, perm: u32, uid: u32, gid: u32) -> Stat {
        let now = SystemTime::now();
        Stat {
            kind,
            size: 0,
            mtime: now,
            atime: now,
            ctime: now,
            rdev: 0,
            perm: perm & 0o7777,
            uid,
            gid,
            etag: None,
            last_modified: None,
            storage_class: StorageClass::Standard,
            from_head: true,
            acl: Some(PosixAcls::default()),
        }
    }

    /// From a listing entry (`is_dir`: the entry is a `dir/` marker): defaults for mode/owner.
    pub fn from_list(e: &ListEntry, is_dir: bool, d: &Defaults) -> Stat {
        let kind = if is_dir {
            FileKind::Dir
        } else {
            FileKind::File
        };
        Stat {
            kind,
            size: if is_dir { 0 } else { e.size },
            mtime: e.last_modified,
            atime: e.last_modified,
            ctime: e.last_modified,
            rdev: 0,
            perm: default_perm(kind, d),
            uid: d.uid,
            gid: d.gid,
            etag: Some(e.etag.clone()),
            last_modified: Some(e.last_modified),
            storage_class: e.storage_class.clone(),
            from_head: false,
            acl: None,
        }
    }

    /// From HEAD: user metadata applied over the defaults.
    pub fn from_head(m: &ObjectMeta, is_dir: bool, d: &Defaults) -> Stat {
        let mut s = Stat::from_list(
            &ListEntry {
                key: m.key.clone(),
                size: m.size,
                etag: m.etag.clone(),
                last_modified: m.last_modified,
                storage_class: m.storage_class.clone(),
            },
            is_dir,
            d,
        );
        apply_user_meta(&mut s, &m.headers.user_meta, is_dir);
        s.from_head = true;
        s
    }

    /// The `st_mode` value (type bits + permission bits).
    pub fn mode(&self) -> u32 {
        self.kind.type_bits() | (self.perm & 0o7777)
    }
}

/// Default permission bits for a kind.
pub fn default_perm(kind: FileKind, d: &Defaults) -> u32 {
    match kind {
        FileKind::Dir => 0o777 & !d.umask,
        FileKind::Symlink => 0o777,
        _ => 0o666 & !d.umask,
    }
}

/// Parses `x-cos-meta-mtime` (`SECS`, `SECS.FRACTION`); None when malformed.
pub fn parse_mtime(v: &str) -> Option<SystemTime> {
    let (secs, frac) = v.trim().split_once('.').unwrap_or((v.trim(), ""));
    let secs: u64 = secs.parse().ok()?;
    let mut nanos = 0u32;
    if !frac.is_empty() {
        let digits: String = frac.chars().take(9).collect();
        let n: u32 = digits.parse().ok()?;
        nanos = n * 10u32.pow(9 - digits.len() as u32);
    }
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Formats a time for `x-cos-meta-mtime` (see module doc).
pub fn format_mtime(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
    }
}

/// Applies `x-cos-meta-mode/uid/gid/mtime` (and the ACLs in `x-cos-meta-xattr`) to a stat. A mode with `S_IFLNK` makes a symlink
/// (cosfs's convention); a directory key stays a directory whatever the mode says.
pub fn apply_user_meta(s: &mut Stat, meta: &BTreeMap<String, String>, is_dir: bool) {
    if let Some(mode) = meta
        .get(META_MODE)
        .and_then(|v| v.trim().parse::<u32>().ok())
    {
        s.perm = mode & 0o7777;
        if !is_dir {
            if let Some(k) = FileKind::from_type_bits(mode & libc::S_IFMT) {
                if k != FileKind::Dir {
                    s.kind = k;
                }
            }
        }
    }
    if let Some(uid) = meta.get(META_UID).and_then(|v| v.trim().parse().ok()) {
        s.uid = uid;
    }
    if let Some(gid) = meta.get(META_GID).and_then(|v| v.trim().parse().ok()) {
        s.gid = gid;
    }
    if let Some(t) = meta.get(META_MTIME).and_then(|v| parse_mtime(v)) {
        s.mtime = t;
        s.atime = t;
        s.ctime = t;
    }
    if let Some(t) = meta.get(META_ATIME).and_then(|v| parse_mtime(v)) {
        s.atime = t;
    }
    if let Some(t) = meta.get(META_CTIME).and_then(|v| parse_mtime(v)) {
        s.ctime = t;
    }
    if let Some(r) = meta.get(META_RDEV).and_then(|v| v.trim().parse().ok()) {
        s.rdev = r;
    }
    s.acl = Some(read_acls(meta));
}

/// Writes mode/uid/gid/mtime of `s` into user metadata (replacing older values), and its ACLs
/// when known (the stored access ACL follows the mode either way).
pub fn store_user_meta(s: &Stat, meta: &mut BTreeMap<String, String>) {
    meta.insert(META_MODE.into(), s.mode().to_string());
    meta.insert(META_UID.into(), s.uid.to_string());
    meta.insert(META_GID.into(), s.gid.to_string());
    meta.insert(META_MTIME.into(), format_mtime(s.mtime));
    meta.insert(META_ATIME.into(), format_mtime(s.atime));
    meta.insert(META_CTIME.into(), format_mtime(s.ctime));
    if s.rdev != 0 {
        meta.insert(META_RDEV.into(), s.rdev.to_string());
    } else {
        meta.remove(META_RDEV);
    }
    write_acls(meta, s.acl.as_ref(), s.perm);
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Defaults = Defaults {
        uid: 1000,
        gid: 100,
        umask: 0o022,
    };

    #[test]
    fn cosfs_formats_round_trip() {
        let mut s = Stat::new_local(FileKind::File, 0o640, 5, 6);
        s.mtime = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        let mut m = BTreeMap::new();
        store_user_meta(&s, &mut m);
        assert_eq!(m["mode"], "33184"); // 0o100640
        assert_eq!(m["uid"], "5");
        assert_eq!(m["mtime"], "1600000000");
        let mut back = Stat::dir(&D, UNIX_EPOCH);
        back.kind = FileKind::File;
        apply_user_meta(&mut back, &m, false);
        assert_eq!(
            (back.perm, back.uid, back.gid, back.mtime),
            (0o640, 5, 6, s.mtime)
        );
        let t = UNIX_EPOCH + Duration::new(5, 120_000_000);
        assert_eq!(format_mtime(t), "5.120000000");
        assert_eq!(parse_mtime("5.12"), Some(t));
        assert_eq!(parse_mtime("x"), None);
    }

    #[test]
    fn symlink_mode_and_defaults() {
        let mut m = BTreeMap::new();
        m.insert("mode".to_string(), (libc::S_IFLNK | 0o777).to_string());
        let mut s = Stat::dir(&D, UNIX_EPOCH);
        s.kind = FileKind::File;
        apply_user_meta(&mut s, &m, false);
        assert_eq!(s.kind, FileKind::Symlink);
        assert_eq!(default_perm(FileKind::File, &D), 0o644);
        assert_eq!(default_perm(FileKind::Dir, &D), 0o755);
        assert_eq!(Stat::dir(&D, UNIX_EPOCH).mode(), libc::S_IFDIR | 0o755);
    }
}
