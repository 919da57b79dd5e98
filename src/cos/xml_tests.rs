//! Unit tests of `cos::xml`: every sample of `shared/cos-vectors/xml-samples` parsed to exactly
//! the values the official SDKs reported (`sdk-parsed-results.json`), request bodies serialized
//! in the documented form and parsed back, and the lenient date/encoding helpers.

use super::*;
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/xml-samples/");

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}{name}")).expect("sample readable")
}

fn expected(file: &str, case: &str) -> Value {
    let all: Value =
        serde_json::from_str(&sample("sdk-parsed-results.json")).expect("results json parses");
    let v = &all["parsed"][file][case];
    assert!(!v.is_null(), "no expectation {file} / {case}");
    if v["ok"].as_bool() == Some(true) {
        v["sdk_result"].clone()
    } else {
        v["sdk_error"].clone()
    }
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

fn check_principal(p: &Option<Principal>, v: &Value) {
    let p = p.as_ref().expect("principal present");
    assert_eq!(p.id, s(&v["ID"]));
    assert_eq!(p.display_name.as_deref(), Some(s(&v["DisplayName"])));
}

fn check_list(file: &str, case: &str) {
    let r: ListBucketResult = parse(&sample(file)).unwrap();
    let e = expected(file, case);
    assert_eq!(r.name, s(&e["Name"]));
    assert_eq!(r.encoding_type.as_deref(), e["EncodingType"].as_str());
    assert_eq!(r.prefix.as_deref(), Some(s(&e["Prefix"])));
    // Python reports an empty <Marker/> as null, Node as "": both mean "no marker".
    assert_eq!(
        r.marker.clone().unwrap_or_default(),
        e["Marker"].as_str().unwrap_or("")
    );
    assert_eq!(r.max_keys.as_deref(), Some(s(&e["MaxKeys"])));
    assert_eq!(r.delimiter.as_deref(), Some(s(&e["Delimiter"])));
    assert_eq!(r.is_truncated, s(&e["IsTruncated"]));
    assert_eq!(r.next_marker.as_deref(), e["NextMarker"].as_str());
    let ec = e["Contents"].as_array().unwrap();
    assert_eq!(r.contents.len(), ec.len());
    for (c, x) in r.contents.iter().zip(ec) {
        assert_eq!(c.key, s(&x["Key"]));
        assert_eq!(c.last_modified, s(&x["LastModified"]));
        assert_eq!(c.etag, s(&x["ETag"]));
        assert_eq!(c.size, s(&x["Size"]));
        check_principal(&c.owner, &x["Owner"]);
        assert_eq!(c.storage_class.as_deref(), Some(s(&x["StorageClass"])));
        assert_eq!(c.restore_status.as_deref(), x["RestoreStatus"].as_str());
    }
    let ep = e["CommonPrefixes"].as_array().unwrap();
    let got: Vec<&str> = r
        .common_prefixes
        .iter()
        .map(|p| p.prefix.as_str())
        .collect();
    let want: Vec<&str> = ep.iter().map(|p| s(&p["Prefix"])).collect();
    assert_eq!(got, want);
}

#[test]
fn list_bucket_encoding_url_matches_sdks() {
    check_list(
        "response-list-bucket-encoding-url.xml",
        "py.list_objects.encoding_url",
    );
    check_list(
        "response-list-bucket-encoding-url.xml",
        "node.getBucket.encoding_url",
    );
    let r: ListBucketResult = parse(&sample("response-list-bucket-encoding-url.xml")).unwrap();
    assert_eq!(url_decode(&r.contents[0].key), "docs/报告 Q1.pdf");
    assert_eq!(url_decode(&r.common_prefixes[0].prefix), "docs/sub+1/");
    assert_eq!(url_decode("a+b%20c"), "a+b c");
}

#[test]
fn list_bucket_plain_matches_sdks() {
    check_list("response-list-bucket-plain.xml", "py.list_objects.default");
    check_list("response-list-bucket-plain.xml", "node.getBucket.plain");
}

#[test]
fn delete_result_matches_sdks() {
    let r: DeleteResult = parse(&sample("response-delete-result.xml")).unwrap();
    let e = expected("response-delete-result.xml", "py.delete_objects");
    let keys: Vec<&str> = r.deleted.iter().map(|d| d.key.as_str()).collect();
    let want: Vec<&str> = e["Deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| s(&d["Key"]))
        .collect();
    assert_eq!(keys, want);
    let ee = &e["Error"][0];
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].key, s(&ee["Key"]));
    assert_eq!(r.errors[0].code, s(&ee["Code"]));
    assert_eq!(r.errors[0].message, s(&ee["Message"]));
}

