//! Multipart uploads of `MemoryStore`: parts, Complete with COS's checks (ascending part
//! numbers, matching ETags, non-last parts of at least the minimum size) and the multipart ETag
//! `md5(concat(binary part md5s))-N`.

use bytes::{Bytes, BytesMut};

use super::{invalid, lock, md5_hex, MemoryStore, Obj};
use crate::store::{CompletedPart, PutResult, StoreError, StoreResult};

impl MemoryStore {
    pub(super) fn complete_sync(
        &self,
        key: &str,
        id: &str,
        parts: &[CompletedPart],
    ) -> StoreResult<PutResult> {
        let min_part = *lock(&self.min_part_size);
        let mut st = lock(&self.state);
        let up = match st.uploads.get(id) {
            Some(u) if u.key == key => u,
            _ => return Err(StoreError::NotFound(format!("NoSuchUpload {id}"))),
        };
        if parts.is_empty() {
            return Err(invalid("MalformedXML", "no parts"));
        }
        let mut body = BytesMut::new();
        let mut digests = Vec::new();
        let mut prev = 0u32;
        for (i, p) in parts.iter().enumerate() {
            if p.part_number <= prev {
                return Err(invalid("InvalidPartOrder", "parts not ascending"));
            }
            prev = p.part_number;
            let (data, etag) = up
                .parts
                .get(&p.part_number)
                .ok_or_else(|| invalid("InvalidPart", "part not uploaded"))?;
            if p.etag.trim_matches('"') != etag {
                return Err(invalid("InvalidPart", "part ETag mismatch"));
            }
            if i + 1 < parts.len() && (data.len() as u64) < min_part {
                return Err(invalid("EntityTooSmall", "part smaller than the minimum"));
            }
            body.extend_from_slice(data);
            digests.extend_from_slice(&hex::decode(etag).unwrap_or_default());
        }
        let etag = format!("{}-{}", md5_hex(&digests), parts.len());
        let up = st
            .uploads
            .remove(id)
            .ok_or_else(|| StoreError::NotFound(id.into()))?;
        let obj = Obj::new(body.freeze(), etag, up.opts.headers.clone(), &up.opts);
        let res = PutResult {
            etag: obj.etag.clone(),
            crc64: Some(obj.crc64),
        };
        st.objects.insert(key.to_string(), obj);
        Ok(res)
    }

    pub(super) fn add_part(&self, key: &str, id: &str, n: u32, body: Bytes) -> StoreResult<String> {
        if !(1..=10_000).contains(&n) {
            return Err(invalid("InvalidArgument", "part number out of range"));
        }
        let mut st = lock(&self.state);
        match st.uploads.get_mut(id) {
            Some(u) if u.key == key => {
                let etag = md5_hex(&body);
                u.parts.insert(n, (body, etag.clone()));
                Ok(etag)
            }
            _ => Err(StoreError::NotFound(format!("NoSuchUpload {id}"))),
        }
    }
}
