//! POST Object restore (`POST /key?restore`, docs/protocol.md §4.10): 202 when a restore starts,
//! 409 RestoreAlreadyInProgress while one runs, 200 with a re-set expiry when a restored copy
//! exists, 405 RestoreNonArchiveObject for other classes. Completion is derived from the clock
//! and the configured restore delay, so no background task is needed.

use hyper::body::Incoming;

use super::{check_md5, need_object, read_body, Ctx, EmuError, OpResult, Resp};
use crate::emulator::storage::Restore;
use crate::emulator::xml;

/// POST Object restore.
pub async fn restore(ctx: &Ctx, body: Incoming) -> OpResult {
    let body = read_body(body, 64 * 1024).await?;
    check_md5(ctx, &body)?;
    let root = xml::parse(&body).map_err(|_| EmuError::code("MalformedXML"))?;
    if root.name != "RestoreRequest" {
        return Err(EmuError::code("MalformedXML"));
    }
    let days: u32 = root
        .child_text("Days")
        .and_then(|d| d.parse().ok())
        .filter(|d| *d >= 1)
        .ok_or_else(|| EmuError::code("MalformedXML"))?;
    let tier = root
        .child("CASJobParameters")
        .and_then(|c| c.child_text("Tier"))
        .unwrap_or("Standard")
        .to_string();
    if !matches!(tier.as_str(), "Expedited" | "Standard" | "Bulk") {
        return Err(EmuError::code("MalformedXML"));
    }
    let mut meta = need_object(ctx)?;
    if !matches!(meta.storage_class.as_str(), "ARCHIVE" | "DEEP_ARCHIVE") {
        return Err(EmuError::new(
            405,
            "RestoreNonArchiveObject",
            "Only archive objects can be restored.",
        ));
    }
    if meta.storage_class == "DEEP_ARCHIVE" && tier == "Expedited" {
        // Deep archive offers only the Standard and Bulk tiers.
        return Err(EmuError::invalid_argument(
            "DEEP_ARCHIVE objects can be restored with the Standard or Bulk tier only",
        ));
    }
    let now_ms = ctx.state.now_ms();
    let status = match &meta.restore {
        Some(r) if now_ms < r.ready_ms => {
            return Err(EmuError::new(
                409,
                "RestoreAlreadyInProgress",
                "Object restore is already in progress",
            ))
        }
        Some(r) if now_ms < r.expiry_ms() => {
            // A restored copy exists: re-set its expiry from now.
            let mut r = r.clone();
            r.ready_ms = now_ms;
            r.days = days;
            meta.restore = Some(r);
            200
        }
        _ => {
            let delay = ctx.state.restore_delay().as_millis() as i64;
            meta.restore = Some(Restore {
                requested_ms: now_ms,
                ready_ms: now_ms + delay,
                days,
                tier,
            });
            202
        }
    };
    ctx.bucket.update_meta(&meta).map_err(EmuError::io)?;
    Ok(Resp::empty(status))
}
