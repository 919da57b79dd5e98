//! Response header names spelled as COS spells them (`ETag`, `Content-Length`, `x-cos-*`).
//!
//! hyper stores header names lower-case and can only write them lower-case or Title-Case
//! (`Etag`, `X-Cos-Request-Id`). Official SDKs copy response headers into plain,
//! case-sensitive dicts (the Python SDK's `download_file` reads `object_info['ETag']` and
//! `['Content-Length']`), so a faithful endpoint must send COS's exact spelling. This wrapper
//! sits between hyper (with `title_case_headers(true)`) and the socket and fixes the two
//! differences in place, without changing any length: `Etag` → `ETag`, and `X-Cos-…` names →
//! lower case. Only the response head is touched: a write buffer is rewritten only when it
//! starts with `HTTP/1.1 `, and only up to the blank line that ends the head.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An IO stream whose outgoing response heads get COS header-name spelling.
pub struct CosHeaderCase<T> {
    /// The wrapped connection.
    inner: T,
}

impl<T> CosHeaderCase<T> {
    /// Wraps a connection.
    pub fn new(inner: T) -> Self {
        CosHeaderCase { inner }
    }
}

/// Rewrites header names in a buffer that holds (the start of) a response head; returns None
/// when the buffer is not a response head, so the caller writes it unchanged.
pub fn fix_head(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.starts_with(b"HTTP/1.1 ") {
        return None;
    }
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(buf.len());
    let mut out = buf.to_vec();
    let mut i = 0;
    while i < end {
        // Each header line starts after "\r\n".
        let line_start = match out[i..end].windows(2).position(|w| w == b"\r\n") {
            Some(p) => i + p + 2,
            None => break,
        };
        let colon = out[line_start..end].iter().position(|&b| b == b':');
        if let Some(c) = colon {
            let name = &mut out[line_start..line_start + c];
            if name == b"Etag" {
                name.copy_from_slice(b"ETag");
            } else if name.len() > 6 && name[..6].eq_ignore_ascii_case(b"x-cos-") {
                name.make_ascii_lowercase();
            }
        }
        i = line_start;
    }
    Some(out)
}

impl<T: AsyncRead + Unpin> AsyncRead for CosHeaderCase<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CosHeaderCase<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let inner = &mut self.get_mut().inner;
        match fix_head(buf) {
            // Same length as `buf`, so the count written maps one to one.
            Some(fixed) => Pin::new(inner).poll_write(cx, &fixed),
            None => Pin::new(inner).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    // Vectored writes are left unimplemented on purpose (the default writes the first
    // non-empty buffer), so hyper flattens head and body into one buffer that `fix_head` sees
    // whole.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_etag_and_cos_names_only_in_the_head() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nEtag: \"x\"\r\nX-Cos-Hash-Crc64ecma: 1\r\nLast-Modified: d\r\n\r\nEtag: body\r\n";
        let fixed = fix_head(raw).unwrap();
        assert_eq!(fixed.len(), raw.len());
        let text = String::from_utf8(fixed).unwrap();
        assert!(text.contains("\r\nETag: \"x\""));
        assert!(text.contains("\r\nx-cos-hash-crc64ecma: 1"));
        assert!(text.contains("\r\nContent-Length: 5"));
        assert!(text.ends_with("\r\n\r\nEtag: body\r\n"), "body untouched: {text}");
    }

    #[test]
    fn leaves_non_head_buffers_alone() {
        assert!(fix_head(b"Etag: not a head").is_none());
    }
}