#[test]
fn acl_policy_matches_sdks() {
    let r: AclPolicy = parse(&sample("response-acl-policy.xml")).unwrap();
    let e = expected("response-acl-policy.xml", "py.get_object_acl");
    assert_eq!(r.owner.id, s(&e["Owner"]["ID"]));
    assert_eq!(
        r.owner.display_name.as_deref(),
        Some(s(&e["Owner"]["DisplayName"]))
    );
    let eg = e["AccessControlList"]["Grant"].as_array().unwrap();
    assert_eq!(r.list.grants.len(), eg.len());
    for (g, x) in r.list.grants.iter().zip(eg) {
        assert_eq!(g.permission, s(&x["Permission"]));
        assert_eq!(g.grantee.kind(), s(&x["Grantee"]["Type"]));
        assert_eq!(g.grantee.id.as_deref(), x["Grantee"]["ID"].as_str());
        assert_eq!(g.grantee.uri.as_deref(), x["Grantee"]["URI"].as_str());
        assert_eq!(
            g.grantee.display_name.as_deref(),
            x["Grantee"]["DisplayName"].as_str()
        );
    }
}

#[test]
fn initiate_and_complete_match_sdks() {
    let r: InitiateResult = parse(&sample("response-initiate-multipart.xml")).unwrap();
    let e = expected("response-initiate-multipart.xml", "py.multipart.initiate");
    assert_eq!(r.bucket, s(&e["Bucket"]));
    assert_eq!(r.key, s(&e["Key"]));
    assert_eq!(r.upload_id, s(&e["UploadId"]));

    // Complete streams whitespace before the document: parse must tolerate it.
    let body = format!("   \n  {}", sample("response-complete-multipart.xml"));
    let r: CompleteResult = parse(&body).unwrap();
    let e = expected("response-complete-multipart.xml", "py.multipart.complete");
    assert_eq!(r.location.as_deref(), Some(s(&e["Location"])));
    assert_eq!(r.bucket.as_deref(), Some(s(&e["Bucket"])));
    assert_eq!(r.key.as_deref(), Some(s(&e["Key"])));
    assert_eq!(r.etag.as_deref(), Some(s(&e["ETag"])));
    assert_eq!(root_name(&body), Some("CompleteMultipartUploadResult"));
}

#[test]
fn list_parts_matches_sdks() {
    let r: ListPartsResult = parse(&sample("response-list-parts.xml")).unwrap();
    let e = expected("response-list-parts.xml", "py.multipart.list_parts");
    assert_eq!(r.bucket, s(&e["Bucket"]));
    assert_eq!(r.encoding_type.as_deref(), Some(s(&e["EncodingType"])));
    assert_eq!(r.key, s(&e["Key"]));
    assert_eq!(r.upload_id, s(&e["UploadId"]));
    check_principal(&r.initiator, &e["Initiator"]);
    check_principal(&r.owner, &e["Owner"]);
    assert_eq!(
        r.part_number_marker.as_deref(),
        Some(s(&e["PartNumberMarker"]))
    );
    let ep = e["Part"].as_array().unwrap();
    assert_eq!(r.parts.len(), ep.len());
    for (p, x) in r.parts.iter().zip(ep) {
        assert_eq!(p.part_number, s(&x["PartNumber"]));
        assert_eq!(p.last_modified, s(&x["LastModified"]));
        assert_eq!(p.etag, s(&x["ETag"]));
        assert_eq!(p.size, s(&x["Size"]));
    }
    assert_eq!(
        r.next_part_number_marker.as_deref(),
        Some(s(&e["NextPartNumberMarker"]))
    );
    assert_eq!(r.storage_class.as_deref(), Some(s(&e["StorageClass"])));
    assert_eq!(r.max_parts.as_deref(), Some(s(&e["MaxParts"])));
    assert_eq!(r.is_truncated, s(&e["IsTruncated"]));
}

