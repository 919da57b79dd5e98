//! Text forms of ACLs for the `user.cos.*` xattrs (pure): grant lists in COS's header form
//! (`id="..."`, comma-separated; groups as `uri="..."`), the full policy as JSON
//! (`{"owner":"...","grants":[{"id":"...","permission":"READ"},{"uri":"...","permission":"READ"}]}`),
//! restore requests (`days=N[,tier=Expedited|Standard|Bulk]`), restore states, and the
//! percent-encoding of metadata values (HTTP headers are not UTF-8 safe).

use std::time::SystemTime;

use super::error::{FsError, FsResult};
use crate::store::{AccessControlPolicy, Grant, Grantee, RestoreState, RestoreTier};

/// The grants with `permission`, in header form.
pub fn grants_header(p: &AccessControlPolicy, permission: &str) -> String {
    p.grants
        .iter()
        .filter(|g| g.permission == permission)
        .map(|g| match &g.grantee {
            Grantee::User { id, .. } => format!("id=\"{id}\""),
            Grantee::Group { uri } => format!("uri=\"{uri}\""),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The policy as JSON text.
pub fn policy_json(p: &AccessControlPolicy) -> String {
    let grants: Vec<serde_json::Value> = p
        .grants
        .iter()
        .map(|g| match &g.grantee {
            Grantee::User { id, .. } => serde_json::json!({"id": id, "permission": g.permission}),
            Grantee::Group { uri } => serde_json::json!({"uri": uri, "permission": g.permission}),
        })
        .collect();
    serde_json::json!({"owner": p.owner_id, "grants": grants}).to_string()
}

/// Parses the JSON policy form.
pub fn parse_policy(text: &str) -> FsResult<AccessControlPolicy> {
    let bad = |m: &str| FsError::InvalidArgument(format!("user.cos.acl-policy: {m}"));
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| bad(&e.to_string()))?;
    let owner = v["owner"]
        .as_str()
        .ok_or_else(|| bad("missing \"owner\""))?
        .to_string();
    let mut grants = Vec::new();
    for g in v["grants"]
        .as_array()
        .ok_or_else(|| bad("missing \"grants\""))?
    {
        let permission = g["permission"]
            .as_str()
            .ok_or_else(|| bad("grant without permission"))?;
        // COS grants only these two on objects (WRITE, READ_ACP, WRITE_ACP are bucket ones).
        if !["READ", "FULL_CONTROL"].contains(&permission) {
            return Err(bad(&format!(
                "permission {permission} is not one COS grants on objects (READ, FULL_CONTROL)"
            )));
        }
        let grantee = match (g["id"].as_str(), g["uri"].as_str()) {
            (Some(id), _) => Grantee::User {
                id: id.to_string(),
                display_name: None,
            },
            (None, Some(uri)) => Grantee::Group {
                uri: uri.to_string(),
            },
            (None, None) => return Err(bad("grant without id or uri")),
        };
        grants.push(Grant {
            grantee,
            permission: permission.to_string(),
        });
    }
    if grants.len() > 100 {
        return Err(bad("more than 100 grants"));
    }
    Ok(AccessControlPolicy {
        owner_id: owner,
        owner_display_name: None,
        grants,
        canned: None,
    })
}

/// Parses `days=N[,tier=T]` (tier defaults to Standard).
pub fn parse_restore(text: &str) -> FsResult<(u32, RestoreTier)> {
    let bad = || {
        FsError::InvalidArgument(format!(
            "user.cos.restore: want days=N[,tier=Expedited|Standard|Bulk], got {text:?}"
        ))
    };
    let mut days = None;
    let mut tier = RestoreTier::Standard;
    for part in text.trim().split(',') {
        let (k, v) = part.split_once('=').ok_or_else(bad)?;
        match k.trim().to_ascii_lowercase().as_str() {
            "days" => days = Some(v.trim().parse::<u32>().map_err(|_| bad())?),
            "tier" => {
                tier = match v.trim().to_ascii_lowercase().as_str() {
                    "expedited" => RestoreTier::Expedited,
                    "standard" => RestoreTier::Standard,
                    "bulk" => RestoreTier::Bulk,
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        }
    }
    match days {
        Some(d) if (1..=365).contains(&d) => Ok((d, tier)),
        _ => Err(bad()),
    }
}

/// The `user.cos.restore` value: `none`, `in-progress`, `restored until <HTTP date>`.
pub fn restore_text(r: Option<&RestoreState>) -> String {
    match r {
        None => "none".into(),
        Some(RestoreState::InProgress) => "in-progress".into(),
        Some(RestoreState::Restored { expiry }) if *expiry <= SystemTime::now() => "none".into(),
        Some(RestoreState::Restored { expiry }) => {
            format!("restored until {}", httpdate::fmt_http_date(*expiry))
        }
    }
}

/// Percent-encodes bytes outside printable ASCII, and `%` itself.
pub fn encode_value(v: &[u8]) -> String {
    let mut out = String::new();
    for &b in v {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`encode_value`] (invalid escapes are kept as written).
pub fn decode_value(v: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_object_permissions_are_accepted() {
        for bad in ["WRITE", "READ_ACP", "WRITE_ACP", "read"] {
            let j = format!(r#"{{"owner":"o","grants":[{{"id":"x","permission":"{bad}"}}]}}"#);
            assert!(parse_policy(&j).is_err(), "{bad}");
        }
        let ok = r#"{"owner":"o","grants":[{"id":"x","permission":"FULL_CONTROL"}]}"#;
        assert_eq!(parse_policy(ok).unwrap().grants.len(), 1);
    }

    #[test]
    fn policy_round_trips_through_json() {
        let p = AccessControlPolicy {
            owner_id: "qcs::cam::uin/1:uin/1".into(),
            owner_display_name: None,
            grants: vec![
                Grant {
                    grantee: Grantee::User {
                        id: "qcs::cam::uin/1:uin/2".into(),
                        display_name: None,
                    },
                    permission: "READ".into(),
                },
                Grant {
                    grantee: Grantee::Group {
                        uri: "http://cam.qcloud.com/groups/global/AllUsers".into(),
                    },
                    permission: "READ".into(),
                },
            ],
            canned: None,
        };
        let back = parse_policy(&policy_json(&p)).unwrap();
        assert_eq!(back.grants, p.grants);
        assert_eq!(back.owner_id, p.owner_id);
        assert_eq!(
            grants_header(&p, "READ"),
            "id=\"qcs::cam::uin/1:uin/2\",uri=\"http://cam.qcloud.com/groups/global/AllUsers\""
        );
        assert!(parse_policy(
            "{\"owner\":\"o\",\"grants\":[{\"id\":\"x\",\"permission\":\"ALL\"}]}"
        )
        .is_err());
        assert!(parse_policy("not json").is_err());
    }

    #[test]
    fn restore_requests_and_states() {
        assert_eq!(
            parse_restore("days=1,tier=Expedited").unwrap(),
            (1, RestoreTier::Expedited)
        );
        assert_eq!(parse_restore("days=3").unwrap(), (3, RestoreTier::Standard));
        for bad in [
            "",
            "days=0",
            "days=x",
            "tier=Bulk",
            "days=1,tier=Fast",
            "weeks=1",
        ] {
            assert!(parse_restore(bad).is_err(), "{bad}");
        }
        assert_eq!(restore_text(None), "none");
        assert_eq!(restore_text(Some(&RestoreState::InProgress)), "in-progress");
        let later = SystemTime::now() + std::time::Duration::from_secs(86_400);
        assert!(
            restore_text(Some(&RestoreState::Restored { expiry: later }))
                .starts_with("restored until ")
        );
    }

    #[test]
    fn values_encode_reversibly() {
        for v in [&b"plain text"[..], "ünï %41".as_bytes(), b"\x00\xff"] {
            assert_eq!(decode_value(&encode_value(v)), v);
        }
        assert_eq!(encode_value(b"a b"), "a b");
    }
}
