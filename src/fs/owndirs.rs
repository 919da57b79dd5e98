//! Directories this mount created, with the names it put in them: in such a directory a name
//! not in the set is absent without asking COS, so `tar x` and `cp -r` of many small files cost
//! one PUT per file (the kernel's LOOKUP before each create is answered locally).
//!
//! The set is this mount's own doing: names are added by create, mkdir, symlink, mknod and
//! rename into the directory, and removed by unlink, rmdir and rename out of it. What another
//! client creates inside such a directory shows up in listings (which fill the attribute cache,
//! consulted first); only a lookup of a name no listing here has shown misses it. A directory
//! whose set grows past `MAX_NAMES` stops being tracked (it is then asked about like any other).
//!
//! Locking: one std mutex, a leaf lock.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Names tracked per directory before it is dropped (bounded memory).
const MAX_NAMES: usize = 100_000;

/// See the module doc.
#[derive(Default)]
pub struct OwnDirs {
    /// Directory (relative path) → the names this mount put in it.
    dirs: Mutex<HashMap<String, HashSet<String>>>,
}

fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

impl OwnDirs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when `rel` is known absent: its directory is one of ours and never got the name.
    pub fn known_absent(&self, rel: &str) -> bool {
        let (dir, name) = split(rel);
        self.lock()
            .get(dir)
            .is_some_and(|names| !names.contains(name))
    }

    /// `rel` was created as a directory by this mount (empty).
    pub fn made_dir(&self, rel: &str) {
        self.added(rel);
        self.lock().insert(rel.to_string(), HashSet::new());
    }

    /// A name now exists at `rel` (in one of our directories, or nothing happens).
    pub fn added(&self, rel: &str) {
        let (dir, name) = split(rel);
        let mut g = self.lock();
        let full = match g.get_mut(dir) {
            Some(names) => {
                names.insert(name.to_string());
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

    /// `from` became `to` (a file or a whole directory tree).
    pub fn renamed(&self, from: &str, to: &str) {
        let under = format!("{from}/");
        let moved: Vec<(String, HashSet<String>)> = {
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
        self.added(to);
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
        o.renamed("d", "moved");
        assert!(!o.known_absent("moved/f"));
        assert!(!o.known_absent("moved/sub/deep"));
        assert!(o.known_absent("moved/sub/other"));
        assert!(!o.known_absent("d/f"), "the old name is no longer ours");
        o.removed("moved/f");
        assert!(o.known_absent("moved/f"));
        o.removed("moved/sub");
        assert!(
            !o.known_absent("moved/sub/deep"),
            "gone directory: not tracked"
        );
    }
}
