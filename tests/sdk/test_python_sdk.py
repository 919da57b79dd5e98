#!/usr/bin/env python3
"""Tencent's official Python SDK (cos-python-sdk-v5) against cosfuse-emulator.

Owns: driving every object operation of issue 2 item 3 through the official SDK (and, where the
SDK has no helper, through plain `requests` built the way a browser or `curl` would) and checking
each answer against docs/protocol.md.

Configuration comes from the environment (tests/sdk/run.sh sets it):
  EMULATOR_ADDR   127.0.0.1:PORT the emulator listens on (required)
  COS_BUCKET      bucket created at emulator start (default examplebucket-1250000000)
  COS_REGION      region used in the virtual-hosted Host header (default ap-guangzhou)
  COS_SECRET_ID / COS_SECRET_KEY  the emulator's credentials (required)

Addressing: the SDK's "IP mode" (CosConfig(IP='127.0.0.1', Port=PORT)) connects to the emulator
but keeps the real virtual-hosted Host header `<bucket>.cos.<region>.myqcloud.com` and signs it,
exactly as against COS (docs/protocol.md §2 option (a); observed-requests.json "how_captured").

Output: one line per failed check (with the last HTTP exchange, for the emulator's owner), then
a closing line `N passed, M failed`; the exit status is non-zero when anything failed.
"""

import base64
import collections
import datetime
import email.utils
import gzip
import hashlib
import hmac
import json
import os
import sys
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import crcmod  # a dependency of cos-python-sdk-v5; the SDK verifies downloads with it
import requests
from qcloud_cos import CosConfig, CosS3Client, CosServiceError
from qcloud_cos.cos_auth import CosS3Auth

ADDR = os.environ.get("EMULATOR_ADDR", "")
BUCKET = os.environ.get("COS_BUCKET", "examplebucket-1250000000")
REGION = os.environ.get("COS_REGION", "ap-guangzhou")
SID = os.environ.get("COS_SECRET_ID", "")
SKEY = os.environ.get("COS_SECRET_KEY", "")
VHOST = "%s.cos.%s.myqcloud.com" % (BUCKET, REGION)
# A per-run key prefix keeps the script re-runnable against a long-lived emulator. The `_`
# keeps it from ever looking like a NAME-APPID bucket segment (e.g. "sdk-52153957"), which an
# IP-mode path would otherwise be read as, by COS's rules, rather than as a key.
RUN = "sdk_%s/" % os.urandom(4).hex()
# Bound on every polling loop (restore completion); generous for a loaded CI machine.
POLL_DEADLINE_S = 60.0
OWNER_UIN = "qcs::cam::uin/100000000001:uin/100000000001"
SUB_UIN_A = "qcs::cam::uin/100000000001:uin/100000000011"
SUB_UIN_B = "qcs::cam::uin/100000000001:uin/100000000022"
ALL_USERS = "http://cam.qcloud.com/groups/global/AllUsers"

# The documented POST Object policy example (cos-vectors/signature.json -> post_object_policy),
# used to prove this script's form signer before trusting it against the emulator.
POST_POLICY_VECTOR = {
    "secret_key": 'BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz',
    "key_time": '1567150692;1567157892',
    "policy_json_text": '{\n    "expiration": "2019-08-30T09:38:12.414Z",\n    "conditions": [\n        { "acl": "default" },\n        { "bucket": "examplebucket-1250000000" },\n        [ "starts-with", "$key", "folder/subfolder/" ],\n        [ "starts-with", "$Content-Type", "image/" ],\n        [ "starts-with", "$success_action_redirect", "https://my.website/" ],\n        [ "eq", "$x-cos-server-side-encryption", "AES256" ],\n        { "q-sign-algorithm": "sha1" },\n        { "q-ak": "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q" },\n        { "q-sign-time": "1567150692;1567157892" }\n    ]\n}',
    "signature": '7758dc9a832e9d301dca704cacbf9d9f8172fdef',
}

_CRC64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)


def crc64(data):
    """x-cos-hash-crc64ecma of `data` as the unsigned decimal string COS sends."""
    return str(_CRC64(data))


def md5hex(data):
    return hashlib.md5(data).hexdigest()


def quoted_md5(data):
    return '"%s"' % md5hex(data)


def multipart_etag(parts):
    """S3-convention multipart ETag the protocol doc (§6) asks the emulator to use."""
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return '"%s-%d"' % (digest, len(parts))


def lower_keys(headers):
    return {k.lower(): v for k, v in headers.items()}


def http_date(ts):
    return email.utils.formatdate(ts, usegmt=True)


def parse_http_date(value):
    return email.utils.parsedate_to_datetime(value).timestamp()


# --------------------------------------------------------------------------------------------
# Recording every HTTP exchange, so a failed check can show the emulator's owner what was sent
# and what came back, and so checks can see statuses the SDK hides (304, 202, 204).
# --------------------------------------------------------------------------------------------


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.exchanges = collections.deque(maxlen=50)

    def hook(self, response, *args, **kwargs):
        with self.lock:
            self.exchanges.append(response)
        return response

    def last(self):
        with self.lock:
            return self.exchanges[-1] if self.exchanges else None

    def describe_last(self):
        r = self.last()
        if r is None:
            return "  (no HTTP exchange recorded)"
        req = r.request
        lines = ["  last exchange: %s %s" % (req.method, req.url)]
        lines.append("    request headers: %s" % dict(req.headers))
        body = req.body
        if isinstance(body, bytes) and len(body) < 2000:
            lines.append("    request body: %r" % body)
        lines.append("    -> %s %s" % (r.status_code, dict(r.headers)))
        if r._content_consumed and isinstance(r._content, bytes):
            lines.append("    response body: %r" % r._content[:1500])
        return "\n".join(lines)


RECORDER = Recorder()


def new_session():
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=10, pool_maxsize=16)
    session.mount("http://", adapter)
    session.hooks["response"].append(RECORDER.hook)
    return session


SESSION = new_session()


def last_status():
    r = RECORDER.last()
    return r.status_code if r is not None else None


# --------------------------------------------------------------------------------------------
# A minimal check harness: counts checks, never stops at the first failure.
# --------------------------------------------------------------------------------------------


class Harness:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.test = ""

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            return True
        self.failed += 1
        print("FAIL [%s] %s%s" % (self.test, name, (": " + detail) if detail else ""))
        print(RECORDER.describe_last())
        return False

    def eq(self, name, actual, expected):
        return self.check(name, actual == expected, "expected %r, got %r" % (expected, actual))

    def error(self, name, fn, status, code=None, message=None):
        """Call fn; it must raise CosServiceError with `status` (and `code`, `message`)."""
        try:
            fn()
        except CosServiceError as e:
            ok = e.get_status_code() == status and (code is None or e.get_error_code() == code)
            if ok and message is not None:
                ok = e.get_error_msg() == message
            return self.check(
                name,
                ok,
                "expected %s %s %s, got %s %s %r"
                % (status, code, message or "", e.get_status_code(), e.get_error_code(), e.get_digest_msg()),
            )
        return self.check(name, False, "expected %s %s, but the call succeeded" % (status, code))

    def attempt(self, name, fn):
        """Call fn and return its result; an exception is one failed check (the test goes on)."""
        try:
            result = fn()
        except Exception as e:  # reported like a failed check, so later independent checks still run
            self.check(name, False, "raised %s: %s" % (type(e).__name__, str(e)[:300]))
            return None
        self.passed += 1
        return result

    def run(self, fn):
        self.test = fn.__name__
        started = time.time()
        try:
            fn()
        except Exception:  # any crash is a failed check, reported with its traceback
            self.failed += 1
            print("FAIL [%s] raised:\n%s" % (self.test, traceback.format_exc(chain=False)))
            print(RECORDER.describe_last())
        print("ran %s (%.1fs)" % (self.test, time.time() - started))


H = Harness()


def make_client(secret_id=None, secret_key=None, ip_mode=True, retry=1):
    """An SDK client pointed at the emulator in the SDK's IP mode (virtual-hosted Host kept)."""
    kwargs = dict(Region=REGION, SecretId=secret_id or SID, SecretKey=secret_key or SKEY, Scheme="http")
    if ip_mode:
        host, port = ADDR.rsplit(":", 1)
        kwargs.update(IP=host, Port=int(port))
    return CosS3Client(CosConfig(**kwargs), retry=retry, session=SESSION)


CLIENT = None  # set in main()


def body_of(resp):
    """The raw bytes of a get_object answer, never decompressed (Content-Encoding is metadata)."""
    return resp["Body"].get_raw_stream().read(decode_content=False)


def head(key, **kwargs):
    return lower_keys(CLIENT.head_object(Bucket=BUCKET, Key=key, **kwargs))


def put(key, data, **kwargs):
    return lower_keys(CLIENT.put_object(Bucket=BUCKET, Key=key, Body=data, **kwargs))


def exists(key):
    try:
        CLIENT.head_object(Bucket=BUCKET, Key=key)
        return True
    except CosServiceError as e:
        if e.get_status_code() == 404:
            return False
        raise