#[test]
fn list_uploads_matches_sdks() {
    let r: ListUploadsResult = parse(&sample("response-list-multipart-uploads.xml")).unwrap();
    let e = expected(
        "response-list-multipart-uploads.xml",
        "py.multipart.list_uploads",
    );
    assert_eq!(r.bucket, s(&e["Bucket"]));
    assert_eq!(r.encoding_type.as_deref(), Some(s(&e["EncodingType"])));
    assert_eq!(r.key_marker.clone().unwrap_or_default(), "");
    assert_eq!(r.upload_id_marker.clone().unwrap_or_default(), "");
    assert_eq!(r.max_uploads.as_deref(), Some(s(&e["MaxUploads"])));
    assert_eq!(r.prefix.as_deref(), Some(s(&e["Prefix"])));
    assert_eq!(r.delimiter.as_deref(), Some(s(&e["Delimiter"])));
    assert_eq!(r.is_truncated, s(&e["IsTruncated"]));
    let eu = &e["Upload"][0];
    assert_eq!(r.uploads.len(), 1);
    let u = &r.uploads[0];
    assert_eq!(u.key, s(&eu["Key"]));
    assert_eq!(u.upload_id, s(&eu["UploadId"]));
    assert_eq!(u.storage_class.as_deref(), Some(s(&eu["StorageClass"])));
    check_principal(&u.initiator, &eu["Initiator"]);
    check_principal(&u.owner, &eu["Owner"]);
    assert_eq!(u.initiated, s(&eu["Initiated"]));
    assert_eq!(r.common_prefixes.len(), 1);
    assert_eq!(
        r.common_prefixes[0].prefix,
        s(&e["CommonPrefixes"][0]["Prefix"])
    );
}

#[test]
fn list_uploads_accepts_hyphenated_encoding_type_and_ctime_dates() {
    let body = "<ListMultipartUploadsResult><Bucket>b-1</Bucket><Encoding-Type>url</Encoding-Type>\
        <IsTruncated>false</IsTruncated><Upload><Key>a%20b</Key><UploadId>u</UploadId>\
        <Initiated>Wed Jan 18 16:04:17 2017</Initiated></Upload></ListMultipartUploadsResult>";
    let r: ListUploadsResult = parse(body).unwrap();
    assert_eq!(r.encoding_type.as_deref(), Some("url"));
    let t = parse_date(&r.uploads[0].initiated).expect("ctime date");
    assert_eq!(t, parse_date("2017-01-18T16:04:17Z").unwrap());
}

#[test]
fn copy_results_match_sdks() {
    for (file, case) in [
        ("response-copy-object.xml", "py.copy_object.replaced"),
        ("response-copy-part.xml", "py.multipart.upload_part_copy"),
    ] {
        let r: CopyResult = parse(&sample(file)).unwrap();
        let e = expected(file, case);
        assert_eq!(r.etag.as_deref(), Some(s(&e["ETag"])));
        assert_eq!(r.crc64.as_deref(), Some(s(&e["CRC64"])));
        assert_eq!(r.last_modified.as_deref(), Some(s(&e["LastModified"])));
        // CRC64 values exceed i64::MAX; they must parse as u64.
        assert!(r.crc64.unwrap().parse::<u64>().is_ok());
    }
}

