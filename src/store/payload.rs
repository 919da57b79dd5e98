//! The body of a PUT Object or an Upload Part: bytes already in memory, or a range of a local
//! file (a staging file) that is read in small chunks while it is sent.
//!
//! Why a file range: a part is 8 MiB and several are in flight per file, and a file just under
//! the multipart threshold is one 16 MiB PUT; reading each whole into memory before sending made
//! the upload buffers the largest part of the daemon's memory. Sent from the file, a body costs
//! one chunk at a time, and what was sent is hashed as it goes (`SentDigest`) so the caller can
//! still check COS's CRC64 against exactly those bytes.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::Stream;

use super::bufpool::UPLOAD_CHUNKS;

/// Bytes read from the file per chunk while sending.
pub const CHUNK: u64 = 256 * 1024;

/// Reads of at most this many bytes run on the calling thread: a small staging file was just
/// written (it is in the page cache), and a hop to the blocking pool costs more than the read.
const INLINE_READ: u64 = 64 * 1024;

/// A byte range of a local file.
#[derive(Debug, Clone)]
pub struct FileRange {
    /// The open file (read with positional reads; the cursor is never used).
    pub file: Arc<File>,
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

/// What a PUT or an Upload Part sends.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A file range, read while sending.
    File(FileRange),
}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Payload {
        Payload::Bytes(b)
    }
}

impl Payload {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Payload::Bytes(b) => b.len() as u64,
            Payload::File(r) => r.len,
        }
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body in memory (a small PUT, or a store without streaming such as the
    /// in-memory one); a range of a file is read off the async threads unless it is small.
    pub async fn into_bytes(self) -> std::io::Result<Bytes> {
        let r = match self {
            Payload::Bytes(b) => return Ok(b),
            Payload::File(r) => r,
        };
        if r.len <= INLINE_READ {
            return r.read(r.start, r.len);
        }
        r.read_async(r.start, r.len).await
    }
}

/// CRC-64 (COS's `x-cos-hash-crc64ecma`) of the bytes a stream has handed out so far. A new
/// stream (a retry) starts it again, so after a request it covers the attempt that answered.
#[derive(Clone, Default)]
pub struct SentDigest(Arc<Mutex<crc64fast::Digest>>);

impl SentDigest {
    /// The CRC-64 of what was sent.
    pub fn crc64(&self) -> u64 {
        self.0.lock().map(|d| d.sum64()).unwrap_or(0)
    }

    /// Hashes bytes sent from memory (a body that is not streamed).
    pub fn record(&self, b: &[u8]) {
        self.restart();
        self.add(b);
    }

    fn restart(&self) {
        if let Ok(mut d) = self.0.lock() {
            *d = crc64fast::Digest::new();
        }
    }

    fn add(&self, b: &[u8]) {
        if let Ok(mut d) = self.0.lock() {
            d.write(b);
        }
    }
}

impl std::fmt::Debug for SentDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SentDigest({:x})", self.crc64())
    }
}

impl FileRange {
    /// `len` bytes at `at` (blocking), in a buffer of the upload chunk pool when they fit in
    /// one (a streamed chunk, a small PUT), else in a buffer of their own.
    fn read(&self, at: u64, len: u64) -> std::io::Result<Bytes> {
        let mut buf = UPLOAD_CHUNKS.take(usize::try_from(len).map_err(std::io::Error::other)?);
        self.file.read_exact_at(buf.as_mut_slice(), at)?;
        Ok(buf.freeze())
    }