def to_emulator(url):
    """Rewrite a virtual-hosted URL so it connects to the emulator; returns (url, Host header)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, ADDR, parts.path, parts.query, parts.fragment)), parts.netloc


def anon(method, key, headers=None, params=None):
    """A plain unauthenticated HTTP request, as a browser would send it to the bucket domain."""
    h = {"Host": VHOST}
    h.update(headers or {})
    url = "http://%s/%s" % (ADDR, quote(key, safe="/-_.~"))
    return SESSION.request(method, url, headers=h, params=params)


def stats():
    """The emulator's per-operation request counters (GET /-/stats on its own address)."""
    r = SESSION.get("http://%s/-/stats" % ADDR)
    return r.json().get("requests", {}) if r.status_code == 200 else {}


def stats_delta(before, after, names):
    return {n: after.get(n, 0) - before.get(n, 0) for n in names}


def xml_code(response):
    """The <Code> of an XML error body, or None."""
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError:
        return None
    node = root.find("Code")
    return node.text if node is not None else None


# --------------------------------------------------------------------------------------------
# PUT Object
# --------------------------------------------------------------------------------------------


def test_put_object_headers():
    key = RUN + "put/report.txt.gz"
    plain = ("hello cos " * 300).encode()
    data = gzip.compress(plain)
    expires = "Wed, 21 Oct 2037 07:28:00 GMT"
    resp = put(
        key,
        data,
        EnableMD5=True,
        CacheControl="max-age=3600",
        ContentDisposition='attachment; filename="report.txt"',
        ContentEncoding="gzip",
        ContentType="text/plain; charset=utf-8",
        Expires=expires,
        GrantRead='id="%s"' % SUB_UIN_A,
        GrantFullControl='id="%s"' % OWNER_UIN,
        StorageClass="STANDARD_IA",
        Metadata={"x-cos-meta-author": "alice", "x-cos-meta-Project": "Cosfuse"},
    )
    sent = RECORDER.last().request.headers
    H.eq("SDK sent Content-MD5 (EnableMD5)", (sent.get("Content-MD5") or b"").decode() if isinstance(sent.get("Content-MD5"), bytes) else sent.get("Content-MD5"),
         base64.b64encode(hashlib.md5(data).digest()).decode())
    H.eq("put ETag is the quoted MD5 of the body", resp.get("etag"), quoted_md5(data))
    H.eq("put x-cos-hash-crc64ecma is the CRC64 of the body", resp.get("x-cos-hash-crc64ecma"), crc64(data))
    H.check("put answers x-cos-request-id", bool(resp.get("x-cos-request-id")))
    h = head(key)
    H.eq("head Content-Length", h.get("content-length"), str(len(data)))
    H.eq("head Content-Type", h.get("content-type"), "text/plain; charset=utf-8")
    H.eq("head Cache-Control", h.get("cache-control"), "max-age=3600")
    H.eq("head Content-Disposition", h.get("content-disposition"), 'attachment; filename="report.txt"')
    H.eq("head Content-Encoding", h.get("content-encoding"), "gzip")
    H.check("head Expires", h.get("expires") is not None and parse_http_date(h["expires"]) == parse_http_date(expires),
            "got %r" % h.get("expires"))
    H.eq("head x-cos-storage-class", h.get("x-cos-storage-class"), "STANDARD_IA")
    H.eq("head x-cos-meta-author", h.get("x-cos-meta-author"), "alice")
    H.eq("head user metadata names come back lower-case", h.get("x-cos-meta-project"), "Cosfuse")
    H.eq("head ETag", h.get("etag"), quoted_md5(data))
    H.eq("head CRC64", h.get("x-cos-hash-crc64ecma"), crc64(data))
    got = CLIENT.get_object(Bucket=BUCKET, Key=key)
    H.eq("get returns the stored (gzip) bytes", body_of(got), data)
    acl = CLIENT.get_object_acl(Bucket=BUCKET, Key=key)
    grants = grant_set(acl)
    H.check("x-cos-grant-read stored", ("id", SUB_UIN_A, "READ") in grants, "grants %r" % grants)
    H.check("x-cos-grant-full-control stored", ("id", OWNER_UIN, "FULL_CONTROL") in grants, "grants %r" % grants)

    public_key = RUN + "put/public.txt"
    put(public_key, b"for everyone", ACL="public-read")
    r = anon("GET", public_key)
    H.eq("put with x-cos-acl public-read: anonymous GET -> 200", (r.status_code, r.content), (200, b"for everyone"))
    private_key = RUN + "put/private.txt"
    put(private_key, b"for me", ACL="private")
    H.eq("put with x-cos-acl private: anonymous GET -> 403", anon("GET", private_key).status_code, 403)

    plain_key = RUN + "put/plain.bin"
    resp = put(plain_key, b"no type given")
    H.eq("put without Content-Type: ETag", resp.get("etag"), quoted_md5(b"no type given"))
    h = head(plain_key)
    H.eq("missing Content-Type stored as application/octet-stream", h.get("content-type"),
         "application/octet-stream")
    H.check("STANDARD object has no x-cos-storage-class header", "x-cos-storage-class" not in h,
            "got %r" % h.get("x-cos-storage-class"))

    wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    H.error("Content-MD5 mismatch -> 400 BadDigest",
            lambda: put(RUN + "put/bad-md5", b"payload", ContentMD5=wrong_md5), 400, "BadDigest")
    H.check("object with a bad Content-MD5 was not stored", not exists(RUN + "put/bad-md5"))


# --------------------------------------------------------------------------------------------
# HEAD / GET Object
# --------------------------------------------------------------------------------------------


def test_head_object():
    key = RUN + "head/obj.txt"
    data = b"0123456789abcdef"
    put(key, data)
    h = head(key)
    H.eq("head Content-Length", h.get("content-length"), str(len(data)))
    H.check("head Last-Modified is an RFC 1123 date", h.get("last-modified", "").endswith(" GMT"),
            "got %r" % h.get("last-modified"))
    lm = parse_http_date(h["last-modified"])
    H.eq("head x-cos-object-type", h.get("x-cos-object-type"), "normal")
    H.check("head answers a Date header", bool(h.get("date")))

    # The SDK treats every 3xx as success, so a 304 comes back as a header dict; the status is
    # read from the recorded exchange.
    CLIENT.head_object(Bucket=BUCKET, Key=key, IfModifiedSince=http_date(lm))
    H.eq("HEAD If-Modified-Since=Last-Modified -> 304", last_status(), 304)
    CLIENT.head_object(Bucket=BUCKET, Key=key, IfModifiedSince=http_date(lm - 86400))
    H.eq("HEAD If-Modified-Since a day earlier -> 200", last_status(), 200)
    CLIENT.head_object(Bucket=BUCKET, Key=key, IfNoneMatch=h["etag"])
    H.eq("HEAD If-None-Match=ETag -> 304", last_status(), 304)
    H.error("HEAD If-Match other ETag -> 412", lambda: head(key, IfMatch='"0000"'), 412)
    H.error("HEAD If-Unmodified-Since earlier -> 412",
            lambda: head(key, IfUnmodifiedSince=http_date(lm - 86400)), 412)
    H.error("HEAD of a missing key -> 404 (SDK: NoSuchResource)",
            lambda: head(RUN + "head/missing"), 404, "NoSuchResource")


def get_status_of(**kwargs):
    """get_object and return (status, body or None); 304 answers may not be streamable."""
    try:
        resp = CLIENT.get_object(Bucket=BUCKET, Key=kwargs.pop("Key"), **kwargs)
        return last_status(), body_of(resp)
    except IOError:
        # StreamBody refuses a response without Content-Length/chunking (a bodiless 304).
        return last_status(), None


