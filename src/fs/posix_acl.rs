//! POSIX ACLs as values (pure): the kernel's xattr form of `system.posix_acl_access` and
//! `system.posix_acl_default` (little-endian: a `u32` version 2, then `{u16 tag, u16 perm,
//! u32 id}` entries), the mode arithmetic the kernel leaves to a FUSE filesystem that asks for
//! `FUSE_POSIX_ACL` (what ext4 gets from `posix_acl_update_mode`, `posix_acl_chmod` and
//! `posix_acl_create`), and where both live in object metadata: the `x-cos-meta-xattr` JSON map
//! of free-form xattrs (`{name: base64}`, the cosfs/s3fs format), so they go wherever the
//! object's mode goes (uploads, copies, renames, the persistent metadata cache).

use std::collections::BTreeMap;

use base64::Engine;

use super::error::{FsError, FsResult};
use super::xattr_acl::{decode_value, encode_value};

/// The access ACL's xattr name.
pub const ACCESS: &str = "system.posix_acl_access";
/// The default ACL's xattr name (directories only).
pub const DEFAULT: &str = "system.posix_acl_default";
/// The `x-cos-meta-` name of the free-form xattr map.
pub const XATTR_META: &str = "xattr";

/// True for the two ACL xattr names.
pub fn is_acl_name(name: &str) -> bool {
    name == ACCESS || name == DEFAULT
}

const VERSION: u32 = 2;
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
/// The id the kernel writes for entries without one.
const UNDEFINED_ID: u32 = u32::MAX;

/// One entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// ACL_USER_OBJ, ACL_USER, ...
    tag: u16,
    /// rwx bits.
    perm: u16,
    /// uid or gid (ACL_USER / ACL_GROUP), else undefined.
    id: u32,
}

/// A validated ACL, entries in the kernel's order (tag, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl(Vec<Entry>);

impl Acl {
    /// Parses and validates the xattr form (EINVAL when malformed, as the kernel's
    /// `posix_acl_valid` would answer).
    pub fn parse(v: &[u8]) -> FsResult<Acl> {
        let bad = |m: &str| FsError::InvalidArgument(format!("POSIX ACL: {m}"));
        if v.len() < 4 || !(v.len() - 4).is_multiple_of(8) {
            return Err(bad("size is not 4 + 8 n bytes"));
        }
        if u32::from_le_bytes([v[0], v[1], v[2], v[3]]) != VERSION {
            return Err(bad("version is not 2"));
        }
        let mut e: Vec<Entry> = v[4..]
            .chunks_exact(8)
            .map(|c| Entry {
                tag: u16::from_le_bytes([c[0], c[1]]),
                perm: u16::from_le_bytes([c[2], c[3]]),
                id: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        let mut count = BTreeMap::new();
        for x in &mut e {
            if x.perm & !7 != 0 {
                return Err(bad("permission bits beyond rwx"));
            }
            match x.tag {
                USER | GROUP => {}
                USER_OBJ | GROUP_OBJ | MASK | OTHER => x.id = UNDEFINED_ID,
                _ => return Err(bad("unknown entry tag")),
            }
            *count.entry(x.tag).or_insert(0usize) += 1;
        }
        e.sort_by_key(|x| (x.tag, x.id));
        if e.windows(2)
            .any(|w| w[0].tag == w[1].tag && w[0].id == w[1].id)
        {
            return Err(bad("duplicate entry"));
        }
        let n = |t| count.get(&t).copied().unwrap_or(0);
        if n(USER_OBJ) != 1 || n(GROUP_OBJ) != 1 || n(OTHER) != 1 {
            return Err(bad("needs exactly one owner, group and other entry"));
        }
        if n(USER) + n(GROUP) > 0 && n(MASK) != 1 {
            return Err(bad("named entries need a mask entry"));
        }
        Ok(Acl(e))
    }

    /// The xattr form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = VERSION.to_le_bytes().to_vec();
        for x in &self.0 {
            out.extend_from_slice(&x.tag.to_le_bytes());
            out.extend_from_slice(&x.perm.to_le_bytes());
            out.extend_from_slice(&x.id.to_le_bytes());
        }
        out
    }

    fn perm_of(&self, tag: u16) -> Option<u32> {
        self.0.iter().find(|x| x.tag == tag).map(|x| x.perm as u32)
    }

    fn set_perm(&mut self, tag: u16, perm: u32) {
        if let Some(x) = self.0.iter_mut().find(|x| x.tag == tag) {
            x.perm = (perm & 7) as u16;
        }
    }

    /// The rwxrwxrwx bits this ACL stands for: owner, mask (or group), other.
    pub fn mode_bits(&self) -> u32 {
        let group = self.perm_of(MASK).or(self.perm_of(GROUP_OBJ)).unwrap_or(0);
        (self.perm_of(USER_OBJ).unwrap_or(0) << 6) | (group << 3) | self.perm_of(OTHER).unwrap_or(0)
    }

    /// True when the mode alone says as much (three entries): such an ACL is not stored, as
    /// on ext4, so getfacl shows the same and `ls -l` prints no `+`.
    pub fn is_minimal(&self) -> bool {
        self.0.len() == 3
    }

    /// chmod: the owner, mask (or group when there is no mask) and other entries take the new
    /// bits (`posix_acl_chmod_masq`).
    pub fn chmod(&mut self, perm: u32) {
        self.set_perm(USER_OBJ, perm >> 6);
        let group = if self.perm_of(MASK).is_some() {
            MASK
        } else {
            GROUP_OBJ
        };
        self.set_perm(group, perm >> 3);
        self.set_perm(OTHER, perm);
    }

    /// The access ACL of a new object from its parent's default ACL (this `Acl`) and the
    /// requested mode (umask not applied): each mode-equivalent entry is limited by the mode,
    /// and the mode's rwx bits become what is left (`posix_acl_create_masq`). Returns the new
    /// permission bits.
    pub fn create_masq(&mut self, perm: u32) -> u32 {
        let lim = |a: u32, shift: u32| a & (perm >> shift) & 7;
        let user = lim(self.perm_of(USER_OBJ).unwrap_or(0), 6);
        self.set_perm(USER_OBJ, user);
        let other = lim(self.perm_of(OTHER).unwrap_or(0), 0);
        self.set_perm(OTHER, other);
        let tag = if self.perm_of(MASK).is_some() {
            MASK
        } else {
            GROUP_OBJ
        };
        let group = lim(self.perm_of(tag).unwrap_or(0), 3);
        self.set_perm(tag, group);
        (perm & !0o777) | (user << 6) | (group << 3) | other
    }
}

/// The ACLs of one object (each validated xattr bytes; None: not set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PosixAcls {
    /// `system.posix_acl_access`.
    pub access: Option<Vec<u8>>,
    /// `system.posix_acl_default`.
    pub default: Option<Vec<u8>>,
}