    /// `len` bytes at `at` if all are in the page cache: `preadv2` with `RWF_NOWAIT` reads
    /// without waiting for the disk. None otherwise (not cached, end of file, an error, a
    /// kernel without it): the caller reads on the blocking pool, which reports any error.
    ///
    /// Why: a part's chunks are read from a staging file just written, so nearly always from
    /// the page cache, and a hop to the blocking pool per 256 KiB chunk was ~10 % of the
    /// daemon's CPU time in a large upload; a read that must wait for the disk still goes
    /// there, so a runtime worker never waits for a disk.
    fn read_cached(&self, at: u64, len: u64) -> Option<Bytes> {
        use std::os::fd::AsRawFd;
        let n = usize::try_from(len).ok()?;
        let mut buf = UPLOAD_CHUNKS.take(n);
        let mut done = 0;
        // Bounded: each turn reads at least one byte more or leaves.
        while done < n {
            let rest = &mut buf.as_mut_slice()[done..];
            let iov = libc::iovec {
                iov_base: rest.as_mut_ptr().cast(),
                iov_len: rest.len(),
            };
            let off = libc::off_t::try_from(at.checked_add(done as u64)?).ok()?;
            // SAFETY: `iov` describes `rest`, which is valid for writes of its length for the
            // whole call, and the descriptor is open while `self.file` lives.
            let r = unsafe { libc::preadv2(self.file.as_raw_fd(), &iov, 1, off, libc::RWF_NOWAIT) };
            if r <= 0 {
                return None;
            }
            done += usize::try_from(r).ok()?;
        }
        Some(buf.freeze())
    }

    /// `len` bytes at `at`: from the page cache on the spot, else on the blocking pool.
    async fn read_async(&self, at: u64, len: u64) -> std::io::Result<Bytes> {
        if let Some(b) = self.read_cached(at, len) {
            return Ok(b);
        }
        let r = self.clone();
        tokio::task::spawn_blocking(move || r.read(at, len))
            .await
            .map_err(std::io::Error::other)?
    }

    /// The range as a stream of chunks of at most [`CHUNK`] bytes, each read when the sender
    /// asks for it (so at most one chunk per stream is in memory at a time, plus what the
    /// connection buffers), hashed into `sent`. A file shorter than the range ends the stream
    /// with `UnexpectedEof`, which fails the request rather than sending fewer bytes.
    pub fn stream(
        &self,
        sent: SentDigest,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        sent.restart();
        let (range, end) = (self.clone(), self.start + self.len);
        futures::stream::try_unfold(self.start, move |at| {
            let (range, sent) = (range.clone(), sent.clone());
            async move {
                if at >= end {
                    return Ok(None);
                }
                let n = (end - at).min(CHUNK);
                let chunk = range.read_async(at, n).await?;
                sent.add(&chunk);
                Ok(Some((chunk, at + n)))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use std::io::Write;

    fn file_with(data: &[u8]) -> Arc<File> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        Arc::new(f)
    }

    #[tokio::test]
    async fn a_range_streams_in_chunks_and_hashes_what_it_sent() {
        let data: Vec<u8> = (0..(CHUNK as usize * 2 + 1000)).map(|i| i as u8).collect();
        let r = FileRange {
            file: file_with(&data),
            start: 100,
            len: CHUNK + 5000,
        };
        let sent = SentDigest::default();
        let chunks: Vec<Bytes> = r.stream(sent.clone()).try_collect().await.unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].len() as u64, CHUNK);
        let all: Vec<u8> = chunks.concat();
        assert_eq!(all, &data[100..100 + CHUNK as usize + 5000]);
        let mut d = crc64fast::Digest::new();
        d.write(&all);
        assert_eq!(sent.crc64(), d.sum64());
        // A second stream (a retry) hashes only its own bytes.
        let again: Vec<Bytes> = r.stream(sent.clone()).try_collect().await.unwrap();
        assert_eq!(again.concat(), all);
        assert_eq!(sent.crc64(), d.sum64());
        let whole = Payload::File(r).into_bytes().await.unwrap();
        assert_eq!(&whole[..], &all[..]);
    }

    #[test]
    fn a_cached_read_gives_the_bytes_or_leaves_the_read_to_the_blocking_path() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let r = FileRange {
            file: file_with(&data),
            start: 0,
            len: data.len() as u64,
        };
        // Just written, so in the page cache: read whole, or (a kernel or file system without
        // RWF_NOWAIT) not at all, never in part.
        if let Some(b) = r.read_cached(1000, 200_000) {
            assert_eq!(&b[..], &data[1000..201_000]);
        }
        // Past the end there is nothing to read: the blocking path reports the short file.
        assert!(r.read_cached(299_000, 5000).is_none());
        assert!(r.read_cached(400_000, 10).is_none());
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_range_fails_the_stream() {
        let r = FileRange {
            file: file_with(b"short"),
            start: 0,
            len: 10,
        };
        let e = r
            .stream(SentDigest::default())
            .try_collect::<Vec<Bytes>>()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