def test_get_object():
    key = RUN + "get/data.bin"
    data = bytes(range(256)) * 40  # 10240 bytes
    put(key, data, ContentType="application/x-data")
    h = head(key)
    lm = parse_http_date(h["last-modified"])
    etag = h["etag"]

    resp = CLIENT.get_object(Bucket=BUCKET, Key=key)
    r = lower_keys(resp)
    H.eq("GET body", body_of(resp), data)
    H.eq("GET status", last_status(), 200)
    H.eq("GET Accept-Ranges", r.get("accept-ranges"), "bytes")
    H.eq("GET CRC64", r.get("x-cos-hash-crc64ecma"), crc64(data))

    resp = CLIENT.get_object(Bucket=BUCKET, Key=key, Range="bytes=100-199")
    r = lower_keys(resp)
    H.eq("Range bytes=100-199 body", body_of(resp), data[100:200])
    H.eq("Range -> 206", last_status(), 206)
    H.eq("Range Content-Range", r.get("content-range"), "bytes 100-199/%d" % len(data))
    H.eq("Range Content-Length", r.get("content-length"), "100")
    H.eq("ranged GET keeps the whole-object CRC64", r.get("x-cos-hash-crc64ecma"), crc64(data))
    H.eq("ranged GET keeps the whole-object ETag", r.get("etag"), quoted_md5(data))
    resp = CLIENT.get_object(Bucket=BUCKET, Key=key, Range="bytes=10200-")
    H.eq("Range bytes=10200- body", body_of(resp), data[10200:])
    resp = CLIENT.get_object(Bucket=BUCKET, Key=key, Range="bytes=-16")
    H.eq("Range bytes=-16 (suffix) body", body_of(resp), data[-16:])
    H.error("Range past EOF -> 416 InvalidRange",
            lambda: CLIENT.get_object(Bucket=BUCKET, Key=key, Range="bytes=20000-20010"), 416, "InvalidRange")
    H.eq("416 carries Content-Range bytes */size",
         RECORDER.last().headers.get("Content-Range"), "bytes */%d" % len(data))

    resp = CLIENT.get_object(
        Bucket=BUCKET,
        Key=key,
        ResponseContentType="text/x-override",
        ResponseContentLanguage="zh-CN",
        ResponseExpires="Thu, 01 Jan 2037 00:00:00 GMT",
        ResponseCacheControl="no-cache",
        ResponseContentDisposition='attachment; filename="o.bin"',
        ResponseContentEncoding="identity",
    )
    r = lower_keys(resp)
    H.eq("response-content-type override", r.get("content-type"), "text/x-override")
    H.eq("response-content-language override", r.get("content-language"), "zh-CN")
    H.eq("response-expires override", r.get("expires"), "Thu, 01 Jan 2037 00:00:00 GMT")
    H.eq("response-cache-control override", r.get("cache-control"), "no-cache")
    H.eq("response-content-disposition override", r.get("content-disposition"), 'attachment; filename="o.bin"')
    H.eq("response-content-encoding override", r.get("content-encoding"), "identity")
    H.eq("overrides leave the body alone", body_of(resp), data)

    status, body = get_status_of(Key=key, IfMatch=etag)
    H.eq("GET If-Match=ETag -> 200", (status, body), (200, data))
    H.error("GET If-Match other -> 412 PreconditionFailed",
            lambda: CLIENT.get_object(Bucket=BUCKET, Key=key, IfMatch='"deadbeef"'), 412, "PreconditionFailed")
    status, _ = get_status_of(Key=key, IfNoneMatch=etag)
    H.eq("GET If-None-Match=ETag -> 304", status, 304)
    status, body = get_status_of(Key=key, IfNoneMatch='"deadbeef"')
    H.eq("GET If-None-Match other -> 200", (status, body), (200, data))
    status, _ = get_status_of(Key=key, IfModifiedSince=http_date(lm))
    H.eq("GET If-Modified-Since=Last-Modified -> 304", status, 304)
    status, body = get_status_of(Key=key, IfModifiedSince=http_date(lm - 86400))
    H.eq("GET If-Modified-Since earlier -> 200", (status, body), (200, data))
    H.error("GET If-Unmodified-Since earlier -> 412 PreconditionFailed",
            lambda: CLIENT.get_object(Bucket=BUCKET, Key=key, IfUnmodifiedSince=http_date(lm - 86400)),
            412, "PreconditionFailed")
    status, body = get_status_of(Key=key, IfUnmodifiedSince=http_date(lm))
    H.eq("GET If-Unmodified-Since=Last-Modified -> 200", (status, body), (200, data))
    H.error("GET of a missing key -> 404 NoSuchKey",
            lambda: CLIENT.get_object(Bucket=BUCKET, Key=RUN + "get/missing"), 404, "NoSuchKey")


# --------------------------------------------------------------------------------------------
# GET Bucket (list objects)
# --------------------------------------------------------------------------------------------

LIST_NAMES = ["a.txt", "b.txt", "dir1/x", "dir1/y", "dir2/z", "plus+sign.txt", "space name.txt", "中文.txt"]


def test_list_objects():
    base = RUN + "list/"
    bodies = {}
    for name in LIST_NAMES:
        bodies[base + name] = ("content of %s" % name).encode()
        put(base + name, bodies[base + name])
    all_keys = sorted(bodies)  # str order == UTF-8 byte order

    res = CLIENT.list_objects(Bucket=BUCKET, Prefix=base)
    contents = res.get("Contents", [])
    H.eq("prefix listing: keys in UTF-8 byte order (SDK decoded encoding-type=url)",
         [c["Key"] for c in contents], all_keys)
    H.eq("prefix listing: IsTruncated", res.get("IsTruncated"), "false")
    H.eq("listing Name", res.get("Name"), BUCKET)
    first = contents[0] if contents else {}
    H.eq("listing ETag", first.get("ETag"), quoted_md5(bodies[base + "a.txt"]))
    H.eq("listing Size", first.get("Size"), str(len(bodies[base + "a.txt"])))
    H.eq("listing StorageClass", first.get("StorageClass"), "STANDARD")
    H.check("listing LastModified is ISO 8601 UTC", str(first.get("LastModified", "")).endswith("Z"),
            "got %r" % first.get("LastModified"))

    res = CLIENT.list_objects(Bucket=BUCKET, Prefix=base, Delimiter="/")
    files = [c["Key"] for c in res.get("Contents", [])]
    prefixes = [p["Prefix"] for p in res.get("CommonPrefixes", [])]
    H.eq("delimiter listing: Contents",
         files, [base + n for n in ["a.txt", "b.txt", "plus+sign.txt", "space name.txt", "中文.txt"]])
    H.eq("delimiter listing: CommonPrefixes", prefixes, [base + "dir1/", base + "dir2/"])
    H.eq("delimiter listing: Delimiter echoed", res.get("Delimiter"), "/")

    # Paging to the end with max-keys=2: CommonPrefixes count towards max-keys and NextMarker
    # is the last key or prefix of the page.
    expected_entries = sorted(files + prefixes)
    seen, marker, pages, ok_pages = [], "", 0, True
    while pages < 20:
        pages += 1
        res = CLIENT.list_objects(Bucket=BUCKET, Prefix=base, Delimiter="/", Marker=marker, MaxKeys=2)
        page = [c["Key"] for c in res.get("Contents", [])] + [p["Prefix"] for p in res.get("CommonPrefixes", [])]
        ok_pages = ok_pages and len(page) <= 2
        seen.extend(sorted(page))
        if res.get("IsTruncated") != "true":
            break
        H.eq("page %d NextMarker is its last entry" % pages, res.get("NextMarker"), max(page) if page else None)
        marker = res.get("NextMarker") or ""
        if not marker:
            break
    H.check("every page holds at most max-keys entries (prefixes counted)", ok_pages)
    H.eq("paging with delimiter reaches every entry exactly once", seen, expected_entries)
    H.eq("paging with delimiter takes 4 pages", pages, 4)

    seen, marker, pages = [], "", 0
    while pages < 20:
        pages += 1
        res = CLIENT.list_objects(Bucket=BUCKET, Prefix=base, Marker=marker, MaxKeys=3)
        seen.extend(c["Key"] for c in res.get("Contents", []))
        if res.get("IsTruncated") != "true":
            break
        H.check("NextMarker present when truncated without delimiter", bool(res.get("NextMarker")))
        marker = res.get("NextMarker") or ""
        if not marker:
            break
    H.eq("paging without delimiter reaches every key", seen, all_keys)

    res = CLIENT.list_objects(Bucket=BUCKET, Prefix=base, Marker=base + "dir2/z")
    H.eq("marker lists keys strictly after it", [c["Key"] for c in res.get("Contents", [])],
         [base + n for n in ["plus+sign.txt", "space name.txt", "中文.txt"]])
    H.eq("Marker echoed", res.get("Marker"), base + "dir2/z")

    res = CLIENT.list_objects(Bucket=BUCKET, Prefix=base, Delimiter="/", EncodingType="url")
    raw = [c["Key"] for c in res.get("Contents", [])]
    H.eq("EncodingType=url echoed", res.get("EncodingType"), "url")
    H.eq("encoding-type=url: keys percent-encoded, '/' kept, space %20, '+' %2B",
         raw, [quote(base + n, safe="/-_.~") for n in ["a.txt", "b.txt", "plus+sign.txt", "space name.txt", "中文.txt"]])
    H.eq("encoding-type=url: keys decode back", [unquote(k) for k in raw],
         [base + n for n in ["a.txt", "b.txt", "plus+sign.txt", "space name.txt", "中文.txt"]])
    H.eq("encoding-type=url: CommonPrefixes", [p["Prefix"] for p in res.get("CommonPrefixes", [])],
         [base + "dir1/", base + "dir2/"])

    res = CLIENT.list_objects(Bucket=BUCKET, Prefix=RUN + "no-such-prefix/")
    H.eq("empty listing has no Contents", res.get("Contents", []), [])
    H.error("two-character delimiter -> 400 InvalidDelimiter",
            lambda: CLIENT.list_objects(Bucket=BUCKET, Prefix=base, Delimiter="//"), 400, "InvalidDelimiter")


# Keys the SDK must carry byte-exactly: the signed path is the decoded key, '+' is not a space,
# and './', '../' and '//' are never resolved or collapsed (docs/protocol.md §1.6, §2).
ODD_NAMES = ["a+b c.txt", "pct%41.txt", "hash#q?amp&eq=.txt", "dot/./x.txt", "dotdot/../y.txt",
             "double//slash.txt", "trailing space ", "tilde~star*(1)!.txt", "日本語/ファイル.txt"]


