//! Directories this mount created, with the names it put in them: in such a directory a name
//! not in the set is absent without asking COS, so `tar x` and `cp -r` of many small files cost
//! one PUT per file (the kernel's LOOKUP before each create is answered locally). Each name
//! records whether it is a directory, so such a directory's link count (2 + subdirectories) is
//! known without a listing.
//!
//! The set is this mount's own doing: names are added by create, mkdir, symlink, mknod and
//! rename into the directory, and removed by unlink, rmdir and rename out of it. What another
//! client creates inside such a directory shows up in listings (which fill the attribute cache,
//! consulted first); only a lookup of a name no listing here has shown misses it. A directory
//! whose set grows past `MAX_NAMES` stops being tracked (it is then asked about like any other).
//!
//! Locking: one std mutex, a leaf lock.

use std::collections::HashMap;

/// Names in one directory → whether each is a directory.
type Names = HashMap<String, bool>;
use std::sync::Mutex;

/// Names tracked per directory before it is dropped (bounded memory).
const MAX_NAMES: usize = 100_000;

/// See the module doc.
#[derive(Default)]
pub struct OwnDirs {
    /// Directory (relative path) → the names this mount put in it.
    dirs: Mutex<HashMap<String, Names>>,
}

fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

impl OwnDirs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Names>> {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when `rel` is known absent: its directory is one of ours and never got the name.
    pub fn known_absent(&self, rel: &str) -> bool {
        let (dir, name) = split(rel);
        self.lock()
            .get(dir)
            .is_some_and(|names| !names.contains_key(name))
    }

    /// The number of subdirectories of `rel` when it is one of ours.
    pub fn subdirs(&self, rel: &str) -> Option<usize> {
        self.lock()
            .get(rel)
            .map(|names| names.values().filter(|d| **d).count())
    }

    /// `rel` was created as a directory by this mount (empty).
    pub fn made_dir(&self, rel: &str) {
        self.add(rel, true);
        self.lock().insert(rel.to_string(), Names::new());
    }

    /// A file, symlink or special file now exists at `rel` (in one of our directories, or
    /// nothing happens).
    pub fn added(&self, rel: &str) {
        self.add(rel, false);
    }

    fn add(&self, rel: &str, is_dir: bool) {
        let (dir, name) = split(rel);
        let mut g = self.lock();
        let full = match g.get_mut(dir) {
            Some(names) => {
                names.insert(name.to_string(), is_dir);
                names.len() > MAX_NAMES
            }
            None => false,
        };
        if full {
            g.remove(dir);
        }
    }

    /// The name at `rel` is gone (and, if it was one of our directories, the directory with
    /// everything under it).
    pub fn removed(&self, rel: &str) {
        let (dir, name) = split(rel);
        let mut g = self.lock();
        if let Some(names) = g.get_mut(dir) {
            names.remove(name);
        }
        let under = format!("{rel}/");
        g.retain(|d, _| d != rel && !d.starts_with(&under));
    }

    /// `from` became `to` (a file or, `is_dir`, a whole directory tree).
    pub fn renamed(&self, from: &str, to: &str, is_dir: bool) {
        let under = format!("{from}/");
        let moved: Vec<(String, Names)> = {
            let mut g = self.lock();
            let keys: Vec<String> = g
                .keys()
                .filter(|d| *d == from || d.starts_with(&under))
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| {
                    g.remove(&k)
                        .map(|v| (format!("{to}{}", &k[from.len()..]), v))
                })
                .collect()
        };
        self.removed(from);
        self.add(to, is_dir);
        self.lock().extend(moved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_creates_removes_and_renames() {
        let o = OwnDirs::default();
        assert!(!o.known_absent("x/y"), "not our directory: ask COS");
        o.made_dir("d");
        assert!(o.known_absent("d/f"));
        o.added("d/f");
        assert!(!o.known_absent("d/f"));
        o.made_dir("d/sub");
        o.added("d/sub/deep");
        assert_eq!(o.subdirs("d"), Some(1));
        assert_eq!(o.subdirs("x"), None, "not ours: unknown");
        o.renamed("d", "moved", true);
        assert!(!o.known_absent("moved/f"));
        assert!(!o.known_absent("moved/sub/deep"));
        assert!(o.known_absent("moved/sub/other"));
        assert!(!o.known_absent("d/f"), "the old name is no longer ours");
        o.removed("moved/f");
        assert!(o.known_absent("moved/f"));
        o.made_dir("other");
        o.renamed("moved/sub", "other/sub", true);
        assert_eq!((o.subdirs("moved"), o.subdirs("other")), (Some(0), Some(1)));
        o.renamed("other/sub", "moved/sub", true);
        o.removed("moved/sub");
        assert_eq!(o.subdirs("moved"), Some(0));
        assert!(
            !o.known_absent("moved/sub/deep"),
            "gone directory: not tracked"
        );
    }
}
