//! Reused buffers for the large copies on the data path: a FUSE write's bytes on their way to
//! the staging file, the chunks of an upload read from it, and the bodies of large GETs.
//!
//! Why: each of those copies went into a freshly allocated buffer, and a fresh buffer of
//! 256 KiB or more is new memory from the kernel: page faults and zeroing on every chunk. That
//! was about a fifth of the daemon's CPU time while writing a large file (2 cores, where the
//! same CPUs also run the writer and the kernel's side of FUSE). A pool keeps a few buffers of
//! one size; a buffer goes back when its last user drops it (`Bytes` made with `freeze` too).
//!
//! Bounds: a pool keeps at most `keep` buffers of `size` bytes; more in use at once are plain
//! allocations, dropped normally.

use std::sync::Mutex;

use bytes::Bytes;

/// Buffers of one size, reused.
pub struct BufPool {
    /// Size of each buffer.
    size: usize,
    /// How many free buffers are kept.
    keep: usize,
    /// The free buffers (each `size` bytes long, contents stale). Leaf lock.
    free: Mutex<Vec<Vec<u8>>>,
}

/// A buffer taken from a pool: its first `len` bytes are in use.
pub struct PoolBuf {
    /// The whole buffer (`size` bytes).
    buf: Vec<u8>,
    /// Bytes in use.
    len: usize,
    /// Where it goes back.
    pool: &'static BufPool,
}

/// FUSE writes on their way to a staging file (the kernel sends at most 1 MiB per write, and
/// a writer has one in flight).
pub static WRITES: BufPool = BufPool::new(1 << 20, 2);

/// Staging-file reads for uploads: the chunks of a streamed body (`payload::CHUNK`; 4 parts in
/// flight per file, each with a chunk or two queued) and small PUT bodies that fit in one.
pub static UPLOAD_CHUNKS: BufPool = BufPool::new(super::payload::CHUNK as usize, 8);

/// Bodies of large GET answers (`cos::client`): read-ahead parts (2 MiB) and background fill
/// ranges (4 MiB), up to 8 in flight with their slices held by readers and the read cache's
/// writer. Smaller bodies are not pooled (a random read's block, XML).
pub static GET_BODIES: BufPool = BufPool::new(4 << 20, 8);

/// Bodies below this are read the ordinary way (small allocations come from the heap, not
/// from fresh pages).
pub const GET_BODY_POOLED_FROM: usize = 256 << 10;

impl BufPool {
    /// A pool of buffers of `size` bytes that keeps at most `keep` free ones.
    pub const fn new(size: usize, keep: usize) -> BufPool {
        BufPool {
            size,
            keep,
            free: Mutex::new(Vec::new()),
        }
    }

    /// A buffer of `len` bytes (at most the pool's size; larger ones are not pooled). Its
    /// contents are unspecified: the caller overwrites them.
    pub fn take(&'static self, len: usize) -> PoolBuf {
        let buf = if len <= self.size {
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            free.pop().unwrap_or_else(|| vec![0; self.size])
        } else {
            vec![0; len]
        };
        PoolBuf {
            buf,
            len,
            pool: self,
        }
    }

    /// A copy of `data`: in a pooled buffer when it is large (over an eighth of the pool's
    /// size), else in a buffer of its own size (small copies are cheap, and must not each
    /// hold a whole pooled buffer).
    pub fn copy_of(&'static self, data: &[u8]) -> PoolBuf {
        if data.len() <= self.size / 8 {
            return PoolBuf {
                buf: data.to_vec(),
                len: data.len(),
                pool: self,
            };
        }
        let mut b = self.take(data.len());
        b.as_mut_slice().copy_from_slice(data);
        b
    }

    /// The size of each buffer: larger requests are not pooled.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Buffers kept free now (for tests).
    pub fn free_count(&self) -> usize {
        self.free.lock().map(|f| f.len()).unwrap_or(0)
    }
}

impl PoolBuf {
    /// The bytes in use, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// As `Bytes`, without a copy; the buffer returns to its pool when the last clone drops.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for PoolBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::ops::Deref for PoolBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_ref()
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        // A buffer of another size (too large, or a small copy) is not the pool's.
        if self.buf.len() != self.pool.size {
            return;
        }
        let mut free = self.pool.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < self.pool.keep {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static POOL: BufPool = BufPool::new(16, 2);
    static BIG: BufPool = BufPool::new(8, 1);

    #[test]
    fn buffers_come_back_when_the_last_user_drops_them_and_at_most_keep_are_kept() {
        let mut a = POOL.take(10);
        a.as_mut_slice().copy_from_slice(b"0123456789");
        let a = a.freeze();
        let a2 = a.slice(2..4);
        assert_eq!(&a[..], b"0123456789");
        drop(a);
        assert_eq!(POOL.free_count(), 0, "a slice still uses it");
        assert_eq!(&a2[..], b"23");
        drop(a2);
        assert_eq!(POOL.free_count(), 1);
        let (b, c, d) = (POOL.take(16), POOL.take(1), POOL.take(5));
        assert_eq!(POOL.free_count(), 0);
        assert_eq!((b.len(), c.len(), d.len()), (16, 1, 5));
        drop((b, c, d));
        assert_eq!(POOL.free_count(), 2, "three came back, two are kept");
    }

    #[test]
    fn a_buffer_larger_than_the_pool_size_or_a_small_copy_is_not_pooled() {
        let e = BIG.take(20);
        assert_eq!(e.len(), 20);
        drop(e);
        assert_eq!(BIG.free_count(), 0);
        let small = BIG.copy_of(b"x");
        assert_eq!(&small[..], b"x");
        drop(small);
        assert_eq!(BIG.free_count(), 0, "a small copy is not pooled");
        let big = BIG.copy_of(b"abcdefg");
        assert_eq!(&big[..], b"abcdefg");
        drop(big);
        assert_eq!(BIG.free_count(), 1);
    }
}