def test_odd_keys():
    base = RUN + "odd/"
    for name in ODD_NAMES:
        body = ("body of " + name).encode()
        key = base + name
        resp = H.attempt("put %r" % name, lambda: put(key, body))
        if resp is None:
            continue
        H.eq("ETag of %r" % name, resp.get("etag"), quoted_md5(body))
        got = H.attempt("get %r" % name, lambda: body_of(CLIENT.get_object(Bucket=BUCKET, Key=key)))
        H.eq("body of %r" % name, got, body)
    res = CLIENT.list_objects(Bucket=BUCKET, Prefix=base)
    H.eq("odd keys listed byte-exactly", [c["Key"] for c in res.get("Contents", [])],
         sorted(base + n for n in ODD_NAMES))


# --------------------------------------------------------------------------------------------
# POST Object (browser form upload; the SDK has no helper)
# --------------------------------------------------------------------------------------------


def post_policy_signature(secret_key, key_time, policy_text):
    """docs/protocol.md §1.7: SignKey=HMAC(SecretKey, KeyTime); sign SHA1(policy) with the hex key."""
    sign_key = hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    string_to_sign = hashlib.sha1(policy_text.encode()).hexdigest()
    return hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()


def post_form(fields, conditions, filename, content, tamper=False):
    now = int(time.time())
    key_time = "%d;%d" % (now - 60, now + 600)
    expiration = datetime.datetime.fromtimestamp(now + 600, datetime.timezone.utc)
    policy = {
        "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conditions": conditions + [{"q-sign-algorithm": "sha1"}, {"q-ak": SID}, {"q-sign-time": key_time}],
    }
    text = json.dumps(policy)
    signature = post_policy_signature(SKEY, key_time, text)
    if tamper:
        signature = ("0" if signature[0] != "0" else "1") + signature[1:]
    form = list(fields) + [
        ("policy", base64.b64encode(text.encode()).decode()),
        ("q-sign-algorithm", "sha1"),
        ("q-ak", SID),
        ("q-key-time", key_time),
        ("q-signature", signature),
    ]
    # requests writes `data` fields before `files`, so `file` is the last part, as required.
    return SESSION.post("http://%s/" % ADDR, headers={"Host": VHOST}, data=form,
                        files={"file": (filename, content, "application/octet-stream")})


def test_post_object():
    vec = POST_POLICY_VECTOR
    H.eq("POST policy signer reproduces the documented vector",
         post_policy_signature(vec["secret_key"], vec["key_time"], vec["policy_json_text"]), vec["signature"])

    content = b"uploaded through an HTML form\n"
    conditions = [
        {"bucket": BUCKET},
        ["starts-with", "$key", RUN + "post/"],
        ["eq", "$Content-Type", "text/plain"],
        ["eq", "$x-cos-meta-source", "form"],
        ["content-length-range", 1, 1048576],
    ]
    fields = [("key", RUN + "post/${filename}"), ("Content-Type", "text/plain"), ("x-cos-meta-source", "form")]
    r = post_form(fields, conditions, "hello.txt", content)
    H.eq("POST Object default success status 204", r.status_code, 204)
    if r.status_code < 300:
        H.eq("POST Object ETag", r.headers.get("ETag"), quoted_md5(content))
        H.eq("POST Object CRC64", r.headers.get("x-cos-hash-crc64ecma"), crc64(content))
        H.check("POST Object Location header", bool(r.headers.get("Location")), "headers %r" % dict(r.headers))
    key = RUN + "post/hello.txt"
    if H.check("form upload stored under the key with ${filename} replaced", exists(key), "no object at %r" % key):
        h = head(key)
        H.eq("form Content-Type stored", h.get("content-type"), "text/plain")
        H.eq("form x-cos-meta-source stored", h.get("x-cos-meta-source"), "form")
        H.eq("form upload length", h.get("content-length"), str(len(content)))
        H.eq("form upload body", body_of(CLIENT.get_object(Bucket=BUCKET, Key=key)), content)

    r = post_form(fields + [("success_action_status", "201")],
                  conditions + [{"success_action_status": "201"}], "second.txt", content)
    H.eq("POST Object success_action_status=201", r.status_code, 201)
    H.check("201 object stored", exists(RUN + "post/second.txt"))

    r = post_form(fields, conditions, "tampered.txt", content, tamper=True)
    H.eq("POST Object with a wrong signature -> 403", r.status_code, 403)
    H.check("tampered form upload not stored", not exists(RUN + "post/tampered.txt"))

    outside = [("key", RUN + "elsewhere/${filename}"), ("Content-Type", "text/plain"), ("x-cos-meta-source", "form")]
    r = post_form(outside, conditions, "outside.txt", content)
    H.check("POST Object violating the policy is refused", 400 <= r.status_code < 500, "got %d" % r.status_code)
    H.check("policy-violating upload not stored", not exists(RUN + "elsewhere/outside.txt"))


# --------------------------------------------------------------------------------------------
# OPTIONS Object (CORS preflight)
# --------------------------------------------------------------------------------------------


def test_options_cors():
    key = RUN + "cors/page.html"
    put(key, b"<html></html>", ContentType="text/html")
    origin = "http://www.example.com"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "PUT",
                 "Access-Control-Request-Headers": "content-type,x-cos-meta-test"}

    CLIENT.delete_bucket_cors(Bucket=BUCKET)
    r = anon("OPTIONS", key, preflight)
    H.eq("OPTIONS without CORS configuration -> 403", r.status_code, 403)
    H.eq("OPTIONS without CORS configuration code", xml_code(r), "AccessForbidden")
    H.error("GET Bucket cors without configuration -> 404 NoSuchCORSConfiguration",
            lambda: CLIENT.get_bucket_cors(Bucket=BUCKET), 404, "NoSuchCORSConfiguration")

    CLIENT.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRule": [{
        "ID": "rule1",
        "AllowedOrigin": [origin],
        "AllowedMethod": ["GET", "PUT"],
        "AllowedHeader": ["content-type", "x-cos-meta-*"],
        "ExposeHeader": ["ETag", "x-cos-request-id"],
        "MaxAgeSeconds": "500",
    }]})
    cors = CLIENT.get_bucket_cors(Bucket=BUCKET)
    rules = cors.get("CORSRule", [])
    H.eq("GET Bucket cors returns the rule", [r_.get("AllowedOrigin") for r_ in rules], [[origin]])
    H.eq("GET Bucket cors AllowedMethod", rules[0].get("AllowedMethod") if rules else None, ["GET", "PUT"])

    r = anon("OPTIONS", key, preflight)
    H.eq("CORS preflight matching a rule -> 200", r.status_code, 200)
    H.check("Access-Control-Allow-Origin", r.headers.get("Access-Control-Allow-Origin") in (origin, "*"),
            "got %r" % r.headers.get("Access-Control-Allow-Origin"))
    methods = [m.strip().upper() for m in r.headers.get("Access-Control-Allow-Methods", "").split(",")]
    H.check("Access-Control-Allow-Methods includes PUT", "PUT" in methods, "got %r" % methods)
    allowed = [m.strip().lower() for m in r.headers.get("Access-Control-Allow-Headers", "").split(",")]
    H.check("Access-Control-Allow-Headers grants the requested headers",
            "content-type" in allowed and "x-cos-meta-test" in allowed, "got %r" % allowed)
    exposed = [m.strip().lower() for m in r.headers.get("Access-Control-Expose-Headers", "").split(",")]
    H.check("Access-Control-Expose-Headers", "etag" in exposed, "got %r" % exposed)
    H.eq("Access-Control-Max-Age", r.headers.get("Access-Control-Max-Age"), "500")

    # The SDK has no options_object; sign the preflight with the SDK's own signer (as the Node
    # SDK's optionsObject does) — the emulator must accept signed and unsigned preflights.
    signed = SESSION.options("http://%s/%s" % (ADDR, quote(key)), headers=dict(preflight, Host=VHOST),
                             auth=CosS3Auth(CLIENT.get_conf(), key))
    H.eq("signed CORS preflight -> 200", signed.status_code, 200)

    r = anon("OPTIONS", key, dict(preflight, Origin="http://evil.example.org"))
    H.eq("preflight from an origin without a rule -> 403", r.status_code, 403)
    H.eq("refused preflight code", xml_code(r), "AccessForbidden")
    r = anon("OPTIONS", key, dict(preflight, **{"Access-Control-Request-Method": "DELETE"}))
    H.eq("preflight for a method without a rule -> 403", r.status_code, 403)
    r = anon("OPTIONS", key, dict(preflight, **{"Access-Control-Request-Headers": "x-not-allowed"}))
    H.eq("preflight asking for a header outside the rule -> 403", r.status_code, 403)

    CLIENT.delete_bucket_cors(Bucket=BUCKET)
    r = anon("OPTIONS", key, preflight)
    H.eq("preflight after DELETE Bucket cors -> 403", r.status_code, 403)


# --------------------------------------------------------------------------------------------
# PUT Object - Copy
# --------------------------------------------------------------------------------------------