impl PosixAcls {
    /// The value of one of the two names.
    pub fn get(&self, name: &str) -> Option<&Vec<u8>> {
        if name == ACCESS {
            self.access.as_ref()
        } else {
            self.default.as_ref()
        }
    }

    /// Keeps the access ACL in step with new permission bits (chmod).
    pub fn chmod(&mut self, perm: u32) {
        if let Some(a) = self.access.as_ref().and_then(|v| Acl::parse(v).ok()) {
            let mut a = a;
            a.chmod(perm);
            self.access = Some(a.to_bytes());
        }
    }
}

/// The free-form xattr map of user metadata (`x-cos-meta-xattr`), decoded.
pub fn xattr_map(user_meta: &BTreeMap<String, String>) -> BTreeMap<String, Vec<u8>> {
    let Some(raw) = user_meta.get(XATTR_META) else {
        return BTreeMap::new();
    };
    let json = String::from_utf8_lossy(&decode_value(raw)).into_owned();
    let parsed: BTreeMap<String, String> = serde_json::from_str(&json).unwrap_or_default();
    parsed
        .into_iter()
        .filter_map(|(k, v)| Some((k, base64::engine::general_purpose::STANDARD.decode(v).ok()?)))
        .collect()
}

/// Writes the free-form xattr map into user metadata (removed when empty).
pub fn set_xattr_map(user_meta: &mut BTreeMap<String, String>, m: &BTreeMap<String, Vec<u8>>) {
    if m.is_empty() {
        user_meta.remove(XATTR_META);
        return;
    }
    let enc: BTreeMap<&String, String> = m
        .iter()
        .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    let json = serde_json::to_string(&enc).unwrap_or_default();
    user_meta.insert(XATTR_META.into(), encode_value(json.as_bytes()));
}

/// The ACLs stored in user metadata (malformed values are ignored, with a log line).
pub fn read_acls(user_meta: &BTreeMap<String, String>) -> PosixAcls {
    if !user_meta.contains_key(XATTR_META) {
        return PosixAcls::default();
    }
    let mut m = xattr_map(user_meta);
    let mut take = |name: &str| {
        let v = m.remove(name)?;
        match Acl::parse(&v) {
            Ok(_) => Some(v),
            Err(e) => {
                log::warn!("ignoring a stored {name}: {e}");
                None
            }
        }
    };
    PosixAcls {
        access: take(ACCESS),
        default: take(DEFAULT),
    }
}

