//! File-backed buckets of the emulator.
//!
//! Layout under the data directory:
//! `buckets/<bucket>/bucket.json` (CORS rules), `objects/<h2>/<h>.json` (metadata sidecar, `h` =
//! sha256 of the key) next to `objects/<h2>/<h>-<rand>.data` (the body; a fresh name per
//! version so a GET that already opened the old body keeps reading it), `uploads/<id>/upload.json`
//! plus `part-<n>.data`, and `tmp/` for bodies being received. Every file is written to a temp
//! name and renamed into place. An in-memory index (key-ordered `BTreeMap`, i.e. UTF-8 byte
//! order) is rebuilt from the sidecars at start.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One ACL grant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    /// `CanonicalUser` (with an ID) or `Group` (with a URI).
    pub group: bool,
    /// The grantee ID (`qcs::cam::uin/..:uin/..`) or group URI.
    pub grantee: String,
    /// READ, WRITE, FULL_CONTROL, READ_ACP, WRITE_ACP.
    pub permission: String,
}

/// An object's ACL.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Acl {
    /// Canned ACL (`private`, `public-read`, ...); None = `default` (inherit the bucket's).
    pub canned: Option<String>,
    /// Explicit grants (from grant headers or an AccessControlPolicy body).
    pub grants: Vec<Grant>,
}

/// URI of the "everyone" group.
pub const ALL_USERS: &str = "http://cam.qcloud.com/groups/global/AllUsers";

impl Acl {
    /// True for the `default` ACL (inherit the bucket's).
    pub fn is_default(&self) -> bool {
        self.canned.is_none() && self.grants.is_empty()
    }

    /// True when anonymous users may read the object.
    pub fn public_read(&self) -> bool {
        matches!(
            self.canned.as_deref(),
            Some("public-read") | Some("public-read-write")
        ) || self.grants.iter().any(|g| {
            g.group
                && g.grantee == ALL_USERS
                && matches!(g.permission.as_str(), "READ" | "FULL_CONTROL")
        })
    }
}

impl Acl {
    /// True when anonymous users may write objects (a `public-read-write` bucket, or an
    /// AllUsers WRITE / FULL_CONTROL grant).
    pub fn public_write(&self) -> bool {
        self.canned.as_deref() == Some("public-read-write")
            || self.grants.iter().any(|g| {
                g.group
                    && g.grantee == ALL_USERS
                    && matches!(g.permission.as_str(), "WRITE" | "FULL_CONTROL")
            })
    }
}

/// A restore request on an archived object; its state is derived from the clock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Restore {
    /// When the request was made (Unix ms).
    pub requested_ms: i64,
    /// When the restored copy becomes readable (Unix ms).
    pub ready_ms: i64,
    /// Days the copy stays readable after it is ready.
    pub days: u32,
    /// Tier as sent (`Expedited`, `Standard`, `Bulk`).
    pub tier: String,
}

impl Restore {
    /// When the restored copy expires (Unix ms).
    pub fn expiry_ms(&self) -> i64 {
        self.ready_ms + i64::from(self.days) * 86_400_000
    }
}

/// Stored headers of an object.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredHeaders {
    /// `Content-Type` (always set; default `application/octet-stream`).
    pub content_type: String,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Expires` (raw text).
    pub expires: Option<String>,
    /// `x-cos-meta-*` headers, full lower-case names.
    pub meta: BTreeMap<String, String>,
}

/// Everything known about one object (the JSON sidecar).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key.
    pub key: String,
    /// Body size.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// CRC-64/XZ of the body.
    pub crc64: Option<u64>,
    /// Last modification, Unix seconds.
    pub last_modified: i64,
    /// Stored headers and user metadata.
    pub headers: StoredHeaders,
    /// Storage class (`STANDARD`, `ARCHIVE`, ...).
    pub storage_class: String,
    /// The object ACL.
    pub acl: Acl,
    /// Restore request, for archived objects.
    pub restore: Option<Restore>,
    /// File name of the body inside the object's hash directory.
    pub data_file: String,
}

/// One uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Part {
    /// Size in bytes.
    pub size: u64,
    /// MD5 hex of the part.
    pub etag: String,
    /// CRC-64 of the part.
    pub crc64: u64,
    /// Upload time, Unix ms.
    pub last_modified_ms: i64,
    /// File name inside the upload directory.
    pub data_file: String,
}

/// An in-progress multipart upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Upload {
    /// Upload id.
    pub id: String,
    /// Target key.
    pub key: String,
    /// Initiation time, Unix ms.
    pub initiated_ms: i64,
    /// Metadata template for the final object (size/etag/data_file filled at completion).
    pub meta: ObjectMeta,
    /// Parts by number.
    pub parts: BTreeMap<u32, Part>,
}

/// One CORS rule of a bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CorsRule {
    /// Rule id.
    pub id: Option<String>,
    /// AllowedOrigin (may contain one `*`).
    pub origins: Vec<String>,
    /// AllowedMethod (upper case).
    pub methods: Vec<String>,
    /// AllowedHeader (may be `*`).
    pub headers: Vec<String>,
    /// ExposeHeader.
    pub expose: Vec<String>,
    /// MaxAgeSeconds.
    pub max_age: Option<u64>,
}

/// Bucket-level settings (`bucket.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BucketConfig {
    /// CORS rules; None = no configuration.
    pub cors: Option<Vec<CorsRule>>,
    /// Bucket ACL (objects with the `default` ACL inherit it); private when unset.
    #[serde(default)]
    pub acl: Acl,
}