def copy_source(key):
    return {"Bucket": BUCKET, "Key": key, "Region": REGION}


def test_copy_object():
    src = RUN + "copy/源 文件+1.txt"
    data = b"copy me, please" * 10
    put(src, data, ContentType="text/x-src", CacheControl="max-age=1", StorageClass="STANDARD_IA",
        Metadata={"x-cos-meta-origin": "src"})
    h_src = head(src)
    lm = parse_http_date(h_src["last-modified"])
    etag = h_src["etag"]

    dst = RUN + "copy/dst-copy.txt"
    res = CLIENT.copy_object(Bucket=BUCKET, Key=dst, CopySource=copy_source(src), CopyStatus="Copy",
                             ContentType="text/ignored", Metadata={"x-cos-meta-origin": "ignored"})
    H.eq("copy result ETag", res.get("ETag"), quoted_md5(data))
    H.eq("copy result CRC64", res.get("CRC64"), crc64(data))
    H.check("copy result LastModified", bool(res.get("LastModified")))
    h = head(dst)
    H.eq("Copy directive keeps the source Content-Type", h.get("content-type"), "text/x-src")
    H.eq("Copy directive keeps the source metadata", h.get("x-cos-meta-origin"), "src")
    H.eq("Copy directive keeps Cache-Control", h.get("cache-control"), "max-age=1")
    H.check("storage class is not copied (destination STANDARD)", "x-cos-storage-class" not in h,
            "got %r" % h.get("x-cos-storage-class"))
    H.eq("copied body", body_of(CLIENT.get_object(Bucket=BUCKET, Key=dst)), data)

    dst2 = RUN + "copy/dst-replaced.txt"
    CLIENT.copy_object(Bucket=BUCKET, Key=dst2, CopySource=copy_source(src), CopyStatus="Replaced",
                       ContentType="application/x-new", Metadata={"x-cos-meta-new": "1"},
                       StorageClass="ARCHIVE")
    h = head(dst2)
    H.eq("Replaced directive: new Content-Type", h.get("content-type"), "application/x-new")
    H.eq("Replaced directive: new metadata", h.get("x-cos-meta-new"), "1")
    H.check("Replaced directive: old metadata dropped", "x-cos-meta-origin" not in h, "headers %r" % h)
    H.check("Replaced directive: old Cache-Control dropped", "cache-control" not in h, "headers %r" % h)
    H.eq("copy with x-cos-storage-class", h.get("x-cos-storage-class"), "ARCHIVE")

    def cp(**kw):
        return CLIENT.copy_object(Bucket=BUCKET, Key=RUN + "copy/cond.txt", CopySource=copy_source(src), **kw)

    H.check("copy-source-If-Match=ETag copies", "ETag" in cp(CopySourceIfMatch=etag))
    H.error("copy-source-If-Match other -> 412", lambda: cp(CopySourceIfMatch='"0123"'), 412, "PreconditionFailed")
    H.check("copy-source-If-None-Match other copies", "ETag" in cp(CopySourceIfNoneMatch='"0123"'))
    H.error("copy-source-If-None-Match=ETag -> 412", lambda: cp(CopySourceIfNoneMatch=etag), 412, "PreconditionFailed")
    H.check("copy-source-If-Modified-Since earlier copies",
            "ETag" in cp(CopySourceIfModifiedSince=http_date(lm - 86400)))
    H.error("copy-source-If-Modified-Since=Last-Modified -> 412",
            lambda: cp(CopySourceIfModifiedSince=http_date(lm)), 412, "PreconditionFailed")
    H.check("copy-source-If-Unmodified-Since=Last-Modified copies",
            "ETag" in cp(CopySourceIfUnmodifiedSince=http_date(lm)))
    H.error("copy-source-If-Unmodified-Since earlier -> 412",
            lambda: cp(CopySourceIfUnmodifiedSince=http_date(lm - 86400)), 412, "PreconditionFailed")

    H.error("self-copy with Copy directive -> 400 InvalidRequest",
            lambda: CLIENT.copy_object(Bucket=BUCKET, Key=src, CopySource=copy_source(src), CopyStatus="Copy"),
            400, "InvalidRequest")
    CLIENT.copy_object(Bucket=BUCKET, Key=src, CopySource=copy_source(src), CopyStatus="Replaced",
                       ContentType="text/x-src", StorageClass="STANDARD")
    h = head(src)
    H.check("self-copy with Replaced changes the storage class to STANDARD", "x-cos-storage-class" not in h,
            "got %r" % h.get("x-cos-storage-class"))
    H.eq("self-copy keeps the body", body_of(CLIENT.get_object(Bucket=BUCKET, Key=src)), data)
    H.error("copy of a missing source -> 404 NoSuchKey",
            lambda: CLIENT.copy_object(Bucket=BUCKET, Key=RUN + "copy/x", CopySource=copy_source(RUN + "copy/none")),
            404, "NoSuchKey")


# --------------------------------------------------------------------------------------------
# DELETE Object / DELETE Multiple Objects
# --------------------------------------------------------------------------------------------


def test_delete():
    key = RUN + "del/one.txt"
    put(key, b"bye")
    CLIENT.delete_object(Bucket=BUCKET, Key=key)
    H.eq("DELETE Object -> 204", last_status(), 204)
    H.check("deleted object is gone", not exists(key))
    CLIENT.delete_object(Bucket=BUCKET, Key=RUN + "del/never-existed")
    H.eq("DELETE of a missing key -> 204", last_status(), 204)

    keys = [RUN + "del/m%d 文件.txt" % i for i in range(5)]
    for k in keys:
        put(k, k.encode())
    res = CLIENT.delete_objects(Bucket=BUCKET, Delete={
        "Quiet": "false",
        "Object": [{"Key": k} for k in keys[:3]] + [{"Key": RUN + "del/absent"}],
    })
    deleted = sorted(d["Key"] for d in res.get("Deleted", []))
    H.eq("verbose DeleteResult lists every key (absent ones too)", deleted, sorted(keys[:3] + [RUN + "del/absent"]))
    H.eq("verbose DeleteResult has no Error", res.get("Error", []), [])
    H.check("verbose delete removed the objects", not any(exists(k) for k in keys[:3]))

    res = CLIENT.delete_objects(Bucket=BUCKET, Delete={"Quiet": "true", "Object": [{"Key": k} for k in keys[3:]]})
    H.eq("quiet DeleteResult omits Deleted", res.get("Deleted", []), [])
    H.eq("quiet DeleteResult has no Error", res.get("Error", []), [])
    H.check("quiet delete removed the objects", not any(exists(k) for k in keys[3:]))


# --------------------------------------------------------------------------------------------
# POST Object restore on ARCHIVE
# --------------------------------------------------------------------------------------------


def test_restore_archive():
    key = RUN + "archive/cold.bin"
    data = b"frozen bytes" * 100
    put(key, data, StorageClass="ARCHIVE")
    h = head(key)
    H.eq("HEAD of an ARCHIVE object: x-cos-storage-class", h.get("x-cos-storage-class"), "ARCHIVE")
    H.check("never restored: no x-cos-restore", "x-cos-restore" not in h, "got %r" % h.get("x-cos-restore"))
    res = CLIENT.list_objects(Bucket=BUCKET, Prefix=key)
    H.eq("listing shows StorageClass ARCHIVE", [c.get("StorageClass") for c in res.get("Contents", [])], ["ARCHIVE"])
    H.error("GET before restore -> 403 InvalidObjectState",
            lambda: CLIENT.get_object(Bucket=BUCKET, Key=key), 403, "InvalidObjectState")
    H.eq("InvalidObjectState answer carries x-cos-storage-class",
         RECORDER.last().headers.get("x-cos-storage-class"), "ARCHIVE")

    plain = RUN + "archive/standard.bin"
    put(plain, b"warm")
    H.error("restore of a STANDARD object -> 405 RestoreNonArchiveObject",
            lambda: CLIENT.restore_object(Bucket=BUCKET, Key=plain, RestoreRequest={
                "Days": 1, "CASJobParameters": {"Tier": "Expedited"}}), 405, "RestoreNonArchiveObject")

    CLIENT.restore_object(Bucket=BUCKET, Key=key, RestoreRequest={"Days": 1, "CASJobParameters": {"Tier": "Expedited"}})
    H.eq("restore accepted -> 202", last_status(), 202)
    h = head(key)
    if 'ongoing-request="true"' in h.get("x-cos-restore", ""):
        H.check("x-cos-restore-status names the tier", 'tier="expedited"' in h.get("x-cos-restore-status", "").lower(),
                "got %r" % h.get("x-cos-restore-status"))
        got_error = None
        try:
            CLIENT.get_object(Bucket=BUCKET, Key=key)
        except CosServiceError as e:
            got_error = (e.get_status_code(), e.get_error_code())
        # Only meaningful if the restore was still running after the GET (no timing guess).
        if 'ongoing-request="true"' in head(key).get("x-cos-restore", ""):
            H.eq("GET while the restore runs -> 403 InvalidObjectState", got_error, (403, "InvalidObjectState"))
            H.error("second restore while running -> 409 RestoreAlreadyInProgress",
                    lambda: CLIENT.restore_object(Bucket=BUCKET, Key=key, RestoreRequest={
                        "Days": 1, "CASJobParameters": {"Tier": "Expedited"}}), 409, "RestoreAlreadyInProgress")
        else:
            print("note: restore finished before the in-progress checks could run")
    else:
        H.check("x-cos-restore present right after the restore request",
                'ongoing-request="false"' in h.get("x-cos-restore", ""),
                "x-cos-restore %r" % h.get("x-cos-restore"))

    deadline = time.monotonic() + POLL_DEADLINE_S
    restore_header = ""
    while time.monotonic() < deadline:
        restore_header = head(key).get("x-cos-restore", "")
        if 'ongoing-request="false"' in restore_header:
            break
        time.sleep(0.2)
    H.check("restore completes within %ds (x-cos-restore ongoing-request=\"false\")" % POLL_DEADLINE_S,
            'ongoing-request="false"' in restore_header, "last x-cos-restore %r" % restore_header)
    expiry = restore_header.split("expiry-date=", 1)[-1].strip().strip('"') if "expiry-date=" in restore_header else ""
    H.check("restored x-cos-restore has an RFC 1123 expiry-date", expiry.endswith("GMT"), "got %r" % restore_header)
    if expiry.endswith("GMT"):
        H.check("expiry-date is about Days=1 ahead", 0 < parse_http_date(expiry) - time.time() <= 2 * 86400 + 60,
                "got %r" % expiry)
    resp = CLIENT.get_object(Bucket=BUCKET, Key=key)
    H.eq("GET after restore succeeds with the body", body_of(resp), data)
    res = CLIENT.list_objects(Bucket=BUCKET, Prefix=key)
    H.eq("listing RestoreStatus after the restore", [c.get("RestoreStatus") for c in res.get("Contents", [])],
         ["DONE"])
    CLIENT.restore_object(Bucket=BUCKET, Key=key, RestoreRequest={"Days": 2, "CASJobParameters": {"Tier": "Standard"}})
    H.eq("restore of an already restored copy -> 200", last_status(), 200)


