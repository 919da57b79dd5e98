//! Staging files carry the key they were made for in an extended attribute
//! (`user.cosfuse.key`), so a file a crashed daemon still had open (never handed to the upload
//! queue, so not in the journal) is recovered under a name that says which file it was. Where
//! the cache directory's file system has no user xattrs the label is simply absent.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// The attribute name.
const NAME: &[u8] = b"user.cosfuse.key\0";

/// Labels an open staging file with `key` (best effort).
pub fn set(file: &std::fs::File, key: &str) {
    // SAFETY: the descriptor is open for the call; the name is NUL-terminated and the value
    // pointer/length describe `key`'s bytes, which outlive the call.
    let rc = unsafe {
        libc::fsetxattr(
            file.as_raw_fd(),
            NAME.as_ptr().cast(),
            key.as_ptr().cast(),
            key.len(),
            0,
        )
    };
    if rc != 0 {
        log::debug!(
            "staging label for {key}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The key a staging file was labelled with, if any.
pub fn get(path: &Path) -> Option<String> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = vec![0u8; 2048];
    // SAFETY: both strings are NUL-terminated; `buf` is writable for its whole length.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            NAME.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    buf.truncate(n);
    String::from_utf8(buf).ok().filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_label_reads_back_where_xattrs_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let f = std::fs::File::create(&path).unwrap();
        assert_eq!(super::get(&path), None, "no label yet");
        super::set(&f, "dir/file name");
        assert_eq!(super::get(&path).as_deref(), Some("dir/file name"));
    }
}