/// The in-memory index of a bucket.
#[derive(Debug, Default)]
pub struct Index {
    /// Objects by key (UTF-8 byte order).
    pub objects: BTreeMap<String, ObjectMeta>,
    /// Multipart uploads by id.
    pub uploads: HashMap<String, Upload>,
    /// Bucket settings.
    pub config: BucketConfig,
}

/// One bucket: its directory and index.
#[derive(Debug)]
pub struct Bucket {
    /// `name-appid`.
    pub name: String,
    /// `buckets/<name>`.
    dir: PathBuf,
    /// Index; a std mutex held only for short, non-async sections (file renames included).
    index: Mutex<Index>,
}

/// All buckets under a data directory.
#[derive(Debug)]
pub struct Storage {
    /// `<data>/buckets`.
    root: PathBuf,
    /// Buckets by name; the lock is never held across `.await`.
    buckets: RwLock<HashMap<String, Arc<Bucket>>>,
}

/// True for `name-appid` with name `[a-z0-9-]` not starting/ending with `-` and a numeric appid.
pub fn valid_bucket_name(b: &str) -> bool {
    let Some((name, appid)) = b.rsplit_once('-') else {
        return false;
    };
    !name.is_empty()
        && !appid.is_empty()
        && appid.bytes().all(|c| c.is_ascii_digit())
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && b.len() <= 50
}

/// A temp file path that removes its file on drop unless [`Bucket::put`] or
/// [`Bucket::put_part`] moved it into place (see [`Bucket::tmp_path`]).
#[derive(Debug)]
pub struct TempPath {
    /// The path.
    path: PathBuf,
    /// Renamed into place: nothing to remove (saves a failing unlink per stored body).
    moved: AtomicBool,
}