# --------------------------------------------------------------------------------------------
# Object ACL and anonymous access
# --------------------------------------------------------------------------------------------


def grant_set(acl):
    out = set()
    lst = (acl.get("AccessControlList") or {}).get("Grant") or []
    if isinstance(lst, dict):
        lst = [lst]
    for g in lst:
        grantee = g.get("Grantee") or {}
        if "URI" in grantee:
            out.add(("uri", grantee["URI"], g.get("Permission")))
        else:
            out.add(("id", grantee.get("ID"), g.get("Permission")))
    return out


def test_acl_and_anonymous():
    key = RUN + "acl/doc.txt"
    data = b"who may read me?"
    put(key, data)
    acl = CLIENT.get_object_acl(Bucket=BUCKET, Key=key)
    H.eq("fresh object inherits the bucket ACL (x-cos-acl: default)", acl.get("CannedACL"), "default")
    r = anon("GET", key)
    H.eq("anonymous GET of a default (private bucket) object -> 403", r.status_code, 403)
    H.eq("anonymous refusal code", xml_code(r), "AccessDenied")

    CLIENT.put_object_acl(Bucket=BUCKET, Key=key, ACL="public-read")
    acl = CLIENT.get_object_acl(Bucket=BUCKET, Key=key)
    H.eq("canned public-read reads back", acl.get("CannedACL"), "public-read")
    H.check("public-read grants AllUsers READ", ("uri", ALL_USERS, "READ") in grant_set(acl), "%r" % grant_set(acl))
    r = anon("GET", key)
    H.eq("anonymous GET of a public-read object -> 200", r.status_code, 200)
    H.eq("anonymous GET body", r.content, data)
    r = anon("HEAD", key)
    H.eq("anonymous HEAD of a public-read object -> 200", r.status_code, 200)
    r = anon("GET", key, params={"response-content-type": "text/x-anon"})
    H.check("anonymous GET with a response-* override is refused (docs/protocol.md §1.1)",
            400 <= r.status_code < 500, "got %d %r" % (r.status_code, r.headers.get("Content-Type")))
    r = anon("PUT", key, {"Content-Type": "text/plain"})
    H.eq("anonymous PUT onto a public-read object -> 403", r.status_code, 403)

    CLIENT.put_object_acl(Bucket=BUCKET, Key=key, ACL="private")
    acl = CLIENT.get_object_acl(Bucket=BUCKET, Key=key)
    H.eq("canned private reads back", acl.get("CannedACL"), "private")
    r = anon("GET", key)
    H.eq("anonymous GET of a private object -> 403", r.status_code, 403)

    CLIENT.put_object_acl(Bucket=BUCKET, Key=key, GrantRead='id="%s",id="%s"' % (SUB_UIN_A, SUB_UIN_B),
                          GrantFullControl='id="%s"' % OWNER_UIN)
    grants = grant_set(CLIENT.get_object_acl(Bucket=BUCKET, Key=key))
    H.check("x-cos-grant-read (two grantees) reads back",
            {("id", SUB_UIN_A, "READ"), ("id", SUB_UIN_B, "READ")} <= grants, "%r" % grants)
    H.check("x-cos-grant-full-control reads back", ("id", OWNER_UIN, "FULL_CONTROL") in grants, "%r" % grants)
    H.check("grant headers replace the whole ACL (no AllUsers grant)",
            not any(g[0] == "uri" for g in grants), "%r" % grants)

    # The SDK's dict form: grantee type as a <Type> child element (docs/protocol.md §4.11).
    CLIENT.put_object_acl(Bucket=BUCKET, Key=key, AccessControlPolicy={
        "Owner": {"ID": OWNER_UIN},
        "AccessControlList": {"Grant": [
            {"Grantee": {"Type": "CanonicalUser", "ID": SUB_UIN_B}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
        ]},
    })
    acl = CLIENT.get_object_acl(Bucket=BUCKET, Key=key)
    grants = grant_set(acl)
    H.eq("AccessControlPolicy body reads back", grants,
         {("id", SUB_UIN_B, "FULL_CONTROL"), ("uri", ALL_USERS, "READ")})
    H.eq("AllUsers READ in a body is public-read", acl.get("CannedACL"), "public-read")
    r = anon("GET", key)
    H.eq("anonymous GET after a body ACL granting AllUsers READ -> 200", r.status_code, 200)


# --------------------------------------------------------------------------------------------
# Multipart family
# --------------------------------------------------------------------------------------------


def uploads_for(prefix):
    res = CLIENT.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [(u.get("Key"), u.get("UploadId")) for u in res.get("Upload", [])]


def test_multipart():
    key = RUN + "mp/assembled 文件+1.bin"  # space, UTF-8 and '+' exercise encoding-type=url in the part lists
    init = CLIENT.create_multipart_upload(Bucket=BUCKET, Key=key, ContentType="application/x-mp",
                                          Metadata={"x-cos-meta-mp": "yes"})
    upload_id = init.get("UploadId")
    H.check("initiate returns an UploadId", bool(upload_id), "%r" % init)
    H.eq("initiate Bucket", init.get("Bucket"), BUCKET)
    H.eq("initiate Key", init.get("Key"), key)

    part1 = os.urandom(1024 * 1024 + 5)
    r1 = lower_keys(CLIENT.upload_part(Bucket=BUCKET, Key=key, Body=part1, PartNumber=1, UploadId=upload_id,
                                       EnableMD5=True))
    H.eq("upload_part ETag is the part MD5", r1.get("etag"), quoted_md5(part1))
    H.eq("upload_part CRC64", r1.get("x-cos-hash-crc64ecma"), crc64(part1))

    src = RUN + "mp/copy-source.bin"
    src_data = os.urandom(300 * 1024)
    put(src, src_data)
    r2 = CLIENT.upload_part_copy(Bucket=BUCKET, Key=key, PartNumber=2, UploadId=upload_id,
                                 CopySource=copy_source(src), CopySourceRange="bytes=100-199999")
    part2 = src_data[100:200000]
    H.eq("upload_part_copy ETag is the MD5 of the range", r2.get("ETag"), quoted_md5(part2))
    H.eq("upload_part_copy CRC64", r2.get("CRC64"), crc64(part2))

    parts = CLIENT.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)
    listed = [(p.get("PartNumber"), p.get("ETag"), p.get("Size")) for p in parts.get("Part", [])]
    H.eq("list_parts", listed, [("1", quoted_md5(part1), str(len(part1))), ("2", quoted_md5(part2), str(len(part2)))])
    page = CLIENT.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id, MaxParts=1)
    H.eq("list_parts max-parts=1 truncates", (page.get("IsTruncated"), page.get("NextPartNumberMarker")), ("true", "1"))
    page = CLIENT.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumberMarker=1)
    H.eq("list_parts part-number-marker=1", [p.get("PartNumber") for p in page.get("Part", [])], ["2"])
    H.check("list_multipart_uploads shows the upload", (key, upload_id) in uploads_for(RUN + "mp/"),
            "%r" % uploads_for(RUN + "mp/"))

    other = RUN + "mp/aborted.bin"
    other_id = CLIENT.create_multipart_upload(Bucket=BUCKET, Key=other).get("UploadId")
    CLIENT.upload_part(Bucket=BUCKET, Key=other, Body=b"x" * 1000, PartNumber=1, UploadId=other_id)
    CLIENT.abort_multipart_upload(Bucket=BUCKET, Key=other, UploadId=other_id)
    H.eq("abort -> 204", last_status(), 204)
    H.check("aborted upload no longer listed", (other, other_id) not in uploads_for(RUN + "mp/"))
    H.error("abort of an aborted upload -> 404 NoSuchUpload",
            lambda: CLIENT.abort_multipart_upload(Bucket=BUCKET, Key=other, UploadId=other_id), 404, "NoSuchUpload")
    H.error("upload_part to an aborted upload -> 404 NoSuchUpload",
            lambda: CLIENT.upload_part(Bucket=BUCKET, Key=other, Body=b"y", PartNumber=1, UploadId=other_id),
            404, "NoSuchUpload")
    H.check("aborted upload left no object", not exists(other))

    good = [{"PartNumber": 1, "ETag": quoted_md5(part1)}, {"PartNumber": 2, "ETag": quoted_md5(part2)}]
    H.error("complete with parts out of order -> 400 InvalidPartOrder",
            lambda: CLIENT.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id,
                                                     MultipartUpload={"Part": list(reversed(good))}),
            400, "InvalidPartOrder")
    H.error("complete with a wrong part ETag -> 400 InvalidPart",
            lambda: CLIENT.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={
                "Part": [good[0], {"PartNumber": 2, "ETag": '"00000000000000000000000000000000"'}]}),
            400, "InvalidPart")
    done = H.attempt("complete_multipart_upload parses the answer", lambda: lower_keys(
        CLIENT.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Part": good})))
    if done is not None:
        H.eq("complete ETag (multipart form)", done.get("etag"), multipart_etag([part1, part2]))
        H.eq("complete Key", done.get("key"), key)
    H.check("upload gone after complete", (key, upload_id) not in uploads_for(RUN + "mp/"))
    h = head(key)
    H.eq("assembled ETag on HEAD", h.get("etag"), multipart_etag([part1, part2]))
    H.eq("assembled length", h.get("content-length"), str(len(part1) + len(part2)))
    H.eq("assembled CRC64 is the CRC64 of the whole object", h.get("x-cos-hash-crc64ecma"), crc64(part1 + part2))
    H.eq("initiate Content-Type applies to the object", h.get("content-type"), "application/x-mp")
    H.eq("initiate metadata applies to the object", h.get("x-cos-meta-mp"), "yes")
    H.eq("assembled body", body_of(CLIENT.get_object(Bucket=BUCKET, Key=key)), part1 + part2)

    small = RUN + "mp/too-small.bin"
    small_id = CLIENT.create_multipart_upload(Bucket=BUCKET, Key=small).get("UploadId")
    e1 = lower_keys(CLIENT.upload_part(Bucket=BUCKET, Key=small, Body=b"a" * 1000, PartNumber=1, UploadId=small_id))
    e2 = lower_keys(CLIENT.upload_part(Bucket=BUCKET, Key=small, Body=b"b" * 1000, PartNumber=2, UploadId=small_id))
    H.error("complete with a non-last part under 1 MB -> 400 EntityTooSmall",
            lambda: CLIENT.complete_multipart_upload(Bucket=BUCKET, Key=small, UploadId=small_id, MultipartUpload={
                "Part": [{"PartNumber": 1, "ETag": e1.get("etag")}, {"PartNumber": 2, "ETag": e2.get("etag")}]}),
            400, "EntityTooSmall")
    CLIENT.abort_multipart_upload(Bucket=BUCKET, Key=small, UploadId=small_id)


def test_upload_file_parallel():
    size = 20 * 1024 * 1024 + 12345
    data = os.urandom(size)
    part_mb = 4
    with tempfile.NamedTemporaryFile(prefix="cos-sdk-", suffix=".bin") as f:
        f.write(data)
        f.flush()
        progress = []
        lock = threading.Lock()

        def on_progress(consumed, total):
            with lock:
                progress.append((consumed, total))

        key = RUN + "big/upload-file.bin"
        before = stats()
        res = H.attempt("upload_file completes", lambda: lower_keys(CLIENT.upload_file(
            Bucket=BUCKET, Key=key, LocalFilePath=f.name, PartSize=part_mb, MAXThread=4, EnableMD5=True,
            progress_callback=on_progress)))
    step = part_mb * 1024 * 1024
    chunks = [data[i:i + step] for i in range(0, size, step)]
    if res is not None:
        H.eq("upload_file ETag (multipart form)", res.get("etag"), multipart_etag(chunks))
    H.eq("upload_file request counts (emulator /-/stats)",
         stats_delta(before, stats(), ["InitiateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "PutObject"]),
         {"InitiateMultipartUpload": 1, "UploadPart": len(chunks), "CompleteMultipartUpload": 1, "PutObject": 0})
    H.eq("progress callback called once per part", len(progress), len(chunks))
    H.eq("progress ends at (total, total)", progress[-1] if progress else None, (size, size))
    H.check("progress is monotonic", all(a[0] <= b[0] for a, b in zip(progress, progress[1:])), "%r" % progress)
    h = head(key)
    H.eq("uploaded in %d parts (HEAD ETag)" % len(chunks), h.get("etag"), multipart_etag(chunks))
    H.eq("uploaded size", h.get("content-length"), str(size))
    H.eq("uploaded CRC64", h.get("x-cos-hash-crc64ecma"), crc64(data))
    got = body_of(CLIENT.get_object(Bucket=BUCKET, Key=key))
    H.check("uploaded bytes read back identical", got == data, "md5 %s vs %s" % (md5hex(got), md5hex(data)))
    # The SDK's ranged parallel download, verifying the whole-object CRC64 itself (EnableCRC).
    with tempfile.TemporaryDirectory(prefix="cos-sdk-") as d:
        dest = os.path.join(d, "download.bin")
        H.attempt("download_file (ranged, parallel, EnableCRC) succeeds", lambda: CLIENT.download_file(
            Bucket=BUCKET, Key=key, DestFilePath=dest, PartSize=4, MAXThread=4, EnableCRC=True))
        got = open(dest, "rb").read() if os.path.exists(dest) else b""
        H.check("download_file bytes identical", got == data, "got %d bytes" % len(got))


# --------------------------------------------------------------------------------------------
# Presigned URLs and signature errors
# --------------------------------------------------------------------------------------------


def test_presigned_urls():
    key = RUN + "presigned/file name+1.txt"
    data = b"fetched through a presigned URL"
    put(key, data)
    # A client with no IP override builds the real virtual-hosted URL and signs its host; the
    # request is then sent to the emulator with that Host, as DNS would route it.
    vclient = make_client(ip_mode=False)
    url = vclient.get_presigned_download_url(Bucket=BUCKET, Key=key, Expired=300)
    target, host = to_emulator(url)
    H.eq("presigned URL names the bucket domain", host, VHOST)
    r = SESSION.get(target, headers={"Host": host})
    H.eq("presigned GET -> 200", r.status_code, 200)
    H.eq("presigned GET body", r.content, data)

    url = vclient.get_presigned_url(Bucket=BUCKET, Key=key, Method="GET", Expired=300,
                                    Params={"response-content-disposition": 'attachment; filename="x.txt"'})
    target, host = to_emulator(url)
    r = SESSION.get(target, headers={"Host": host})
    H.eq("presigned GET with a signed response-* parameter -> 200", r.status_code, 200)
    H.eq("signed response-content-disposition applied", r.headers.get("Content-Disposition"),
         'attachment; filename="x.txt"')

    put_key = RUN + "presigned/uploaded.bin"
    url = vclient.get_presigned_url(Bucket=BUCKET, Key=put_key, Method="PUT", Expired=300,
                                    Headers={"Content-Type": "application/x-presigned"})
    target, host = to_emulator(url)
    body = b"put through a presigned URL"
    r = SESSION.put(target, data=body, headers={"Host": host, "Content-Type": "application/x-presigned"})
    H.eq("presigned PUT -> 200", r.status_code, 200)
    H.eq("presigned PUT ETag", r.headers.get("ETag"), quoted_md5(body))
    H.eq("presigned PUT stored the Content-Type", head(put_key).get("content-type") if exists(put_key) else None,
         "application/x-presigned")

    # The IP-mode client's URL points straight at 127.0.0.1:PORT and signs host=127.0.0.1 without
    # the port (the SDK quirk of docs/protocol.md §1.4); the emulator tolerates it (§1.6 step 8)
    # and maps the non-bucket Host to its single configured bucket (§2 option (b)).
    ip_url = CLIENT.get_presigned_download_url(Bucket=BUCKET, Key=key, Expired=300)
    r = SESSION.get(ip_url)
    H.eq("IP-mode presigned URL fetched as-is -> 200", r.status_code, 200)
    H.eq("IP-mode presigned URL body", r.content, data)

    url = vclient.get_presigned_download_url(Bucket=BUCKET, Key=key, Expired=-30)
    target, host = to_emulator(url)
    r = SESSION.get(target, headers={"Host": host})
    H.eq("expired presigned URL -> 403", r.status_code, 403)
    H.eq("expired presigned URL code", xml_code(r), "AccessDenied")
    H.check("expired presigned URL message", b"<Message>Request has expired</Message>" in r.content,
            "body %r" % r.content[:300])

    url = vclient.get_presigned_download_url(Bucket=BUCKET, Key=key, Expired=300)
    sig = url.split("q-signature=", 1)[1][:40]
    bad = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    target, host = to_emulator(bad)
    r = SESSION.get(target, headers={"Host": host})
    H.eq("tampered presigned URL -> 403", r.status_code, 403)
    H.eq("tampered presigned URL code", xml_code(r), "SignatureDoesNotMatch")


def test_wrong_credentials():
    bad = make_client(secret_key=SKEY + "-wrong")
    try:
        bad.list_objects(Bucket=BUCKET, Prefix=RUN)
        H.check("wrong secret -> CosServiceError", False, "list_objects succeeded")
    except CosServiceError as e:
        H.eq("wrong secret: HTTP status", e.get_status_code(), 403)
        H.eq("wrong secret: code", e.get_error_code(), "SignatureDoesNotMatch")
        origin = e.get_origin_msg() or ""
        H.check("SignatureDoesNotMatch body carries StringToSign and FormatString",
                "<StringToSign>" in origin and "<FormatString>" in origin, "body %r" % origin[:400])
    key = RUN + "auth/should-not-exist"
    H.error("wrong secret: put_object -> 403 SignatureDoesNotMatch",
            lambda: bad.put_object(Bucket=BUCKET, Key=key, Body=b"x"), 403, "SignatureDoesNotMatch")
    H.check("nothing stored by the refused put", not exists(key))
    unknown = make_client(secret_id="AKIDunknownUNKNOWNunknownUNKNOWN0000")
    H.error("unknown SecretId -> 403 InvalidAccessKeyId",
            lambda: unknown.list_objects(Bucket=BUCKET, Prefix=RUN), 403, "InvalidAccessKeyId")


# --------------------------------------------------------------------------------------------
# Issue 9: versions on an unversioned bucket, max-keys=0, anonymous access by bucket ACL,
# sub-account grants, PUT without a length (docs/protocol.md §2-§4.11)
# --------------------------------------------------------------------------------------------


def raw_exchange(request_bytes):
    """Send raw HTTP/1.1 bytes to the emulator (no client adds headers) and return the answer."""
    import socket
    host, port = ADDR.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request_bytes)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_issue9_fidelity():
    key = RUN + "fid/live.txt"
    put(key, b"live")
    # 1. versionId other than "null" names no version of an unversioned bucket: 404, untouched.
    H.error("GET with an unknown versionId -> 404 NoSuchVersion",
            lambda: CLIENT.get_object(Bucket=BUCKET, Key=key, VersionId="MTg0NDUxNzc2ODQ0"), 404, "NoSuchVersion")
    H.error("HEAD with an unknown versionId -> 404",
            lambda: CLIENT.head_object(Bucket=BUCKET, Key=key, VersionId="MTg0NDUxNzc2ODQ0"), 404)
    H.error("DELETE with an unknown versionId -> 404 NoSuchVersion",
            lambda: CLIENT.delete_object(Bucket=BUCKET, Key=key, VersionId="MTg0NDUxNzc2ODQ0"), 404, "NoSuchVersion")
    H.check("DELETE with an unknown versionId left the object", exists(key))
    H.error("copy from an unknown source version -> 404 NoSuchVersion",
            lambda: CLIENT.copy_object(Bucket=BUCKET, Key=RUN + "fid/copy.txt",
                                       CopySource=dict(copy_source(key), VersionId="MTg0NDUxNzc2ODQ0")),
            404, "NoSuchVersion")
    res = CLIENT.delete_objects(Bucket=BUCKET, Delete={
        "Quiet": "false", "Object": [{"Key": key, "VersionId": "MTg0NDUxNzc2ODQ0"}]})
    errors = res.get("Error", [])
    if isinstance(errors, dict):
        errors = [errors]
    H.eq("Delete Multiple: unknown VersionId reported as NoSuchVersion",
         [e.get("Code") for e in errors], ["NoSuchVersion"])
    H.eq("Delete Multiple: nothing deleted", res.get("Deleted", []), [])
    H.check("Delete Multiple with an unknown VersionId left the object", exists(key))
    r = CLIENT.get_object(Bucket=BUCKET, Key=key, VersionId="null")
    H.eq("versionId=null is the live object", body_of(r), b"live")

    # 2. max-keys=0: an empty page that does not claim more follows.
    res = CLIENT.list_objects(Bucket=BUCKET, Prefix=RUN + "fid/", MaxKeys=0)
    H.eq("max-keys=0 -> IsTruncated false", res.get("IsTruncated"), "false")
    H.eq("max-keys=0 -> no Contents", res.get("Contents", []), [])

    # 3. Anonymous access follows the bucket ACL.
    missing = RUN + "fid/missing.txt"
    try:
        CLIENT.put_bucket_acl(Bucket=BUCKET, ACL="public-read")
        r = anon("GET", missing)
        H.eq("public-read bucket: anonymous GET of a missing key -> 404", r.status_code, 404)
        H.eq("public-read bucket: missing key code", xml_code(r), "NoSuchKey")
        H.eq("public-read bucket: anonymous HEAD of a missing key -> 404", anon("HEAD", missing).status_code, 404)
        r = SESSION.put("http://%s/%s" % (ADDR, quote(RUN + "fid/anon.txt")), data=b"anon", headers={"Host": VHOST})
        H.eq("public-read bucket: anonymous PUT -> 403", r.status_code, 403)
        CLIENT.put_bucket_acl(Bucket=BUCKET, ACL="public-read-write")
        r = SESSION.put("http://%s/%s" % (ADDR, quote(RUN + "fid/anon.txt")), data=b"anon", headers={"Host": VHOST})
        H.eq("public-read-write bucket: anonymous PUT -> 200", r.status_code, 200)
        H.eq("anonymous PUT stored the body", body_of(CLIENT.get_object(Bucket=BUCKET, Key=RUN + "fid/anon.txt")),
             b"anon")
    finally:
        CLIENT.put_bucket_acl(Bucket=BUCKET, ACL="private")
    H.eq("private bucket again: anonymous GET of a missing key -> 403", anon("GET", missing).status_code, 403)

    # 4. A sub-account grant id="<owner>/<sub>" names the owner and the sub-account.
    CLIENT.put_object_acl(Bucket=BUCKET, Key=key, GrantRead='id="100000000001/100000000011"')
    grants = grant_set(CLIENT.get_object_acl(Bucket=BUCKET, Key=key))
    H.check("sub-account grant reads back as qcs::cam::uin/owner:uin/sub",
            ("id", SUB_UIN_A, "READ") in grants, "%r" % grants)

    # 5. PUT with neither Content-Length nor chunked encoding: 411, nothing stored. Signed with
    # the SDK's own signer; sent raw because every HTTP library adds a length.
    nolen = RUN + "fid/no-length.txt"
    prepared = requests.Request("PUT", "http://%s/%s" % (ADDR, quote(nolen)), headers={"Host": VHOST}).prepare()
    prepared.headers.pop("Content-Length", None)
    prepared = CosS3Auth(CLIENT.get_conf(), nolen)(prepared)
    head_lines = ["PUT %s HTTP/1.1" % prepared.path_url, "Host: %s" % VHOST,
                  "Authorization: %s" % prepared.headers["Authorization"], "Connection: close", "", ""]
    answer = raw_exchange("\r\n".join(head_lines).encode())
    H.check("PUT without Content-Length -> 411", answer.startswith(b"HTTP/1.1 411"), answer[:200].decode("latin-1"))
    H.check("411 code MissingContentLength", b"<Code>MissingContentLength</Code>" in answer,
            answer[-400:].decode("latin-1"))
    H.check("PUT without Content-Length stored nothing", not exists(nolen))


TESTS = [
    test_put_object_headers,
    test_head_object,
    test_get_object,
    test_list_objects,
    test_odd_keys,
    test_post_object,
    test_options_cors,
    test_copy_object,
    test_delete,
    test_restore_archive,
    test_acl_and_anonymous,
    test_multipart,
    test_upload_file_parallel,
    test_presigned_urls,
    test_wrong_credentials,
    test_issue9_fidelity,
]


def main():
    global CLIENT
    if not ADDR or not SID or not SKEY:
        print("set EMULATOR_ADDR, COS_SECRET_ID and COS_SECRET_KEY (tests/sdk/run.sh does)")
        return 2
    only = set(sys.argv[1:])
    CLIENT = make_client()
    for fn in TESTS:
        if not only or fn.__name__ in only:
            H.run(fn)
    print("%d passed, %d failed" % (H.passed, H.failed))
    return 0 if H.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
