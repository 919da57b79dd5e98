//! The inode table: inode numbers ⇄ (parent, name), kinds, kernel lookup counts and forget.
//!
//! Paths are not stored: an inode's relative path is computed by walking parents, so renaming a
//! directory moves its whole subtree by changing one entry. Inode numbers are never reused.
//!
//! Each inode owns one shared [`Node`] (its file state, `node.rs`); handles and the namespace
//! reach the state through the inode, never through a path or key.
//!
//! Locking: one std mutex, a leaf lock (never held with another lock, never across `.await`);
//! see the lock order in `node.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::node::Node;

use super::error::{FsError, FsResult};
use super::path::join;
use super::types::{FileKind, InodeNo, ROOT_INO};

/// One inode.
#[derive(Clone)]
struct Inode {
    /// Parent directory's inode.
    parent: InodeNo,
    /// Name in the parent ("" for the root).
    name: String,
    /// Kind.
    kind: FileKind,
    /// Kernel references (lookup replies not yet forgotten).
    lookups: u64,
    /// True once unlinked/replaced: no longer reachable by name.
    detached: bool,
    /// The shared file state.
    node: Arc<Node>,
}

/// Everything behind the mutex.
struct Inner {
    /// Next inode number to hand out.
    next: InodeNo,
    /// Inodes by number.
    inodes: HashMap<InodeNo, Inode>,
    /// (parent, name) → child inode.
    children: HashMap<(InodeNo, String), InodeNo>,
}

