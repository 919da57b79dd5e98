//! The emulator's own multipart PUT rate, for `scripts/bench.sh`: uploads a file as one
//! multipart upload with the crate's COS client (8 MiB parts, 16 in flight), the way a plain
//! client would, and prints MiB/s. Parts are read from the file as they go (bounded memory).
//!
//! `emu_multipart ENDPOINT BUCKET KEY FILE` with `COS_SECRET_ID` / `COS_SECRET_KEY` set.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cosfuse::cos::{CosClient, CosConfig, CosCredentials};
use cosfuse::store::{CompletedPart, ObjectStore, PutOptions};
use futures::stream::{self, StreamExt, TryStreamExt};

/// Part size, as cosfuse's default.
const PART: u64 = 8 << 20;
/// Parts in flight.
const PARALLEL: usize = 16;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, endpoint, bucket, key, file] = &args[..] else {
        return Err("usage: emu_multipart ENDPOINT BUCKET KEY FILE".into());
    };
    let creds = CosCredentials::new(
        std::env::var("COS_SECRET_ID")?,
        std::env::var("COS_SECRET_KEY")?,
    );
    let client = Arc::new(CosClient::new(
        CosConfig::new(bucket.as_str(), "ap-guangzhou", creds).with_endpoint(endpoint),
    )?);
    let f = Arc::new(std::fs::File::open(file)?);
    let size = f.metadata()?.len();
    let t0 = Instant::now();
    let uid = client
        .initiate_multipart(key, &PutOptions::default())
        .await?;
    let nparts = size.div_ceil(PART) as u32;
    let mut parts: Vec<CompletedPart> = stream::iter(1..=nparts)
        .map(|n| {
            let (client, f, key, uid) = (client.clone(), f.clone(), key.clone(), uid.clone());
            async move {
                let start = u64::from(n - 1) * PART;
                let len = PART.min(size - start) as usize;
                let body = tokio::task::spawn_blocking(move || {
                    let mut b = vec![0u8; len];
                    f.read_exact_at(&mut b, start).map(|_| Bytes::from(b))
                })
                .await??;
                let etag = client.upload_part(&key, &uid, n, body.into()).await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(CompletedPart {
                    part_number: n,
                    etag,
                })
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await
        .map_err(|e| e.to_string())?;
    parts.sort_by_key(|p| p.part_number);
    client.complete_multipart(key, &uid, &parts).await?;
    let secs = t0.elapsed().as_secs_f64();
    println!("{:.1}", size as f64 / (1 << 20) as f64 / secs);
    Ok(())
}
