//! ACLs of `MemoryStore` objects: canned values, grant headers and policy bodies, reported
//! back the way GET Object acl does (owner FULL_CONTROL first, `x-cos-acl` canned value).

use crate::store::{AccessControlPolicy, AclSpec, Grant, Grantee};

/// Owner ID reported in ACLs (a root account: same uin twice).
const OWNER_ID: &str = "qcs::cam::uin/100000000001:uin/100000000001";
/// The AllUsers group URI.
const ALL_USERS: &str = "http://cam.qcloud.com/groups/global/AllUsers";

/// The ACL stored with one object.
#[derive(Debug, Clone, Default)]
pub(super) struct ObjAcl {
    /// Canned ACL; None = `default` (inherit the bucket's).
    pub(super) canned: Option<String>,
    /// Explicit grants (from grant headers or a policy body).
    pub(super) grants: Vec<Grant>,
}

/// Parses a grant header (`id="a",id="b"`, also `uri="..."`) into grants with `permission`.
pub(super) fn parse_grants(header: &str, permission: &str) -> Vec<Grant> {
    header
        .split(',')
        .filter_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            let v = v.trim().trim_matches('"').to_string();
            let grantee = match k.trim().to_ascii_lowercase().as_str() {
                "id" => Grantee::User {
                    id: v,
                    display_name: None,
                },
                "uri" => Grantee::Group { uri: v },
                _ => return None,
            };
            Some(Grant {
                grantee,
                permission: permission.to_string(),
            })
        })
        .collect()
}

pub(super) fn acl_from_headers(
    canned: Option<&str>,
    read: Option<&str>,
    full: Option<&str>,
) -> ObjAcl {
    let mut grants = Vec::new();
    if let Some(r) = read {
        grants.extend(parse_grants(r, "READ"));
    }
    if let Some(f) = full {
        grants.extend(parse_grants(f, "FULL_CONTROL"));
    }
    ObjAcl {
        canned: canned.filter(|c| *c != "default").map(str::to_string),
        grants,
    }
}

impl ObjAcl {
    /// The policy GET Object acl reports for this ACL.
    pub(super) fn policy(&self) -> AccessControlPolicy {
        let mut grants = vec![Grant {
            grantee: Grantee::User {
                id: OWNER_ID.into(),
                display_name: Some(OWNER_ID.into()),
            },
            permission: "FULL_CONTROL".into(),
        }];
        if self.canned.as_deref() == Some("public-read") {
            grants.push(Grant {
                grantee: Grantee::Group {
                    uri: ALL_USERS.into(),
                },
                permission: "READ".into(),
            });
        }
        grants.extend(self.grants.iter().cloned());
        AccessControlPolicy {
            owner_id: OWNER_ID.into(),
            owner_display_name: Some(OWNER_ID.into()),
            grants,
            canned: Some(self.canned.clone().unwrap_or_else(|| "default".into())),
        }
    }

    /// The ACL that PUT Object acl with `spec` sets.
    pub(super) fn from_spec(spec: &AclSpec) -> ObjAcl {
        match spec {
            AclSpec::Headers {
                canned,
                grant_read,
                grant_full_control,
            } => acl_from_headers(
                canned.as_deref(),
                grant_read.as_deref(),
                grant_full_control.as_deref(),
            ),
            AclSpec::Policy(p) => {
                // The owner's FULL_CONTROL is implied and reported back by GET; keep the rest.
                let public = p.grants.iter().any(|g| {
                    g.permission == "READ"
                        && matches!(&g.grantee, Grantee::Group { uri } if uri == ALL_USERS)
                });
                let grants = p
                    .grants
                    .iter()
                    .filter(|g| {
                        !matches!(&g.grantee, Grantee::User { id, .. } if id == OWNER_ID
                            && g.permission == "FULL_CONTROL")
                            && !matches!(&g.grantee, Grantee::Group { uri } if uri == ALL_USERS
                            && g.permission == "READ")
                    })
                    .cloned()
                    .collect();
                ObjAcl {
                    canned: Some(if public { "public-read" } else { "private" }.into()),
                    grants,
                }
            }
        }
    }
}
