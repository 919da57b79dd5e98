//! The reference-model test on a real mount: seeded random sequences of file operations
//! (create, write at offsets, append, truncate, ftruncate, rename of files and directories,
//! rename over an existing name, unlink, rmdir, mkdir, symlink, chmod, utimes, several handles
//! open on one file with reads through another handle, fsync, close) are applied both to a
//! cosfuse mount of the emulator and to a plain local directory. After each sequence the two
//! trees must match (names, types, sizes, content, modes, symlink targets); then again after
//! an unmount and a fresh mount with an empty cache (what COS holds), and after a `kill -9` of
//! the daemon and recovery by the next mount.
//!
//! Prints its seed; `COSFUSE_SEED=N` reproduces a run, `COSFUSE_MODEL_SEQUENCES=N` runs more
//! (`scripts/model.sh` runs thousands).

mod common;
use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const BUCKET: &str = "model-1250000000";

/// xorshift64*: a small seeded generator (no crate needed for this).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One entry of a tree snapshot.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    /// A file: mode bits and content.
    File(u32, Vec<u8>),
    /// A directory: mode bits.
    Dir(u32),
    /// A symlink: its target.
    Link(String),
}

fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let md = fs::symlink_metadata(e.path()).unwrap();
            let key = r.to_string_lossy().to_string();
            if md.file_type().is_symlink() {
                let t = fs::read_link(e.path()).unwrap();
                out.insert(key, Node::Link(t.to_string_lossy().to_string()));
            } else if md.is_dir() {
                out.insert(key, Node::Dir(md.mode() & 0o7777));
                stack.push(r);
            } else {
                let data = fs::read(e.path()).unwrap();
                assert_eq!(md.len(), data.len() as u64, "{key}: stat size vs content");
                out.insert(key, Node::File(md.mode() & 0o7777, data));
            }
        }
    }
    out
}

/// Every file and directory path below `root` (relative), files and dirs separately.
fn entries(root: &Path) -> (Vec<String>, Vec<String>) {
    let (mut files, mut dirs) = (Vec::new(), vec![String::new()]);
    for (k, v) in snapshot(root) {
        match v {
            Node::Dir(_) => dirs.push(k),
            _ => files.push(k),
        }
    }
    (files, dirs)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Applies one random operation to both trees; results (ok or errno) must agree.
fn step(rng: &mut Rng, roots: [&Path; 2], log: &mut Vec<String>) {
    let (files, dirs) = entries(roots[1]);
    let names = ["a", "b", "c d", "é"];
    let dir = &dirs[rng.below(dirs.len())];
    let fresh = join(dir, names[rng.below(names.len())]);
    let any_file = if files.is_empty() {
        fresh.clone()
    } else {
        files[rng.below(files.len())].clone()
    };
    let data: Vec<u8> = (0..rng.below(3000)).map(|_| rng.next() as u8).collect();
    let off = rng.below(4000) as u64;
    let len = rng.below(5000) as u64;
    let mode = [0o600, 0o640, 0o644, 0o755][rng.below(4)];
    let op = rng.below(14);
    log.push(format!(
        "op {op} {fresh:?} {any_file:?} off {off} len {len}"
    ));
    let mut results = Vec::new();
    for root in roots {
        let p = |r: &str| root.join(r);
        let r: std::io::Result<()> = (|| {
            match op {
                0 => fs::write(p(&fresh), &data),
                1 => fs::OpenOptions::new()
                    .write(true)
                    .open(p(&any_file))?
                    .write_all_at(&data, off),
                2 => fs::OpenOptions::new()
                    .append(true)
                    .open(p(&any_file))?
                    .write_all(&data),
                3 => fs::OpenOptions::new()
                    .write(true)
                    .open(p(&any_file))?
                    .set_len(len),
                4 => {
                    // Two handles: write through one, read through the other, fsync, close.
                    let mut a = fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(p(&any_file))?;
                    let b = fs::File::open(p(&any_file))?;
                    a.seek(SeekFrom::Start(off))?;
                    a.write_all(&data)?;
                    let mut got = vec![0u8; data.len()];
                    b.read_exact_at(&mut got, off)?;
                    assert_eq!(got, data, "read through another handle");
                    a.sync_all()
                }
                5 => fs::rename(p(&any_file), p(&fresh)),
                // The sequence's root itself is never renamed or removed.
                6 | 8 if dir.is_empty() => Ok(()),
                6 => {
                    let to = join(&dirs[rng.0 as usize % dirs.len()], "moved");
                    fs::rename(p(dir), p(&to))
                }
                7 => fs::remove_file(p(&any_file)),
                8 => fs::remove_dir(p(dir)),
                9 => fs::create_dir(p(&fresh)),
                10 => std::os::unix::fs::symlink(format!("t{off}"), p(&fresh)),
                11 => fs::set_permissions(p(&any_file), fs::Permissions::from_mode(mode)),
                12 => {
                    let f = fs::OpenOptions::new().write(true).open(p(&any_file))?;
                    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(off))
                }
                _ => {
                    let mut f = fs::OpenOptions::new()
                        .create(true)
                        .truncate(true)
                        .write(true)
                        .mode(0o644)
                        .open(p(&fresh))?;
                    f.write_all(&data)?;
                    let mut s = String::new();
                    let _ = fs::File::open(p(&fresh))?.read_to_string(&mut s);
                    Ok(())
                }
            }
        })();
        results.push(r.map_err(|e| e.raw_os_error()));
    }
    assert_eq!(
        results[0],
        results[1],
        "mount vs local disk disagree on {:?}",
        log.last()
    );
}

