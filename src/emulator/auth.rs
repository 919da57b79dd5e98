//! Request authentication as COS applies it (docs/protocol.md §1.6, §1.8): q-sign sha1 in the
//! `Authorization` header or presigned query, AWS SigV4 (header or presigned), or anonymous.
//!
//! [`verify`] is pure: method, raw request target, headers, the credential list and "now" in,
//! the caller's identity or the exact COS error out, so recorded SDK requests can be replayed
//! with the clock set to their time. The signing primitives come from `cos::sign` /
//! `cos::sigv4`; what is verified (which names, in which order, how the path and query are
//! decoded, the tolerances) is decided here.

use chrono::NaiveDateTime;

use super::Credential;
use crate::cos::{sign, sigv4};

/// The two signature schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// COS `q-sign-algorithm=sha1`.
    QSign,
    /// AWS Signature Version 4.
    SigV4,
}

/// Who sent the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No signature at all.
    Anonymous,
    /// A valid signature by this SecretId.
    Signed {
        /// The SecretId that signed.
        secret_id: String,
        /// Which scheme it used.
        scheme: Scheme,
    },
}

/// A refused request, shaped as the COS error it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// HTTP status (403, or 400 for malformed requests).
    pub status: u16,
    /// COS error code.
    pub code: &'static str,
    /// Error message.
    pub message: String,
    /// Server-side StringToSign (SignatureDoesNotMatch only).
    pub string_to_sign: Option<String>,
    /// Server-side HttpString / canonical request (SignatureDoesNotMatch only).
    pub format_string: Option<String>,
}

impl AuthError {
    fn new(status: u16, code: &'static str, message: &str) -> AuthError {
        AuthError {
            status,
            code,
            message: message.to_string(),
            string_to_sign: None,
            format_string: None,
        }
    }

    fn mismatch(string_to_sign: String, format_string: String) -> AuthError {
        AuthError {
            string_to_sign: Some(string_to_sign),
            format_string: Some(format_string),
            ..AuthError::new(
                403,
                "SignatureDoesNotMatch",
                "The Signature you specified is invalid.",
            )
        }
    }
}

/// The parts of a request the verifier looks at.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Raw request target as sent: `/path?query`.
    pub target: &'a str,
    /// Headers as received (names any case, values trimmed by the HTTP stack).
    pub headers: &'a [(String, String)],
}

/// Percent-decodes `s` (invalid UTF-8 replaced), `+` meaning space when `plus_space`.
pub fn percent_decode(s: &str, plus_space: bool) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(s, plus_space)).into_owned()
}

/// The bytes `s` percent-decodes to, unchecked (keys must be checked for UTF-8 by the caller:
/// a lossy decode would map two different keys to one).
pub fn percent_decode_bytes(s: &str, plus_space: bool) -> Vec<u8> {
    // `+` is replaced before decoding so that an encoded `%2B` still decodes to `+`. A `%` not
    // followed by two hex digits stays as it is.
    if plus_space && s.contains('+') {
        return percent_encoding::percent_decode_str(&s.replace('+', " ")).collect();
    }
    percent_encoding::percent_decode_str(s).collect()
}

/// Splits a raw query string into decoded (name, value) pairs (`+` = space; `a` = `("a", "")`).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (percent_decode(n, true), percent_decode(v, true)),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

