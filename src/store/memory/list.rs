//! GET Bucket over the `MemoryStore` key map: prefix, delimiter rolling into CommonPrefixes,
//! marker, and max-keys counting Contents plus prefixes, with NextMarker = last item returned.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::Obj;
use crate::store::{ListEntry, ListPage, ListRequest};

/// One page of a listing of `objects`.
pub(super) fn list(objects: &BTreeMap<String, Obj>, req: &ListRequest) -> ListPage {
    let max = req.max_keys.unwrap_or(1000).clamp(1, 1000) as usize;
    // Start at the later of the marker and the prefix: keys before either cannot match.
    let start = match &req.marker {
        Some(m) if !m.is_empty() && m.as_str() >= req.prefix.as_str() => Bound::Excluded(m.clone()),
        _ => Bound::Included(req.prefix.clone()),
    };
    let mut page = ListPage::default();
    let mut count = 0usize;
    let mut last: Option<String> = None;
    for (key, obj) in objects.range((start, Bound::Unbounded)) {
        if !key.starts_with(&req.prefix) {
            if key.as_str() > req.prefix.as_str() && !req.prefix.is_empty() {
                break; // past every key with the prefix
            }
            continue;
        }
        let rest = &key[req.prefix.len()..];
        let prefix_item = req.delimiter.and_then(|d| {
            rest.find(d)
                .map(|i| key[..req.prefix.len() + i + d.len_utf8()].to_string())
        });
        if let Some(cp) = &prefix_item {
            // Already returned on this page, or on an earlier one (the marker is it).
            if page.common_prefixes.last() == Some(cp)
                || req.marker.as_deref().is_some_and(|m| cp.as_str() <= m)
            {
                continue;
            }
        }
        if count == max {
            page.is_truncated = true;
            page.next_marker = last;
            return page;
        }
        count += 1;
        match prefix_item {
            Some(cp) => {
                last = Some(cp.clone());
                page.common_prefixes.push(cp);
            }
            None => {
                last = Some(key.clone());
                page.objects.push(ListEntry {
                    key: key.clone(),
                    size: obj.data.len() as u64,
                    etag: obj.etag.clone(),
                    last_modified: obj.last_modified,
                    storage_class: obj.class.clone(),
                });
            }
        }
    }
    page
}