impl TempPath {
    /// Moves the file to `to`; the guard then removes nothing.
    fn rename_to(&self, to: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, to)?;
        self.moved.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl std::ops::Deref for TempPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempPath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.moved.load(Ordering::Relaxed) {
            // NotFound is normal too (never created, or already removed).
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `data` to `path` atomically (temp file in the same directory + rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", rand::random::<u32>()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn json_err(e: serde_json::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Storage {
    /// Opens (creating if needed) the data directory and loads every bucket's index.
    pub fn open(data_dir: &Path) -> io::Result<Storage> {
        let root = data_dir.join("buckets");
        std::fs::create_dir_all(&root)?;
        let mut map = HashMap::new();
        for entry in std::fs::read_dir(&root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if entry.file_type()?.is_dir() && valid_bucket_name(&name) {
                map.insert(name.clone(), Arc::new(Bucket::load(&name, entry.path())?));
            }
        }
        Ok(Storage {
            root,
            buckets: RwLock::new(map),
        })
    }

    /// Creates a bucket; returns false when it already existed.
    pub fn create_bucket(&self, name: &str) -> io::Result<bool> {
        let mut map = self.buckets.write().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(name) {
            return Ok(false);
        }
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir)?;
        map.insert(name.to_string(), Arc::new(Bucket::load(name, dir)?));
        Ok(true)
    }

    /// Deletes an (empty) bucket's directory.
    pub fn delete_bucket(&self, name: &str) -> io::Result<()> {
        let mut map = self.buckets.write().unwrap_or_else(|p| p.into_inner());
        map.remove(name);
        std::fs::remove_dir_all(self.root.join(name))
    }

    /// A bucket by name.
    pub fn bucket(&self, name: &str) -> Option<Arc<Bucket>> {
        let map = self.buckets.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }

    /// Names of all buckets, sorted.
    pub fn bucket_names(&self) -> Vec<String> {
        let map = self.buckets.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<String> = map.keys().cloned().collect();
        v.sort();
        v
    }
}

impl Bucket {
    fn load(name: &str, dir: PathBuf) -> io::Result<Bucket> {
        for sub in ["objects", "uploads", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        // Bodies that were still being received when a previous run stopped.
        for f in std::fs::read_dir(dir.join("tmp"))? {
            let _ = std::fs::remove_file(f?.path());
        }
        let mut index = Index::default();
        if let Ok(text) = std::fs::read(dir.join("bucket.json")) {
            index.config = serde_json::from_slice(&text).map_err(json_err)?;
        }
        for shard in std::fs::read_dir(dir.join("objects"))? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            let mut referenced = std::collections::HashSet::new();
            let mut others = Vec::new();
            for f in std::fs::read_dir(shard.path())? {
                let p = f?.path();
                if p.extension().is_some_and(|e| e == "json") {
                    let m: ObjectMeta =
                        serde_json::from_slice(&std::fs::read(&p)?).map_err(json_err)?;
                    referenced.insert(m.data_file.clone());
                    index.objects.insert(m.key.clone(), m);
                } else {
                    others.push(p);
                }
            }
            // Bodies no sidecar names (a run stopped between the two renames of `put`, or an
            // old version whose removal was cut short) and half-written sidecars.
            for p in others {
                let name = p.file_name().map(|n| n.to_string_lossy().to_string());
                if !name.is_some_and(|n| referenced.contains(&n)) {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        for u in std::fs::read_dir(dir.join("uploads"))? {
            let p = u?.path().join("upload.json");
            if let Ok(text) = std::fs::read(&p) {
                let up: Upload = serde_json::from_slice(&text).map_err(json_err)?;
                index.uploads.insert(up.id.clone(), up);
            }
        }
        Ok(Bucket {
            name: name.to_string(),
            dir,
            index: Mutex::new(index),
        })
    }

    /// Locks the index. Callers keep the guard for short synchronous sections only.
    pub fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh temp path for a body being received; the file is removed when the guard drops
    /// (a request abandoned mid-body or mid-complete is dropped by hyper at an `.await`, so
    /// only a destructor can clean up after it). [`Bucket::put`] and [`Bucket::put_part`]
    /// disarm it when they move the file into place.
    pub fn tmp_path(&self) -> TempPath {
        TempPath {
            path: self
                .dir
                .join("tmp")
                .join(format!("{:016x}.part", rand::random::<u64>())),
            moved: AtomicBool::new(false),
        }
    }

    fn obj_dir(&self, key: &str) -> (PathBuf, String) {
        let h = key_hash(key);
        (self.dir.join("objects").join(&h[..2]), h)
    }

    /// Path of an object's body.
    pub fn data_path(&self, meta: &ObjectMeta) -> PathBuf {
        self.obj_dir(&meta.key).0.join(&meta.data_file)
    }

    /// Metadata of one object.
    pub fn get(&self, key: &str) -> Option<ObjectMeta> {
        self.lock().objects.get(key).cloned()
    }

    /// Stores an object whose body is in the temp file `body` (moved into place); `meta.data_file`
    /// is assigned here. Replaces any previous version.
    pub fn put(&self, mut meta: ObjectMeta, body: &TempPath) -> io::Result<ObjectMeta> {
        let (dir, h) = self.obj_dir(&meta.key);
        meta.data_file = format!("{h}-{:016x}.data", rand::random::<u64>());
        let to = dir.join(&meta.data_file);
        // The object's directory exists after the first PUT of its hash prefix: create it only
        // when the move says it is missing (two syscalls less per PUT).
        match body.rename_to(&to) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && !dir.is_dir() => {
                std::fs::create_dir_all(&dir)?;
                body.rename_to(&to)?;
            }
            r => r?,
        }
        let json = serde_json::to_vec_pretty(&meta).map_err(json_err)?;
        let mut idx = self.lock();
        write_atomic(&dir.join(format!("{h}.json")), &json)?;
        let old = idx.objects.insert(meta.key.clone(), meta.clone());
        drop(idx);
        if let Some(old) = old {
            if old.data_file != meta.data_file {
                let _ = std::fs::remove_file(dir.join(old.data_file));
            }
        }
        Ok(meta)
    }

    /// Rewrites an existing object's metadata (ACL, restore, ...) without touching its body.
    pub fn update_meta(&self, meta: &ObjectMeta) -> io::Result<()> {
        let (dir, h) = self.obj_dir(&meta.key);
        let json = serde_json::to_vec_pretty(meta).map_err(json_err)?;
        let mut idx = self.lock();
        write_atomic(&dir.join(format!("{h}.json")), &json)?;
        idx.objects.insert(meta.key.clone(), meta.clone());
        Ok(())
    }

    /// Deletes an object; Ok(false) when it did not exist.
    pub fn delete(&self, key: &str) -> io::Result<bool> {
        let (dir, h) = self.obj_dir(key);
        let mut idx = self.lock();
        let Some(old) = idx.objects.remove(key) else {
            return Ok(false);
        };
        let _ = std::fs::remove_file(dir.join(format!("{h}.json")));
        drop(idx);
        let _ = std::fs::remove_file(dir.join(old.data_file));
        Ok(true)
    }

    /// Changes bucket settings with `f` and saves them.
    pub fn update_config(&self, f: impl FnOnce(&mut BucketConfig)) -> io::Result<()> {
        let mut idx = self.lock();
        let mut config = idx.config.clone();
        f(&mut config);
        let json = serde_json::to_vec_pretty(&config).map_err(json_err)?;
        write_atomic(&self.dir.join("bucket.json"), &json)?;
        idx.config = config;
        Ok(())
    }

    fn upload_dir(&self, id: &str) -> PathBuf {
        self.dir.join("uploads").join(id)
    }

    /// Path of a stored part.
    pub fn part_path(&self, id: &str, part: &Part) -> PathBuf {
        self.upload_dir(id).join(&part.data_file)
    }

    fn save_upload(&self, up: &Upload) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(up).map_err(json_err)?;
        write_atomic(&self.upload_dir(&up.id).join("upload.json"), &json)
    }

    /// Registers a new multipart upload.
    pub fn create_upload(&self, up: Upload) -> io::Result<()> {
        std::fs::create_dir_all(self.upload_dir(&up.id))?;
        let mut idx = self.lock();
        self.save_upload(&up)?;
        idx.uploads.insert(up.id.clone(), up);
        Ok(())
    }

    /// A multipart upload by id.
    pub fn upload(&self, id: &str) -> Option<Upload> {
        self.lock().uploads.get(id).cloned()
    }

    /// Stores part `n` (body in the temp file `body`), replacing an earlier one.
    /// Ok(false) when the upload does not exist.
    pub fn put_part(&self, id: &str, n: u32, mut part: Part, body: &TempPath) -> io::Result<bool> {
        part.data_file = format!("part-{n}-{:08x}.data", rand::random::<u32>());
        let mut idx = self.lock();
        let Some(up) = idx.uploads.get_mut(id) else {
            return Ok(false);
        };
        body.rename_to(&self.upload_dir(id).join(&part.data_file))?;
        let old = up.parts.insert(n, part);
        let snapshot = up.clone();
        self.save_upload(&snapshot)?;
        drop(idx);
        if let Some(old) = old {
            let _ = std::fs::remove_file(self.upload_dir(id).join(old.data_file));
        }
        Ok(true)
    }

    /// Removes an upload and its parts; Ok(false) when it did not exist.
    pub fn remove_upload(&self, id: &str) -> io::Result<bool> {
        let mut idx = self.lock();
        if idx.uploads.remove(id).is_none() {
            return Ok(false);
        }
        drop(idx);
        let _ = std::fs::remove_dir_all(self.upload_dir(id));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: 2,
            etag: "x".into(),
            crc64: None,
            last_modified: 1_700_000_000,
            headers: Default::default(),
            storage_class: "STANDARD".into(),
            acl: Default::default(),
            restore: None,
            data_file: String::new(),
        }
    }

