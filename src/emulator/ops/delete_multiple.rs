//! DELETE Multiple Objects (`POST /?delete`, docs/protocol.md §4.9): order-independent body,
//! Quiet mode (`true`/`false` only), at most 1000 keys, unknown `VersionId`s reported per key.
//! Content-MD5 is checked when sent but not required: both Tencent SDKs always send it, yet
//! nothing in COS's documentation makes success depend on it (docs/protocol.md §4.9).

use hyper::body::Incoming;

use super::{check_md5, read_body, Ctx, EmuError, OpResult, Resp};
use crate::emulator::xml::{self, Writer};

/// Keys to delete, each with its optional VersionId.
type Keys = Vec<(String, Option<String>)>;

/// Parsed `<Delete>` body: keys (with optional VersionId) and Quiet.
fn parse(body: &[u8]) -> Result<(Keys, bool), EmuError> {
    let root = xml::parse(body).map_err(|_| EmuError::code("MalformedXML"))?;
    if root.name != "Delete" {
        return Err(EmuError::code("MalformedXML"));
    }
    let quiet = match root.child_text("Quiet").map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        // xs:boolean as COS documents it: anything else is not a valid request body.
        Some(_) => return Err(EmuError::code("MalformedXML")),
    };
    let mut keys = Vec::new();
    for o in root.all("Object") {
        let key = o
            .child("Key")
            .map(|k| k.text.clone())
            .ok_or_else(|| EmuError::code("MalformedXML"))?;
        keys.push((key, o.child_text("VersionId").map(str::to_string)));
    }
    if keys.is_empty() || keys.len() > 1000 {
        return Err(EmuError::code("MalformedXML"));
    }
    Ok((keys, quiet))
}

/// DELETE Multiple Objects.
pub async fn delete_multiple(ctx: &Ctx, body: Incoming) -> OpResult {
    let body = read_body(body, 2 * 1024 * 1024).await?;
    check_md5(ctx, &body)?;
    let (keys, quiet) = parse(&body)?;
    let mut w = Writer::new();
    w.start("DeleteResult");
    for (key, version) in keys {
        let result = if version.as_deref().is_some_and(|v| v != "null") {
            // Unversioned bucket: that version does not exist; the live object stays.
            Err(("NoSuchVersion", "The specified version does not exist."))
        } else if key.is_empty() {
            // No object has an empty key, so there is nothing to delete: COS reports it as
            // deleted, without an error.
            Ok(())
        } else if key.len() > 850 {
            Err(("KeyTooLong", "Your key is too long."))
        } else if key.contains('\0') {
            // `&#0;` unescapes to NUL; no stored key can contain one.
            Err(("InvalidURI", "Couldn't parse the specified URI."))
        } else {
            ctx.bucket.delete(&key).map(|_| ()).map_err(|_| {
                (
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                )
            })
        };
        match result {
            Ok(()) if quiet => {}
            Ok(()) => {
                w.start("Deleted").elem("Key", &key);
                if let Some(v) = &version {
                    w.elem("VersionId", v);
                }
                w.end();
            }
            Err((code, msg)) => {
                w.start("Error").elem("Key", &key);
                if let Some(v) = &version {
                    w.elem("VersionId", v);
                }
                w.elem("Code", code).elem("Message", msg).end();
            }
        }
    }
    w.end();
    Ok(Resp::xml(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sdk_orders_parse_the_same() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/xml-samples/");
        let a = parse(&std::fs::read(format!("{dir}request-delete-multiple.nodejs.xml")).unwrap())
            .unwrap();
        let b = parse(&std::fs::read(format!("{dir}request-delete-multiple.python.xml")).unwrap())
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.0.len(), 3);
        assert!(!a.1);
        let many: String = (0..1001)
            .map(|i| format!("<Object><Key>k{i}</Key></Object>"))
            .collect();
        assert!(parse(format!("<Delete>{many}</Delete>").as_bytes()).is_err());
    }
}