fn assert_same(mount: &Path, local: &Path, seed: u64, when: &str, log: &[String]) {
    let (a, b) = (snapshot(mount), snapshot(local));
    if a != b {
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        let diff: Vec<String> = keys
            .into_iter()
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| {
                let short = |n: Option<&Node>| match n {
                    Some(Node::File(m, d)) => format!("file {m:o} {} bytes", d.len()),
                    other => format!("{other:?}"),
                };
                format!("{k}: mount {} local {}", short(a.get(k)), short(b.get(k)))
            })
            .collect();
        panic!(
            "seed {seed} {when}: trees differ:\n{}\nops:\n{}",
            diff.join("\n"),
            log.join("\n")
        );
    }
}

#[test]
fn random_sequences_match_a_local_directory_across_remounts_and_kill_9() {
    let seed: u64 = std::env::var("COSFUSE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let sequences: usize = std::env::var("COSFUSE_MODEL_SEQUENCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    println!("model seed: {seed} (rerun with COSFUSE_SEED={seed}), {sequences} sequences");
    let emu = Emulator::start(&[BUCKET], &[]);
    for seq in 0..sequences {
        let seed = seed.wrapping_add(seq as u64);
        let mut rng = Rng(seed | 1);
        let local = tempfile::tempdir().unwrap();
        let root = format!("s{seq}");
        fs::create_dir(local.path().join(&root)).unwrap();
        let m = Mount::new(&emu, BUCKET, "");
        fs::create_dir(m.p(&root)).unwrap();
        let mut log = Vec::new();
        for _ in 0..40 {
            step(&mut rng, [&m.p(&root), &local.path().join(&root)], &mut log);
        }
        let lroot = local.path().join(&root);
        assert_same(&m.p(&root), &lroot, seed, "in the mount", &log);
        // What COS holds: unmount, then a fresh mount with an empty cache.
        m.unmount();
        let m = Mount::new(&emu, BUCKET, "");
        assert_same(&m.p(&root), &lroot, seed, "after a remount", &log);
        // More operations, then kill -9 with whatever is pending; the next mount on the same
        // cache directory recovers it.
        for _ in 0..20 {
            step(&mut rng, [&m.p(&root), &lroot], &mut log);
        }
        assert_same(&m.p(&root), &lroot, seed, "before kill -9", &log);
        let cache = m.kill9();
        let m = Mount::with_cache(&emu, BUCKET, "", cache);
        assert_same(
            &m.p(&root),
            &lroot,
            seed,
            "after kill -9 and recovery",
            &log,
        );
        m.unmount();
        let m = Mount::new(&emu, BUCKET, "");
        assert_same(&m.p(&root), &lroot, seed, "in COS after recovery", &log);
        m.unmount();
    }
}
