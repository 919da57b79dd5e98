//! Names and keys: `ValidName` (one checked path component), `ObjectKey` (a checked COS key),
//! the directory ⇄ `dir/` mapping and the mount prefix (`BUCKET:/prefix`).
//!
//! Rules (issue 3, docs/protocol.md §2): a component over 255 bytes or a key over 850 bytes is
//! ENAMETOOLONG; a name COS cannot store (not UTF-8, NUL, `.`/`..`, `/`) is EINVAL. Other
//! control characters are valid: keys travel URL-encoded (and listings are asked for with
//! `encoding-type=url`), and their deletes go one by one, never inside an XML body. Names are never rewritten silently. Everything past this file takes these newtypes
//! and does not re-check strings.

use std::ffi::OsStr;
use std::fmt;

use super::error::{FsError, FsResult};

/// Longest path component (NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Longest COS key, in bytes of UTF-8.
pub const KEY_MAX: usize = 850;

/// One path component that COS can store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValidName(String);

impl ValidName {
    /// Checks a component from the kernel.
    pub fn new(name: &OsStr) -> FsResult<ValidName> {
        let s = name
            .to_str()
            .ok_or_else(|| FsError::InvalidName(format!("{name:?} is not UTF-8")))?;
        ValidName::parse(s)
    }

    /// Checks a component given as text (listings, tests).
    pub fn parse(s: &str) -> FsResult<ValidName> {
        if s.is_empty() || s == "." || s == ".." {
            return Err(FsError::InvalidName(format!("{s:?} is reserved")));
        }
        if s.len() > NAME_MAX {
            return Err(FsError::NameTooLong(format!(
                "{} bytes > {NAME_MAX}",
                s.len()
            )));
        }
        if s.contains('/') {
            return Err(FsError::InvalidName(format!("{s:?} contains '/'")));
        }
        // NUL ends a C string and COS refuses it in keys.
        if s.contains('\0') {
            return Err(FsError::InvalidName(format!("{s:?} contains NUL")));
        }
        Ok(ValidName(s.to_string()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ValidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A COS key (with the mount prefix applied), at most 850 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// The key of a file at relative path `rel` (`a/b/c`, no leading or trailing `/`).
    pub fn file(prefix: &str, rel: &str) -> FsResult<ObjectKey> {
        if rel.is_empty() {
            return Err(FsError::IsDir);
        }
        ObjectKey::checked(format!("{prefix}{rel}"))
    }

    /// The marker key of a directory at `rel` (`a/b/`); the root is the prefix itself.
    pub fn dir(prefix: &str, rel: &str) -> FsResult<ObjectKey> {
        if rel.is_empty() {
            return Ok(ObjectKey(prefix.to_string()));
        }
        ObjectKey::checked(format!("{prefix}{rel}/"))
    }

    fn checked(key: String) -> FsResult<ObjectKey> {
        if key.len() > KEY_MAX {
            return Err(FsError::NameTooLong(format!(
                "key of {} bytes > {KEY_MAX}",
                key.len()
            )));
        }
        Ok(ObjectKey(key))
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Joins a relative directory path and a name (`""` + `a` = `a`, `a` + `b` = `a/b`).
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Normalises a mount prefix (`/a/b`, `a/b/`, `/`) to the key prefix form (`a/b/`, or `""`).
/// Empty components and `.`/`..` are refused.
pub fn mount_prefix(p: &str) -> FsResult<String> {
    let trimmed = p.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let mut out = String::new();
    for comp in trimmed.split('/') {
        let n = ValidName::parse(comp)?;
        out.push_str(n.as_str());
        out.push('/');
    }
    if out.len() > KEY_MAX {
        return Err(FsError::NameTooLong("mount prefix".into()));
    }
    Ok(out)
}

/// Splits `BUCKET-APPID[:/prefix]` into the bucket and the normalised key prefix.
pub fn split_bucket_spec(spec: &str) -> FsResult<(String, String)> {
    match spec.split_once(':') {
        Some((bucket, prefix)) => Ok((bucket.to_string(), mount_prefix(prefix)?)),
        None => Ok((spec.to_string(), String::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn names_follow_the_key_rules() {
        assert_eq!(ValidName::parse("a b%+#?ü").unwrap().as_str(), "a b%+#?ü");
        assert_eq!(
            ValidName::parse(&"x".repeat(255)).unwrap().as_str().len(),
            255
        );
        let too_long = ValidName::parse(&"x".repeat(256)).unwrap_err();
        assert_eq!(too_long.errno(), libc::ENAMETOOLONG);
        for good in ["tab\there", "cr\r", "nl\n", "del\u{7f}"] {
            assert!(ValidName::parse(good).is_ok(), "{good:?}");
        }
        for bad in ["", ".", "..", "a/b", "nul\0"] {
            assert_eq!(
                ValidName::parse(bad).unwrap_err().errno(),
                libc::EINVAL,
                "{bad:?}"
            );
        }
        let not_utf8 = OsStr::from_bytes(b"\xff\xfe");
        assert_eq!(ValidName::new(not_utf8).unwrap_err().errno(), libc::EINVAL);
    }

    #[test]
    fn keys_map_dirs_to_markers_and_limit_length() {
        assert_eq!(ObjectKey::file("", "a/b").unwrap().as_str(), "a/b");
        assert_eq!(ObjectKey::dir("", "a/b").unwrap().as_str(), "a/b/");
        assert_eq!(ObjectKey::dir("p/", "").unwrap().as_str(), "p/");
        assert_eq!(ObjectKey::file("p/", "x").unwrap().as_str(), "p/x");
        let ok = "a".repeat(850);
        assert!(ObjectKey::file("", &ok).is_ok());
        let long = "a".repeat(851);
        assert_eq!(
            ObjectKey::file("", &long).unwrap_err().errno(),
            libc::ENAMETOOLONG
        );
        // A directory whose marker (with '/') would pass 850 bytes is refused too.
        assert_eq!(
            ObjectKey::dir("", &ok).unwrap_err().errno(),
            libc::ENAMETOOLONG
        );
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a/b", "c"), "a/b/c");
    }

    #[test]
    fn mount_prefixes_normalise() {
        assert_eq!(mount_prefix("/").unwrap(), "");
        assert_eq!(mount_prefix("/data/x").unwrap(), "data/x/");
        assert_eq!(mount_prefix("data/").unwrap(), "data/");
        assert!(mount_prefix("/a//b").is_err());
        assert!(mount_prefix("/a/../b").is_err());
        assert_eq!(
            split_bucket_spec("b-125:/p/q").unwrap(),
            ("b-125".to_string(), "p/q/".to_string())
        );
        assert_eq!(
            split_bucket_spec("b-125").unwrap(),
            ("b-125".to_string(), String::new())
        );
    }
}
