//! Request bodies: small bodies read into memory, object and part bodies streamed into a temp
//! file while MD5 / CRC-64 (and, for SigV4, SHA-256) are computed, and the digest checks
//! (`Content-MD5`, `x-cos-hash-crc64ecma`, `x-amz-content-sha256`).

use std::path::Path;

use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;

use super::{Ctx, EmuError, MAX_PUT};
use crate::emulator::auth::{Identity, Scheme};

/// Reads a whole (small) request body, refusing more than `limit` bytes.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, EmuError> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(EmuError::code("IncompleteBody")),
    }
}

/// Checks `Content-MD5` (when present) against a body in memory.
pub fn check_md5(ctx: &Ctx, body: &[u8]) -> Result<(), EmuError> {
    check_md5_digest(ctx, &Md5::digest(body))?;
    match payload_sha256(ctx) {
        Some(want) if hex::encode(sha2::Sha256::digest(body)) != want => Err(sha_mismatch()),
        _ => Ok(()),
    }
}

/// The `x-amz-content-sha256` a SigV4 request signed, when it is a real hash (not
/// `UNSIGNED-PAYLOAD`): the body must match it.
fn payload_sha256(ctx: &Ctx) -> Option<String> {
    let sigv4 = matches!(
        ctx.identity,
        Identity::Signed {
            scheme: Scheme::SigV4,
            ..
        }
    );
    let v = ctx
        .header("x-cos-content-sha256")?
        .trim()
        .to_ascii_lowercase();
    (sigv4 && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then_some(v)
}

fn sha_mismatch() -> EmuError {
    EmuError::new(
        400,
        "XAmzContentSHA256Mismatch",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )
}

fn check_md5_digest(ctx: &Ctx, digest: &[u8]) -> Result<(), EmuError> {
    let Some(v) = ctx.header("content-md5") else {
        return Ok(());
    };
    let given = base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .ok()
        .filter(|b| b.len() == 16)
        .ok_or_else(|| EmuError::code("InvalidDigest"))?;
    if given != digest {
        return Err(EmuError::code("BadDigest"));
    }
    Ok(())
}

/// What was received into a temp file.
pub struct Received {
    /// Byte count.
    pub size: u64,
    /// MD5 hex.
    pub md5: String,
    /// CRC-64/XZ.
    pub crc64: u64,
}

/// Streams the request body into `path`, hashing as it goes; verifies Content-MD5 and
/// `x-cos-hash-crc64ecma` when sent. With `drop_mid_body`, stops half-way and asks the server to
/// abort the connection (fault injection).
pub async fn receive(
    ctx: &Ctx,
    mut body: Incoming,
    path: &Path,
    drop_mid_body: bool,
) -> Result<Received, EmuError> {
    let declared: Option<u64> = ctx
        .header("content-length")
        .and_then(|v| v.trim().parse().ok());
    if declared.is_some_and(|n| n > MAX_PUT) {
        return Err(EmuError::code("EntityTooLarge"));
    }
    let mut file = tokio::fs::File::create(path).await.map_err(EmuError::io)?;
    let mut md5 = Md5::new();
    let mut crc = crc64fast::Digest::new();
    let want_sha = payload_sha256(ctx);
    let mut sha = sha2::Sha256::new();
    let mut size = 0u64;
    let cut = declared.map(|n| n / 2);
    let result: Result<(), EmuError> = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| EmuError::code("IncompleteBody"))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            size += data.len() as u64;
            if size > MAX_PUT {
                return Err(EmuError::code("EntityTooLarge"));
            }
            md5.update(&data);
            crc.write(&data);
            if want_sha.is_some() {
                sha.update(&data);
            }
            file.write_all(&data).await.map_err(EmuError::io)?;
            if drop_mid_body && cut.is_some_and(|c| size >= c) {
                let mut e = EmuError::code("IncompleteBody");
                e.drop_connection = true;
                return Err(e);
            }
        }
        file.flush().await.map_err(EmuError::io)?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(path).await;
        return Err(e);
    }
    let digest = md5.finalize();
    let crc64 = crc.sum64();
    if want_sha.is_some_and(|w| hex::encode(sha.finalize()) != w) {
        let _ = tokio::fs::remove_file(path).await;
        return Err(sha_mismatch());
    }
    let checks =
        check_md5_digest(ctx, &digest).and_then(|_| match ctx.header("x-cos-hash-crc64ecma") {
            Some(v) if v.trim().parse::<u64>().ok() != Some(crc64) => Err(EmuError::new(
                400,
                "BadDigest",
                "The x-cos-hash-crc64ecma you specified did not match what we received.",
            )),
            _ => Ok(()),
        });
    if let Err(e) = checks {
        let _ = tokio::fs::remove_file(path).await;
        return Err(e);
    }
    Ok(Received {
        size,
        md5: hex::encode(digest),
        crc64,
    })
}
