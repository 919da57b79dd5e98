//! POST Object, the browser form upload (docs/protocol.md §4.3, §1.7): `multipart/form-data`
//! parsing, the policy signature and its conditions, `${filename}`, `success_action_status` and
//! `success_action_redirect`.

use std::sync::Arc;

use base64::Engine;
use hyper::body::Incoming;
use md5::{Digest, Md5};

use super::object::{new_meta, storage_class};
use super::{acl_from_headers, check_key, read_body, Ctx, EmuError, OpResult, Received, Resp};
use crate::cos::sign;
use crate::emulator::auth::Identity;
use crate::emulator::xml::Writer;

/// Largest form body accepted in memory.
const MAX_FORM: usize = 512 * 1024 * 1024;

/// A parsed form: fields in order, then the file.
struct Form {
    /// Fields before the file, in order.
    fields: Vec<(String, String)>,
    /// The file part's `filename` (for `${filename}`).
    filename: String,
    /// The file's bytes.
    file: Vec<u8>,
}

fn malformed(msg: &str) -> EmuError {
    EmuError::new(400, "MalformedPOSTRequest", msg)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}

fn disposition_param(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn parse_form(content_type: &str, body: &[u8]) -> Result<Form, EmuError> {
    let boundary =
        disposition_param(content_type, "boundary").ok_or_else(|| malformed("no boundary"))?;
    let delim = format!("--{boundary}");
    let mut pos =
        find(body, delim.as_bytes(), 0).ok_or_else(|| malformed("no parts"))? + delim.len();
    let mut form = Form {
        fields: Vec::new(),
        filename: String::new(),
        file: Vec::new(),
    };
    let mut files = 0;
    loop {
        if body[pos..].starts_with(b"--") {
            break;
        }
        let head_start = pos + 2;
        let head_end = find(body, b"\r\n\r\n", head_start).ok_or_else(|| malformed("bad part"))?;
        let head = String::from_utf8_lossy(&body[head_start..head_end]).to_string();
        let next = find(body, format!("\r\n{delim}").as_bytes(), head_end + 4)
            .ok_or_else(|| malformed("unterminated part"))?;
        let data = &body[head_end + 4..next];
        let disp = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .unwrap_or("");
        let name = disposition_param(disp, "name").unwrap_or_default();
        if name == "file" {
            files += 1;
            form.filename = disposition_param(disp, "filename").unwrap_or_default();
            form.file = data.to_vec();
        } else if files == 0 {
            form.fields
                .push((name, String::from_utf8_lossy(data).to_string()));
        }
        pos = next + 2 + delim.len();
        if pos > body.len() {
            return Err(malformed("truncated"));
        }
    }
    if files != 1 {
        return Err(EmuError::new(
            400,
            "IncorrectNumberOfFilesInPostRequest",
            "POST requires exactly one file upload per request.",
        ));
    }
    Ok(form)
}

fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn bad_policy(msg: &str) -> EmuError {
    EmuError::new(400, "InvalidPolicyDocument", msg)
}

/// The field names the policy's conditions constrain (lower case, without `$`).
fn condition_names(policy: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for c in policy["conditions"].as_array().into_iter().flatten() {
        if let Some(obj) = c.as_object() {
            out.extend(obj.keys().map(|k| k.to_ascii_lowercase()));
        } else if let Some(name) = c.as_array().and_then(|a| a.get(1)).and_then(|n| n.as_str()) {
            out.push(name.trim_start_matches('$').to_ascii_lowercase());
        }
    }
    out
}

/// The form's `q-key-time` (`start;end`, Unix seconds) must contain the present, with the
/// same 15-minute tolerance for a fast client clock as header signatures (§1.6).
fn check_key_time(key_time: &str, now: i64) -> Result<(), EmuError> {
    let window = key_time
        .split_once(';')
        .and_then(|(a, b)| Some((a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?)));
    let Some((start, end)) = window else {
        return Err(EmuError::new(
            403,
            "AccessDenied",
            "q-key-time is malformed",
        ));
    };
    if now > end {
        return Err(EmuError::new(403, "AccessDenied", "Request has expired"));
    }
    if start > now + 900 {
        return Err(EmuError::new(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the server's time is too large.",
        ));
    }
    Ok(())
}

/// Checks the policy signature and every condition; Ok(false) when the form carries no policy.
fn check_policy(ctx: &Ctx, form: &Form, key: &str) -> Result<bool, EmuError> {
    let Some(policy_b64) = field(form, "policy") else {
        return Ok(false);
    };
    let json = base64::engine::general_purpose::STANDARD
        .decode(policy_b64.trim())
        .map_err(|_| bad_policy("policy is not base64"))?;
    let text = String::from_utf8(json).map_err(|_| bad_policy("policy is not UTF-8"))?;
    if field(form, "q-sign-algorithm") != Some("sha1") {
        return Err(EmuError::code("AccessDenied"));
    }
    let ak = field(form, "q-ak").unwrap_or("");
    let cred = ctx.state.credential(ak).ok_or_else(|| {
        EmuError::new(
            403,
            "InvalidAccessKeyId",
            "The access key Id format you provided is invalid.",
        )
    })?;
    let key_time = field(form, "q-key-time").unwrap_or("");
    let expected = sign::post_policy_signature(&cred.secret_key, key_time, &text);
    let given = field(form, "q-signature").unwrap_or("");
    if !sign::constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        return Err(EmuError::new(
            403,
            "SignatureDoesNotMatch",
            "The Signature you specified is invalid.",
        ));
    }
    check_key_time(key_time, ctx.state.now())?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| bad_policy("policy is not JSON"))?;
    // The POST Object page: the conditions must include these three, so a policy cannot be
    // replayed with other credentials or another window.
    let named = condition_names(&v);
    for required in ["q-sign-algorithm", "q-ak", "q-sign-time"] {
        if !named.iter().any(|n| n == required) {
            return Err(bad_policy(&format!(
                "the policy conditions must include {required}"
            )));
        }
    }
    let exp = v["expiration"]
        .as_str()
        .ok_or_else(|| bad_policy("no expiration"))?;
    let exp =
        chrono::DateTime::parse_from_rfc3339(exp).map_err(|_| bad_policy("bad expiration"))?;
    if exp.timestamp() < ctx.state.now() {
        return Err(EmuError::new(403, "AccessDenied", "Request has expired"));
    }
    let value_of = |name: &str| -> String {
        let n = name.trim_start_matches('$');
        match n.to_ascii_lowercase().as_str() {
            "bucket" => ctx.bucket.name.clone(),
            "key" => key.to_string(),
            // The form carries the window as q-key-time; policies name it q-sign-time.
            "q-sign-time" => field(form, "q-sign-time")
                .or_else(|| field(form, "q-key-time"))
                .unwrap_or("")
                .to_string(),
            _ => field(form, n).unwrap_or("").to_string(),
        }
    };
    for c in v["conditions"].as_array().cloned().unwrap_or_default() {
        let ok = if let Some(obj) = c.as_object() {
            obj.iter()
                .all(|(k, val)| val.as_str().is_some_and(|s| value_of(k) == s))
        } else if let Some(arr) = c.as_array() {
            let op = arr
                .first()
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            let s = |i: usize| {
                arr.get(i)
                    .and_then(|x| x.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            match op.as_str() {
                "eq" => value_of(&s(1)) == s(2),
                "starts-with" => value_of(&s(1)).starts_with(&s(2)),
                "content-length-range" => {
                    let n = |i: usize| arr.get(i).and_then(|x| x.as_u64()).unwrap_or(0);
                    let len = form.file.len() as u64;
                    len >= n(1) && len <= n(2)
                }
                _ => false,
            }
        } else {
            false
        };
        if !ok {
            return Err(EmuError::new(
                403,
                "AccessDenied",
                "Invalid according to Policy: Policy Condition failed",
            ));
        }
    }
    Ok(true)
}

/// POST Object.
pub async fn post_object(ctx: &Ctx, body: Incoming) -> OpResult {
    let ct = ctx.header("content-type").unwrap_or("").to_string();
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(malformed("Content-Type must be multipart/form-data"));
    }
    let body = read_body(body, MAX_FORM).await?;
    let form = parse_form(&ct, &body)?;
    let key = field(&form, "key")
        .ok_or_else(|| malformed("no key field"))?
        .replace("${filename}", &form.filename);
    if key.is_empty() {
        return Err(malformed("empty key"));
    }
    check_key(&key)?;
    if !check_policy(ctx, &form, &key)? && ctx.identity == Identity::Anonymous {
        return Err(EmuError::code("AccessDenied"));
    }
    // Reuse the header-based helpers by presenting the form fields as headers.
    let mut fields = form.fields.clone();
    if let Some(acl) = field(&form, "acl") {
        fields.push(("x-cos-acl".into(), acl.to_string()));
    }
    let fctx = Ctx {
        state: ctx.state.clone(),
        method: ctx.method.clone(),
        bucket: Arc::clone(&ctx.bucket),
        key: key.clone(),
        query: Vec::new(),
        headers: fields,
        identity: ctx.identity.clone(),
        host: ctx.host.clone(),
    };
    super::check_md5(&fctx, &form.file)?;
    super::check_meta_size(&fctx)?;
    let acl = acl_from_headers(&fctx)?.unwrap_or_default();
    let sc = storage_class(&fctx)?;
    let md5 = hex::encode(Md5::digest(&form.file));
    let mut crc = crc64fast::Digest::new();
    crc.write(&form.file);
    let r = Received {
        size: form.file.len() as u64,
        md5,
        crc64: crc.sum64(),
    };
    ctx.state.check_free_space(r.size)?;
    let tmp = ctx.bucket.tmp_path();
    tokio::fs::write(&tmp, &form.file)
        .await
        .map_err(EmuError::io)?;
    let meta = new_meta(&fctx, &key, &r, sc, acl);
    ctx.bucket.put(meta, &tmp).map_err(EmuError::io)?;
    let location = format!("http://{}/{}", ctx.host, super::list::url_encode_key(&key));
    let etag = format!("\"{}\"", r.md5);
    if let Some(url) = field(&form, "success_action_redirect").filter(|u| !u.is_empty()) {
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            sign::cos_encode(&ctx.bucket.name),
            sign::cos_encode(&key),
            sign::cos_encode(&etag)
        );
        return Ok(Resp::empty(303).with("Location", target).with("ETag", etag));
    }
    let status = match field(&form, "success_action_status") {
        Some("200") => 200,
        Some("201") => 201,
        _ => 204,
    };
    let mut resp = if status == 201 {
        let mut w = Writer::new();
        w.start("PostResponse")
            .elem("Location", &location)
            .elem("Bucket", &ctx.bucket.name)
            .elem("Key", &key)
            .elem("ETag", &etag)
            .end();
        let mut x = Resp::xml(w.finish());
        x.status = 201;
        x
    } else {
        Resp::empty(status)
    };
    resp = resp
        .with("ETag", etag)
        .with("Location", location)
        .with("x-cos-hash-crc64ecma", r.crc64.to_string());
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_form() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\ndir/${filename}\r\n--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n";
        let f = parse_form("multipart/form-data; boundary=XX", body).unwrap();
        assert_eq!(
            f.fields,
            vec![("key".to_string(), "dir/${filename}".to_string())]
        );
        assert_eq!(f.filename, "a.txt");
        assert_eq!(f.file, b"hello");
        assert!(parse_form("multipart/form-data; boundary=XX", b"--XX--\r\n").is_err());
    }
}