#[test]
fn error_samples_match_sdks() {
    let cases = [
        ("error-nosuchkey.xml", "py.get_object.nosuchkey"),
        (
            "error-invalidobjectstate.xml",
            "py.get_object.archive_not_restored",
        ),
        (
            "error-restore-already-in-progress.xml",
            "py.restore_object.already_in_progress",
        ),
        (
            "error-precondition-failed.xml",
            "py.get_object.precondition_failed",
        ),
        ("error-invalid-range.xml", "py.get_object.invalid_range"),
        (
            "error-slowdown.xml",
            "py.get_object.slowdown_with_one_retry",
        ),
        (
            "error-signature-does-not-match.xml",
            "py.get_object.signature_mismatch",
        ),
        (
            "error-in-200-copy-response.xml",
            "py.copy_object.200_with_error_body",
        ),
    ];
    for (file, case) in cases {
        let body = sample(file);
        assert_eq!(root_name(&body), Some("Error"), "{file}");
        let r: ErrorBody = parse(&body).unwrap();
        let e = expected(file, case);
        assert_eq!(r.code, s(&e["code"]), "{file}");
        assert_eq!(r.message, s(&e["message"]), "{file}");
        assert_eq!(r.request_id.as_deref(), Some(s(&e["request_id"])), "{file}");
        assert_eq!(r.trace_id.as_deref(), Some(s(&e["trace_id"])), "{file}");
    }
    // Samples for which only Node recorded the full error document.
    let r: ErrorBody = parse(&sample("error-cors-access-forbidden.xml")).unwrap();
    assert_eq!(r.code, "AccessForbidden");
    assert!(r.message.contains("resource's CORS spec"));
    let r: ErrorBody = parse(&sample("error-request-has-expired.xml")).unwrap();
    assert_eq!(
        (r.code.as_str(), r.message.as_str()),
        ("AccessDenied", "Request has expired")
    );
    let r: ErrorBody = parse(&sample("error-signature-does-not-match.xml")).unwrap();
    assert!(r
        .format_string
        .unwrap()
        .starts_with("get\n/exampleobject.txt\n"));
    assert!(r
        .string_to_sign
        .unwrap()
        .starts_with("sha1\n1700000000;1700003600\n"));
    let e = expected("error-nosuchkey.xml", "node.getObject.nosuchkey");
    let r: ErrorBody = parse(&sample("error-nosuchkey.xml")).unwrap();
    assert_eq!(r.resource.as_deref(), Some(s(&e["error"]["Resource"])));
}

#[test]
fn delete_request_serializes_and_parses_back() {
    let req = DeleteRequest {
        quiet: false,
        objects: vec![
            ObjectIdentifier {
                key: "docs/a.txt".into(),
                version_id: None,
            },
            ObjectIdentifier {
                key: "docs/目录/文件 b.txt".into(),
                version_id: None,
            },
            ObjectIdentifier {
                key: "docs/locked.txt".into(),
                version_id: Some("MTg0NDUxNTc1NjIzMTQ1MDAwODg".into()),
            },
        ],
    };
    let xml = to_xml("Delete", &req).unwrap();
    // The Python SDK's body is exactly this, after its XML declaration.
    let py = sample("request-delete-multiple.python.xml");
    assert_eq!(py.lines().nth(1).unwrap().trim(), xml);
    // Both SDK forms (Quiet first or last) parse to the same request.
    for f in [
        "request-delete-multiple.python.xml",
        "request-delete-multiple.nodejs.xml",
    ] {
        let back: DeleteRequest = parse(&sample(f)).unwrap();
        assert_eq!(back, req, "{f}");
    }
}

#[test]
fn restore_request_serializes_as_sdks_do() {
    let req = RestoreRequest {
        days: 1,
        job: CasJobParameters {
            tier: "Bulk".into(),
        },
    };
    let xml = to_xml("RestoreRequest", &req).unwrap();
    assert_eq!(xml, sample("request-restore.nodejs.xml").trim());
    let back: RestoreRequest = parse(&sample("request-restore.python.xml")).unwrap();
    assert_eq!(back.days, 1);
    assert_eq!(back.job.tier, "Expedited");
}