/// The inode table (see module doc).
pub struct Table {
    /// State; leaf lock.
    inner: Mutex<Inner>,
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

impl Table {
    /// A table holding only the root.
    pub fn new() -> Table {
        let mut inodes = HashMap::new();
        inodes.insert(
            ROOT_INO,
            Inode {
                parent: ROOT_INO,
                name: String::new(),
                kind: FileKind::Dir,
                lookups: 1,
                detached: false,
                node: Node::new(FileKind::Dir),
            },
        );
        Table {
            inner: Mutex::new(Inner {
                next: ROOT_INO + 1,
                inodes,
                children: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The relative path of an inode (`""` for the root).
    pub fn path(&self, ino: InodeNo) -> FsResult<String> {
        let g = self.lock();
        let mut parts = Vec::new();
        let mut cur = ino;
        // Bounded walk: a path deeper than this is a table corruption, not a real tree.
        for _ in 0..4096 {
            if cur == ROOT_INO {
                parts.reverse();
                return Ok(parts.join("/"));
            }
            let i = g.inodes.get(&cur).ok_or(FsError::BadHandle)?;
            if i.detached {
                return Err(FsError::NotFound);
            }
            parts.push(i.name.clone());
            cur = i.parent;
        }
        Err(FsError::Io("inode table loop".into()))
    }

    /// Kind of an inode.
    pub fn kind(&self, ino: InodeNo) -> FsResult<FileKind> {
        self.lock()
            .inodes
            .get(&ino)
            .map(|i| i.kind)
            .ok_or(FsError::BadHandle)
    }

    /// The child inode for `name`, if known.
    pub fn child(&self, parent: InodeNo, name: &str) -> Option<InodeNo> {
        self.lock()
            .children
            .get(&(parent, name.to_string()))
            .copied()
    }

    /// Finds or creates the inode of `parent/name` with `kind` and adds one kernel lookup
    /// (`count` = false for inodes reported without a reference, e.g. by readdir).
    /// A known child of another kind is replaced by a fresh inode.
    pub fn upsert(&self, parent: InodeNo, name: &str, kind: FileKind, count: bool) -> InodeNo {
        let mut g = self.lock();
        let k = (parent, name.to_string());
        if let Some(&ino) = g.children.get(&k) {
            if let Some(i) = g.inodes.get_mut(&ino) {
                if i.kind == kind {
                    if count {
                        i.lookups += 1;
                    }
                    return ino;
                }
                i.detached = true;
            }
        }
        let ino = g.next;
        g.next += 1;
        g.inodes.insert(
            ino,
            Inode {
                parent,
                name: name.to_string(),
                kind,
                lookups: u64::from(count),
                detached: false,
                node: Node::new(kind),
            },
        );
        g.children.insert(k, ino);
        ino
    }

    /// Drops `n` kernel references; the inode is removed at zero.
    pub fn forget(&self, ino: InodeNo, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        let mut g = self.lock();
        let gone = match g.inodes.get_mut(&ino) {
            Some(i) => {
                i.lookups = i.lookups.saturating_sub(n);
                // A node still holding local data stays until it is handed off.
                i.lookups == 0 && !i.node.is_staged()
            }
            None => false,
        };
        if gone {
            if let Some(i) = g.inodes.remove(&ino) {
                let k = (i.parent, i.name);
                if g.children.get(&k) == Some(&ino) {
                    g.children.remove(&k);
                }
            }
        }
    }

    /// Unlinks `parent/name` from the name space (the inode stays until forgotten).
    pub fn remove(&self, parent: InodeNo, name: &str) {
        let mut g = self.lock();
        if let Some(ino) = g.children.remove(&(parent, name.to_string())) {
            if let Some(i) = g.inodes.get_mut(&ino) {
                i.detached = true;
            }
        }
    }

    /// Moves `parent/name` to `newparent/newname`, detaching whatever was there.
    pub fn rename(&self, parent: InodeNo, name: &str, newparent: InodeNo, newname: &str) {
        let mut g = self.lock();
        if let Some(old) = g.children.remove(&(newparent, newname.to_string())) {
            if let Some(i) = g.inodes.get_mut(&old) {
                i.detached = true;
            }
        }
        if let Some(ino) = g.children.remove(&(parent, name.to_string())) {
            if let Some(i) = g.inodes.get_mut(&ino) {
                i.parent = newparent;
                i.name = newname.to_string();
            }
            g.children.insert((newparent, newname.to_string()), ino);
        }
    }

    /// The shared state of an inode (also of a detached one: its open handles still use it).
    pub fn node(&self, ino: InodeNo) -> FsResult<Arc<Node>> {
        self.lock()
            .inodes
            .get(&ino)
            .map(|i| i.node.clone())
            .ok_or(FsError::BadHandle)
    }

    /// The node of `parent/name`, if that name is known.
    pub fn child_node(&self, parent: InodeNo, name: &str) -> Option<(InodeNo, Arc<Node>)> {
        let g = self.lock();
        let ino = *g.children.get(&(parent, name.to_string()))?;
        g.inodes.get(&ino).map(|i| (ino, i.node.clone()))
    }

    /// The inode and node a relative path names, walking known children from the root.
    pub fn lookup_path(&self, rel: &str) -> Option<(InodeNo, Arc<Node>)> {
        let g = self.lock();
        let mut cur = ROOT_INO;
        for c in rel.split('/').filter(|c| !c.is_empty()) {
            cur = *g.children.get(&(cur, c.to_string()))?;
        }
        g.inodes.get(&cur).map(|i| (cur, i.node.clone()))
    }

    /// Children of `parent` whose content is staged locally (created or being written here):
    /// the names a listing must show even though COS does not have them yet.
    pub fn staged_children(&self, parent: InodeNo) -> Vec<(String, InodeNo, Arc<Node>)> {
        let g = self.lock();
        g.children
            .iter()
            .filter(|((p, _), _)| *p == parent)
            .filter_map(|((_, name), ino)| {
                let i = g.inodes.get(ino)?;
                i.node
                    .is_staged()
                    .then(|| (name.clone(), *ino, i.node.clone()))
            })
            .collect()
    }

    /// True when any inode under directory `dir` (at any depth) holds staged content.
    pub fn has_staged_under(&self, dir: InodeNo) -> bool {
        let g = self.lock();
        g.inodes.iter().any(|(&ino, i)| {
            if !i.node.is_staged() || i.detached {
                return false;
            }
            let mut cur = ino;
            for _ in 0..4096 {
                let Some(n) = g.inodes.get(&cur) else {
                    return false;
                };
                if n.parent == dir && cur != ROOT_INO {
                    return true;
                }
                if cur == ROOT_INO || n.detached {
                    return false;
                }
                cur = n.parent;
            }
            false
        })
    }

    /// Number of live inodes (root included), for tests and statistics.
    pub fn len(&self) -> usize {
        self.lock().inodes.len()
    }

    /// Always false: the root is always present (for clippy's len_without_is_empty).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The relative path of `parent/name` without touching the table's children.
    pub fn child_path(&self, parent: InodeNo, name: &str) -> FsResult<String> {
        Ok(join(&self.path(parent)?, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_renames_and_forget_frees() {
        let t = Table::new();
        let a = t.upsert(ROOT_INO, "a", FileKind::Dir, true);
        let b = t.upsert(a, "b", FileKind::File, true);
        assert_eq!(t.path(b).unwrap(), "a/b");
        assert_eq!(t.upsert(a, "b", FileKind::File, true), b);
        t.rename(ROOT_INO, "a", ROOT_INO, "z");
        assert_eq!(t.path(b).unwrap(), "z/b");
        t.forget(b, 1);
        assert_eq!(t.len(), 3);
        t.forget(b, 1);
        assert_eq!(t.len(), 2);
        assert_eq!(t.child(a, "b"), None);
        // Kind change replaces the inode.
        let f = t.upsert(ROOT_INO, "k", FileKind::File, true);
        let d = t.upsert(ROOT_INO, "k", FileKind::Dir, true);
        assert_ne!(f, d);
        assert_eq!(t.path(f).unwrap_err(), FsError::NotFound);
        t.remove(ROOT_INO, "k");
        assert_eq!(t.path(d).unwrap_err(), FsError::NotFound);
    }
}