/// Stores `acls` (`None`: keep what the metadata holds) and brings the stored access ACL in
/// step with the permission bits `perm` (so a chmod of an object whose ACLs were not loaded
/// still updates them). Metadata without ACLs is left byte-for-byte as it was.
pub fn write_acls(user_meta: &mut BTreeMap<String, String>, acls: Option<&PosixAcls>, perm: u32) {
    let mut acls = match acls {
        Some(a) => a.clone(),
        None => read_acls(user_meta),
    };
    acls.chmod(perm);
    let mut m = xattr_map(user_meta);
    let before = m.clone();
    for (name, v) in [(ACCESS, acls.access), (DEFAULT, acls.default)] {
        match v {
            Some(v) => m.insert(name.to_string(), v),
            None => m.remove(name),
        };
    }
    if m != before {
        set_xattr_map(user_meta, &m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut v = VERSION.to_le_bytes().to_vec();
        for &(t, p, id) in entries {
            v.extend_from_slice(&t.to_le_bytes());
            v.extend_from_slice(&p.to_le_bytes());
            v.extend_from_slice(&id.to_le_bytes());
        }
        v
    }

    const U: u32 = UNDEFINED_ID;

    #[test]
    fn parse_validates_like_the_kernel() {
        let ok = acl(&[
            (USER_OBJ, 6, U),
            (USER, 4, 65534),
            (GROUP_OBJ, 0, U),
            (MASK, 4, U),
            (OTHER, 0, U),
        ]);
        let a = Acl::parse(&ok).unwrap();
        assert_eq!(a.to_bytes(), ok);
        assert_eq!(a.mode_bits(), 0o640);
        assert!(!a.is_minimal());
        // Named entry without a mask, missing other, bad version, bad size, bad perm.
        let no_mask = acl(&[
            (USER_OBJ, 6, U),
            (USER, 4, 1),
            (GROUP_OBJ, 0, U),
            (OTHER, 0, U),
        ]);
        assert!(Acl::parse(&no_mask).is_err());
        assert!(Acl::parse(&acl(&[(USER_OBJ, 6, U), (GROUP_OBJ, 0, U)])).is_err());
        let mut v1 = ok.clone();
        v1[0] = 1;
        assert!(Acl::parse(&v1).is_err());
        assert!(Acl::parse(&ok[..7]).is_err());
        assert!(Acl::parse(&acl(&[(USER_OBJ, 8, U), (GROUP_OBJ, 0, U), (OTHER, 0, U)])).is_err());
        let dup = acl(&[
            (USER_OBJ, 6, U),
            (USER, 4, 1),
            (USER, 2, 1),
            (GROUP_OBJ, 0, U),
            (MASK, 4, U),
            (OTHER, 0, U),
        ]);
        assert!(Acl::parse(&dup).is_err());
    }

    #[test]
    fn chmod_moves_mask_not_group() {
        let v = acl(&[
            (USER_OBJ, 6, U),
            (USER, 7, 65534),
            (GROUP_OBJ, 5, U),
            (MASK, 7, U),
            (OTHER, 0, U),
        ]);
        let mut a = Acl::parse(&v).unwrap();
        a.chmod(0o751);
        assert_eq!(a.mode_bits(), 0o751);
        assert_eq!(
            a.perm_of(GROUP_OBJ),
            Some(5),
            "the owning group keeps its entry"
        );
        let mut m =
            Acl::parse(&acl(&[(USER_OBJ, 6, U), (GROUP_OBJ, 4, U), (OTHER, 4, U)])).unwrap();
        m.chmod(0o600);
        assert_eq!(m.perm_of(GROUP_OBJ), Some(0));
    }

    #[test]
    fn create_masq_limits_by_mode() {
        // Default ACL u::rwx,u:65534:rwx,g::r-x,m::rwx,o::r-x; creating a file with 0666.
        let d = acl(&[
            (USER_OBJ, 7, U),
            (USER, 7, 65534),
            (GROUP_OBJ, 5, U),
            (MASK, 7, U),
            (OTHER, 5, U),
        ]);
        let mut a = Acl::parse(&d).unwrap();
        assert_eq!(a.create_masq(0o100666), 0o100664);
        assert_eq!(a.perm_of(USER), Some(7), "named entries are not limited");
        assert_eq!(a.perm_of(MASK), Some(6));
        assert_eq!(a.perm_of(GROUP_OBJ), Some(5));
    }

    #[test]
    fn acls_live_in_the_xattr_map_next_to_user_names() {
        let mut meta = BTreeMap::new();
        let mut m = BTreeMap::new();
        m.insert("user.x".to_string(), b"1".to_vec());
        set_xattr_map(&mut meta, &m);
        let v = acl(&[
            (USER_OBJ, 6, U),
            (USER, 4, 65534),
            (GROUP_OBJ, 0, U),
            (MASK, 4, U),
            (OTHER, 0, U),
        ]);
        let acls = PosixAcls {
            access: Some(v.clone()),
            default: None,
        };
        write_acls(&mut meta, Some(&acls), 0o640);
        assert_eq!(read_acls(&meta), acls);
        assert_eq!(xattr_map(&meta)["user.x"], b"1");
        // A chmod without the ACLs loaded still updates the stored access ACL.
        write_acls(&mut meta, None, 0o600);
        let back = Acl::parse(read_acls(&meta).access.as_ref().unwrap()).unwrap();
        assert_eq!(back.mode_bits(), 0o600);
        // Removing leaves the other names; metadata without ACLs is untouched.
        write_acls(&mut meta, Some(&PosixAcls::default()), 0o600);
        assert_eq!(xattr_map(&meta).len(), 1);
        let mut plain = BTreeMap::new();
        write_acls(&mut plain, None, 0o644);
        assert!(plain.is_empty());
    }
}
