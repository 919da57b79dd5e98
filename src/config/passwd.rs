//! cosfs's passwd file: reading it safely (owner-only permissions) and its two formats.
//!
//! - Key lines: `SecretId:SecretKey` or `bucket:SecretId:SecretKey` (`#` comments, blank lines
//!   ignored). A line naming our bucket (with or without `-APPID`) wins over a bucket-less line.
//! - STS form: `COSAccessKeyId=`, `COSSecretKey=`, `COSAccessToken=`, `COSAccessTokenExpire=`
//!   (GMT, `2017-08-29T20:30:00`, as cosfs documents; RFC 3339 and Unix seconds also accepted).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::credentials::{Credentials, CredentialsError};

/// Reads `path` after checking that neither group nor others can read or write it.
pub fn read_checked(path: &Path) -> Result<String, CredentialsError> {
    let meta = std::fs::metadata(path).map_err(|e| CredentialsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if meta.mode() & 0o077 != 0 {
        return Err(CredentialsError::Permissions {
            path: path.to_path_buf(),
            mode: meta.mode() & 0o777,
        });
    }
    std::fs::read_to_string(path).map_err(|e| CredentialsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Parses passwd file text for `bucket` (`NAME-APPID`). `Ok(None)` = the file has no line that
/// applies to this bucket.
pub fn parse(
    text: &str,
    bucket: &str,
    path: &Path,
) -> Result<Option<Credentials>, CredentialsError> {
    let bad = |line_no: usize, why: &str| CredentialsError::Format {
        path: path.to_path_buf(),
        line: line_no,
        reason: why.to_string(),
    };
    let short_name = bucket.rsplit_once('-').map(|(n, _)| n).unwrap_or(bucket);
    let mut sts = StsFields::default();
    let mut generic: Option<Credentials> = None;
    let mut specific: Option<Credentials> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = strip_comment(raw);
        if line.is_empty() {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim() {
                "COSAccessKeyId" => sts.id = Some(v),
                "COSSecretKey" => sts.key = Some(v),
                "COSAccessToken" => sts.token = Some(v),
                "COSAccessTokenExpire" => {
                    sts.expire = Some(parse_expire(&v).ok_or_else(|| {
                        bad(
                            line_no,
                            "COSAccessTokenExpire must look like 2017-08-29T20:30:00 (GMT)",
                        )
                    })?)
                }
                other => return Err(bad(line_no, &format!("unknown key '{other}'"))),
            }
            continue;
        }
        let parts: Vec<&str> = line.split(':').map(str::trim).collect();
        match parts.as_slice() {
            [id, key] if !id.is_empty() && !key.is_empty() => {
                generic.get_or_insert_with(|| Credentials::new(*id, *key, None));
            }
            [b, id, key] if !id.is_empty() && !key.is_empty() => {
                if *b == bucket || *b == short_name {
                    specific.get_or_insert_with(|| Credentials::new(*id, *key, None));
                }
            }
            _ => {
                return Err(bad(
                    line_no,
                    "expected SecretId:SecretKey, bucket:SecretId:SecretKey or COSAccessKeyId=...",
                ))
            }
        }
    }
    if sts.id.is_some() || sts.key.is_some() {
        let (Some(id), Some(key)) = (sts.id, sts.key) else {
            return Err(bad(
                0,
                "COSAccessKeyId and COSSecretKey must both be present",
            ));
        };
        let mut c = Credentials::new(id, key, sts.token);
        c.expires = sts.expire;
        return Ok(Some(c));
    }
    Ok(specific.or(generic))
}

#[derive(Default)]
struct StsFields {
    id: Option<String>,
    key: Option<String>,
    token: Option<String>,
    expire: Option<SystemTime>,
}

/// Drops a `#` comment (cosfs allows trailing ones after the STS values) and surrounding space.
fn strip_comment(line: &str) -> &str {
    let line = line.trim();
    if line.starts_with('#') {
        return "";
    }
    // A `#` preceded by whitespace starts a trailing comment; keys themselves never contain spaces.
    match line.find(" #").or_else(|| line.find("\t#")) {
        Some(pos) => line[..pos].trim(),
        None => line,
    }
}

/// `2017-08-29T20:30:00` (GMT), RFC 3339, or Unix seconds.
pub fn parse_expire(v: &str) -> Option<SystemTime> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(UNIX_EPOCH + Duration::from_secs(secs));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return u64::try_from(t.timestamp())
            .ok()
            .map(|s| UNIX_EPOCH + Duration::from_secs(s));
    }
    let t = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S").ok()?;
    u64::try_from(t.and_utc().timestamp())
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const B: &str = "photos-1250000000";

    fn p(text: &str) -> Option<Credentials> {
        parse(text, B, Path::new("/pw")).unwrap()
    }

    #[test]
    fn plain_key_line() {
        let c = p("# comment\n\nAKIDa:keyA\n").unwrap();
        assert_eq!(c.secret_id, "AKIDa");
        assert_eq!(c.secret_key.expose(), "keyA");
        assert!(c.session_token.is_none() && c.expires.is_none());
    }

    #[test]
    fn bucket_specific_line_wins_over_generic_in_any_order() {
        let c = p("AKIDg:keyG\nother-1:AKIDo:keyO\nphotos-1250000000:AKIDs:keyS\n").unwrap();
        assert_eq!(c.secret_id, "AKIDs");
        let c = p("photos:AKIDshort:keyS\nAKIDg:keyG\n").unwrap();
        assert_eq!(
            c.secret_id, "AKIDshort",
            "bucket name without APPID matches too"
        );
        let c = p("other-1:AKIDo:keyO\nAKIDg:keyG\n").unwrap();
        assert_eq!(c.secret_id, "AKIDg");
        assert!(p("other-1:AKIDo:keyO\n").is_none());
    }

    #[test]
    fn sts_form_with_trailing_comments() {
        let c = p(
            "COSAccessKeyId=AKIDt  # the id\nCOSSecretKey=keyT\nCOSAccessToken=tok\n\
                   COSAccessTokenExpire=2017-08-29T20:30:00  # GMT\n",
        )
        .unwrap();
        assert_eq!(c.secret_id, "AKIDt");
        assert_eq!(c.secret_key.expose(), "keyT");
        assert_eq!(c.session_token.as_ref().unwrap().expose(), "tok");
        assert_eq!(
            c.expires.unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_504_038_600)
        );
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let e = parse("AKIDa:keyA\nnonsense\n", B, Path::new("/pw")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("/pw") && msg.contains("line 2"), "{msg}");
        let e = parse(
            "COSAccessKeyId=x\nCOSAccessTokenExpire=tomorrow\n",
            B,
            Path::new("/pw"),
        );
        assert!(e.unwrap_err().to_string().contains("COSAccessTokenExpire"));
        let e = parse("COSAccessKeyId=x\n", B, Path::new("/pw"));
        assert!(e.unwrap_err().to_string().contains("COSSecretKey"));
        let e = parse("Foo=bar\n", B, Path::new("/pw"));
        assert!(e.unwrap_err().to_string().contains("Foo"));
    }

    #[test]
    fn group_or_world_access_is_refused_with_chmod_advice() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "AKIDa:keyA\n").unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let msg = read_checked(f.path()).unwrap_err().to_string();
            assert!(msg.contains(&f.path().display().to_string()), "{msg}");
            assert!(
                msg.contains("readable or writable") && msg.contains("chmod 600"),
                "{msg}"
            );
        }
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_checked(f.path()).unwrap(), "AKIDa:keyA\n");
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read_checked(f.path()).is_ok());
    }

    #[test]
    fn missing_file_is_reported() {
        let msg = read_checked(Path::new("/nonexistent/pw"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/nonexistent/pw"), "{msg}");
    }

    #[test]
    fn expiry_formats() {
        assert_eq!(
            parse_expire("10"),
            Some(UNIX_EPOCH + Duration::from_secs(10))
        );
        assert_eq!(
            parse_expire("1970-01-01T00:01:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(60))
        );
        assert!(parse_expire("2017-08-29 20:30").is_none());
    }
}