/// First header value with this name (case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Verifies a request at time `now` (Unix seconds) against the accepted credentials.
pub fn verify(
    req: &AuthRequest<'_>,
    creds: &[Credential],
    now: i64,
) -> Result<Identity, AuthError> {
    let lower = |p: &str| {
        req.headers
            .iter()
            .any(|(n, _)| n.to_ascii_lowercase().starts_with(p))
    };
    if lower("x-cos-") && lower("x-amz-") {
        return Err(AuthError::new(
            400,
            "InvalidArgument",
            "x-cos-* and x-amz-* headers must not be mixed in one request",
        ));
    }
    let (path, query) = req.target.split_once('?').unwrap_or((req.target, ""));
    let params = parse_query(query);
    let param = |n: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    if let Some(auth) = header(req.headers, "authorization") {
        if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256") {
            return verify_sigv4(req, path, &params, sigv4_header_fields(rest), creds, now);
        }
        let fields: Vec<(String, String)> = auth
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.to_string()),
                None => (p.trim().to_string(), String::new()),
            })
            .collect();
        return verify_qsign(req, path, &params, &fields, creds, now);
    }
    if param("q-sign-algorithm").is_some() {
        let fields: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("q-"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        return verify_qsign(req, path, &params, &fields, creds, now);
    }
    if param("X-Amz-Algorithm").is_some() {
        let f = SigV4Fields {
            credential: param("X-Amz-Credential").unwrap_or("").to_string(),
            signed_headers: param("X-Amz-SignedHeaders").unwrap_or("").to_string(),
            signature: param("X-Amz-Signature").unwrap_or("").to_string(),
            date: param("X-Amz-Date").map(str::to_string),
            expires: param("X-Amz-Expires").and_then(|e| e.parse().ok()),
            presigned: true,
        };
        return verify_sigv4(req, path, &params, f, creds, now);
    }
    Ok(Identity::Anonymous)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn parse_window(t: &str) -> Option<(i64, i64)> {
    let (a, b) = t.split_once(';')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

fn check_token(
    req: &AuthRequest<'_>,
    params: &[(String, String)],
    cred: &Credential,
) -> Result<(), AuthError> {
    let Some(want) = &cred.token else {
        return Ok(());
    };
    let got = header(req.headers, "x-cos-security-token")
        .or_else(|| header(req.headers, "x-amz-security-token"))
        .map(str::to_string)
        .or_else(|| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-cos-security-token"))
                // Node appends the token unencoded, so a `+` arrived as a space.
                .map(|(_, v)| v.replace(' ', "+"))
        });
    match got {
        Some(g) if sign::constant_time_eq(g.as_bytes(), want.as_bytes()) => Ok(()),
        _ => Err(AuthError::new(
            403,
            "InvalidAccessKeyId",
            "The security token is missing or invalid.",
        )),
    }
}

fn verify_qsign(
    req: &AuthRequest<'_>,
    path: &str,
    params: &[(String, String)],
    fields: &[(String, String)],
    creds: &[Credential],
    now: i64,
) -> Result<Identity, AuthError> {
    if field(fields, "q-sign-algorithm") != Some("sha1") {
        return Err(AuthError::new(
            403,
            "AccessDenied",
            "q-sign-algorithm must be sha1",
        ));
    }
    let ak = field(fields, "q-ak").unwrap_or("");
    let Some(cred) = creds.iter().find(|c| c.secret_id == ak) else {
        return Err(AuthError::new(
            403,
            "InvalidAccessKeyId",
            "The access key Id format you provided is invalid.",
        ));
    };
    let sign_time = field(fields, "q-sign-time").unwrap_or("");
    let key_time = field(fields, "q-key-time").unwrap_or(sign_time);
    let Some((start, end)) = parse_window(sign_time) else {
        return Err(AuthError::new(
            403,
            "AccessDenied",
            "q-sign-time is malformed",
        ));
    };
    if now > end {
        return Err(AuthError::new(403, "AccessDenied", "Request has expired"));
    }
    if start > now + 900 {
        return Err(AuthError::new(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the server's time is too large.",
        ));
    }
    check_token(req, params, cred)?;
    let header_list = field(fields, "q-header-list").unwrap_or("");
    let param_list = field(fields, "q-url-param-list").unwrap_or("");
    let given = field(fields, "q-signature").unwrap_or("");
    let decoded_path = percent_decode(path, true);
    let check = |host_override: Option<&str>| -> Result<(), AuthError> {
        let mut missing = false;
        let mut pairs_p = Vec::new();
        for name in param_list.split(';').filter(|n| !n.is_empty()) {
            match params
                .iter()
                .find(|(k, _)| sign::cos_encode(k).to_lowercase() == name)
            {
                Some((_, v)) => pairs_p.push(format!("{name}={}", sign::cos_encode(v))),
                None => {
                    missing = true;
                    pairs_p.push(format!("{name}="));
                }
            }
        }
        let mut pairs_h = Vec::new();
        for name in header_list.split(';').filter(|n| !n.is_empty()) {
            let v = if name == "host" && host_override.is_some() {
                host_override.map(str::to_string)
            } else {
                req.headers
                    .iter()
                    .find(|(k, _)| sign::cos_encode(k).to_lowercase() == name)
                    .map(|(_, v)| v.clone())
            };
            match v {
                Some(v) => pairs_h.push(format!("{name}={}", sign::cos_encode(&v))),
                None => {
                    missing = true;
                    pairs_h.push(format!("{name}="));
                }
            }
        }
        let text = format!(
            "{}\n{}\n{}\n{}\n",
            req.method.to_lowercase(),
            decoded_path,
            pairs_p.join("&"),
            pairs_h.join("&")
        );
        let expected = sign::signature(&cred.secret_key, key_time, sign_time, &text);
        if !missing && sign::constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            Ok(())
        } else {
            Err(AuthError::mismatch(
                sign::string_to_sign(sign_time, &text),
                text,
            ))
        }
    };
    let first = check(None);
    if let Err(e) = first {
        // §1.6 step 8: the Python SDK signs a custom endpoint's host without its port.
        let host = header(req.headers, "host").unwrap_or("");
        let stripped = host.rsplit_once(':').map(|(h, _)| h);
        let signs_host = header_list.split(';').any(|n| n == "host");
        match stripped {
            Some(h) if signs_host && check(Some(h)).is_ok() => {}
            _ => return Err(e),
        }
    }
    Ok(Identity::Signed {
        secret_id: cred.secret_id.clone(),
        scheme: Scheme::QSign,
    })
}

