//! The ACLs this mount gave objects, by key, so that a copy in place (chmod, touch, chown,
//! `user.cos.*` metadata) of an object whose ACL is known needs no GET Object acl first: COS
//! gives a copy the ACL its request names, so the copy just names the known one again.
//!
//! What is known: the canned ACL (or the default) sent with an upload of this mount once it is
//! handed to the queue, with a copy in place, or set through `user.cos.acl`. Forgotten when
//! the ACL becomes something a canned value cannot restore (grants, a policy); a file rename
//! moves its key's entry (a copy names the mount's ACL), a directory rename forgets them all.
//! Another client's later change of an object's ACL is not seen here: a chmod through this
//! mount then puts back the ACL this mount last gave it (as it puts back the data this mount
//! last wrote); without a memo the ACL is read first, as before.
//!
//! Bounded (LRU); a leaf lock.

use std::sync::Mutex;

/// Keys remembered at most (a forgotten one only costs one GET Object acl again).
const CAPACITY: usize = 100_000;

/// See the module doc.
pub struct AclMemo {
    /// Key → canned ACL the object has (`None`: the bucket's default).
    map: Mutex<lru::LruCache<String, Option<String>>>,
}

impl Default for AclMemo {
    fn default() -> Self {
        let cap = std::num::NonZeroUsize::new(CAPACITY).unwrap_or(std::num::NonZeroUsize::MIN);
        AclMemo {
            map: Mutex::new(lru::LruCache::new(cap)),
        }
    }
}

impl AclMemo {
    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, Option<String>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `key` now has the canned ACL `canned` (`None` or `"default"`: the default ACL).
    pub fn set(&self, key: &str, canned: Option<&str>) {
        let canned = canned.filter(|c| *c != "default").map(str::to_string);
        self.lock().put(key.to_string(), canned);
    }

    /// The canned ACL `key` is known to have: `Some(None)` for the default, `None` if unknown.
    pub fn get(&self, key: &str) -> Option<Option<String>> {
        self.lock().get(key).cloned()
    }

    /// `key`'s ACL is no longer known.
    pub fn forget(&self, key: &str) {
        self.lock().pop(key);
    }

    /// No ACL is known any longer (a directory rename moved keys).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_canned_acls_and_the_default() {
        let m = AclMemo::default();
        assert_eq!(m.get("a"), None);
        m.set("a", None);
        assert_eq!(m.get("a"), Some(None));
        m.set("b", Some("default"));
        assert_eq!(m.get("b"), Some(None));
        m.set("a", Some("public-read"));
        assert_eq!(m.get("a"), Some(Some("public-read".into())));
        m.forget("a");
        assert_eq!(m.get("a"), None);
        m.clear();
        assert_eq!(m.get("b"), None);
    }
}