    #[test]
    fn put_makes_the_object_directory_when_missing_and_keeps_moved_bodies() {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::open(root.path()).unwrap();
        storage.create_bucket("b-1250000000").unwrap();
        let b = storage.bucket("b-1250000000").unwrap();
        // Two keys, so one put finds its hash-prefix directory missing; each twice, so the
        // second finds it present (and replaces the first body).
        for key in ["a", "b", "a", "b"] {
            let tmp = b.tmp_path();
            std::fs::write(&tmp, key.repeat(2)).unwrap();
            let stored = b.put(meta(key), &tmp).unwrap();
            drop(tmp);
            let body = std::fs::read(b.data_path(&stored)).unwrap();
            assert_eq!(
                body,
                key.repeat(2).as_bytes(),
                "{key}: body moved into place"
            );
            assert_eq!(b.get(key).unwrap().data_file, stored.data_file);
        }
        // One body file per key: the replaced ones are gone, nothing is left in tmp/.
        for key in ["a", "b"] {
            let (dir, h) = b.obj_dir(key);
            let bodies = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().to_string();
                    n.starts_with(&h) && n.ends_with(".data")
                })
                .count();
            assert_eq!(bodies, 1, "{key}");
        }
        assert_eq!(std::fs::read_dir(b.dir.join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn an_unmoved_temp_body_is_removed_and_a_missing_one_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::open(root.path()).unwrap();
        storage.create_bucket("b-1250000000").unwrap();
        let b = storage.bucket("b-1250000000").unwrap();
        let tmp = b.tmp_path();
        std::fs::write(&tmp, b"xx").unwrap();
        let path = tmp.to_path_buf();
        drop(tmp);
        assert!(!path.exists(), "an abandoned body is removed");
        // A body that was never written: NotFound, and no object.
        let tmp = b.tmp_path();
        let e = b.put(meta("c"), &tmp).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(b.get("c").is_none());
    }
}