#[test]
fn complete_request_serializes_as_sdks_do() {
    let req = CompleteRequest {
        parts: vec![
            CompletePart {
                part_number: 1,
                etag: quote_etag("ba82b57cfdfda8bd17ad4e5879ebb4fe"),
            },
            CompletePart {
                part_number: 2,
                etag: quote_etag("\"e1bb8b4e0b0f6b3c3a2b1f1c0c5d2f9a\""),
            },
        ],
    };
    let xml = to_xml("CompleteMultipartUpload", &req).unwrap();
    assert_eq!(xml, sample("request-complete-multipart.nodejs.xml").trim());
    let back: CompleteRequest = parse(&sample("request-complete-multipart.python.xml")).unwrap();
    assert_eq!(back, req);
}

#[test]
fn acl_request_uses_documented_xsi_attribute_form() {
    let owner = "qcs::cam::uin/100000000001:uin/100000000001";
    let req = AclPolicy {
        owner: Principal {
            id: owner.into(),
            display_name: None,
        },
        list: AccessControlList {
            grants: vec![
                GrantXml {
                    grantee: GranteeXml::documented(
                        "CanonicalUser",
                        Some("qcs::cam::uin/100000000001:uin/100000000011".into()),
                        None,
                    ),
                    permission: "FULL_CONTROL".into(),
                },
                GrantXml {
                    grantee: GranteeXml::documented(
                        "Group",
                        None,
                        Some("http://cam.qcloud.com/groups/global/AllUsers".into()),
                    ),
                    permission: "READ".into(),
                },
            ],
        },
    };
    let xml = to_xml("AccessControlPolicy", &req).unwrap();
    let py = sample("request-acl-policy.python-xsi-attribute.xml");
    assert_eq!(py.lines().nth(1).unwrap().trim(), xml);
    let back: AclPolicy = parse(&xml).unwrap();
    assert_eq!(back, req);
    // The other two SDK forms parse with the type inferred.
    let t: AclPolicy = parse(&sample("request-acl-policy.python-type-element.xml")).unwrap();
    let kinds: Vec<&str> = t.list.grants.iter().map(|g| g.grantee.kind()).collect();
    assert_eq!(kinds, ["CanonicalUser", "Group"]);
    let n: AclPolicy = parse(&sample("request-acl-policy.nodejs-no-type.xml")).unwrap();
    assert_eq!(n.list.grants[0].grantee.kind(), "CanonicalUser");
    assert_eq!(n.owner.id, owner);
}

#[test]
fn default_namespace_is_ignored() {
    let body = "<?xml version='1.0'?>\n<InitiateMultipartUploadResult xmlns=\"http://www.qcloud.com/document/product/436/7751\">\
        <Bucket>b-1</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>";
    let r: InitiateResult = parse(body).unwrap();
    assert_eq!(r.upload_id, "u1");
    assert_eq!(root_name(body), Some("InitiateMultipartUploadResult"));
}

#[test]
fn every_date_form_parses_to_the_same_instant() {
    let want = parse_date("Fri, 10 Apr 2020 18:17:25 GMT").expect("rfc1123");
    for f in [
        "2020-04-10T18:17:25.000Z",
        "2020-04-10T18:17:25Z",
        "2020-04-10T18:17:25",
        "Fri Apr 10 18:17:25 2020",
    ] {
        assert_eq!(parse_date(f), Some(want), "{f}");
    }
    assert_eq!(parse_date("yesterday"), None);
    assert_eq!(parse_date(""), None);
}

#[test]
fn etag_quoting_round_trips() {
    assert_eq!(unquote_etag("\"abc\""), "abc");
    assert_eq!(unquote_etag("abc"), "abc");
    assert_eq!(quote_etag("abc"), "\"abc\"");
    assert_eq!(quote_etag("\"abc\""), "\"abc\"");
}