/// Fields of a SigV4 signature (header or presigned form).
struct SigV4Fields {
    /// `AKID/date/region/service/aws4_request`.
    credential: String,
    /// `SignedHeaders`, `;`-separated lower-case names.
    signed_headers: String,
    /// The hex signature to check.
    signature: String,
    /// `X-Amz-Date` (presigned form; else taken from the header).
    date: Option<String>,
    /// `X-Amz-Expires` seconds (presigned form only).
    expires: Option<i64>,
    /// True for the query-string form (payload is `UNSIGNED-PAYLOAD`).
    presigned: bool,
}

fn sigv4_header_fields(rest: &str) -> SigV4Fields {
    let mut f = SigV4Fields {
        credential: String::new(),
        signed_headers: String::new(),
        signature: String::new(),
        date: None,
        expires: None,
        presigned: false,
    };
    for part in rest.split(',') {
        if let Some((k, v)) = part.trim().split_once('=') {
            match k.trim() {
                "Credential" => f.credential = v.trim().to_string(),
                "SignedHeaders" => f.signed_headers = v.trim().to_string(),
                "Signature" => f.signature = v.trim().to_string(),
                _ => {}
            }
        }
    }
    f
}

fn verify_sigv4(
    req: &AuthRequest<'_>,
    path: &str,
    params: &[(String, String)],
    mut f: SigV4Fields,
    creds: &[Credential],
    now: i64,
) -> Result<Identity, AuthError> {
    let scope_parts: Vec<&str> = f.credential.split('/').collect();
    if scope_parts.len() != 5 {
        return Err(AuthError::new(
            400,
            "AuthorizationHeaderMalformed",
            "malformed SigV4 credential",
        ));
    }
    let Some(cred) = creds.iter().find(|c| c.secret_id == scope_parts[0]) else {
        return Err(AuthError::new(
            403,
            "InvalidAccessKeyId",
            "The access key Id format you provided is invalid.",
        ));
    };
    if f.date.is_none() {
        f.date = header(req.headers, "x-amz-date").map(str::to_string);
    }
    let amz_date = f.date.clone().unwrap_or_default();
    let Ok(t) = NaiveDateTime::parse_from_str(&amz_date, "%Y%m%dT%H%M%SZ") else {
        return Err(AuthError::new(
            403,
            "AccessDenied",
            "missing or malformed x-amz-date",
        ));
    };
    let t = t.and_utc().timestamp();
    if let Some(exp) = f.expires {
        if now > t + exp {
            return Err(AuthError::new(403, "AccessDenied", "Request has expired"));
        }
    } else if (now - t).abs() > 900 {
        return Err(AuthError::new(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the server's time is too large.",
        ));
    }
    check_token(req, params, cred)?;
    let canonical_uri = sigv4::uri_encode(&percent_decode(path, false), false);
    let q: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| !(f.presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let canonical_query = sigv4::canonical_query(&q);
    let mut hs = Vec::new();
    let mut missing = false;
    for name in f.signed_headers.split(';').filter(|n| !n.is_empty()) {
        match header(req.headers, name) {
            Some(v) => hs.push((name, v)),
            None => missing = true,
        }
    }
    let payload = if f.presigned {
        "UNSIGNED-PAYLOAD"
    } else {
        header(req.headers, "x-amz-content-sha256").unwrap_or("UNSIGNED-PAYLOAD")
    };
    let creq = sigv4::canonical_request(
        req.method,
        &canonical_uri,
        &canonical_query,
        &hs,
        &f.signed_headers,
        payload,
    );
    let scope = scope_parts[1..].join("/");
    let sts = sigv4::string_to_sign(&amz_date, &scope, &creq);
    let key = sigv4::signing_key(
        &cred.secret_key,
        scope_parts[1],
        scope_parts[2],
        scope_parts[3],
    );
    let expected = sigv4::signature(&key, &sts);
    if missing || !sign::constant_time_eq(expected.as_bytes(), f.signature.as_bytes()) {
        return Err(AuthError::mismatch(sts, creq));
    }
    Ok(Identity::Signed {
        secret_id: cred.secret_id.clone(),
        scheme: Scheme::SigV4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_rules() {
        assert_eq!(percent_decode("/a%20b+c%2B", true), "/a b c+");
        assert_eq!(percent_decode("/a+b%", false), "/a+b%");
        assert_eq!(percent_decode("%E7%9B%AE", true), "目");
        // Not an escape: kept as sent (`%+1` too, which u8::from_str_radix used to accept).
        assert_eq!(percent_decode("%zz%+1%4", false), "%zz%+1%4");
        assert_eq!(
            parse_query("acl&marker=a+b&x=%3B"),
            vec![
                ("acl".to_string(), String::new()),
                ("marker".to_string(), "a b".to_string()),
                ("x".to_string(), ";".to_string())
            ]
        );
    }
}
