//! The emulator's own XML: a small writer for response documents and a tolerant DOM reader for
//! request bodies (namespaces and prefixes dropped from element names, attributes kept by their
//! qualified name). Deliberately independent of the client's XML code (ARCHITECTURE.md §2), so a
//! bug cannot hide on both sides.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::Reader;
use quick_xml::XmlVersion;

/// Escapes text for element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// Builds an XML document with the declaration COS sends.
#[derive(Debug)]
pub struct Writer {
    /// The text so far.
    out: String,
    /// Open elements, for `end`.
    stack: Vec<String>,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    /// A document starting with `<?xml version='1.0' encoding='utf-8' ?>`.
    pub fn new() -> Writer {
        Writer {
            out: "<?xml version='1.0' encoding='utf-8' ?>\n".to_string(),
            stack: Vec::new(),
        }
    }

    /// A document without the XML declaration (for answers that start with whitespace: a
    /// declaration after whitespace is not well-formed XML).
    pub fn bare() -> Writer {
        Writer {
            out: String::new(),
            stack: Vec::new(),
        }
    }

    /// Opens `<name>`.
    pub fn start(&mut self, name: &str) -> &mut Writer {
        self.start_attrs(name, &[])
    }

    /// Opens `<name a="v" ...>`.
    pub fn start_attrs(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Writer {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push_str(&format!(" {k}=\"{}\"", escape(v)));
        }
        self.out.push('>');
        self.stack.push(name.to_string());
        self
    }

    /// Closes the innermost element.
    pub fn end(&mut self) -> &mut Writer {
        if let Some(n) = self.stack.pop() {
            self.out.push_str(&format!("</{n}>"));
        }
        self
    }

    /// `<name>text</name>` (or `<name/>` when empty).
    pub fn elem(&mut self, name: &str, text: &str) -> &mut Writer {
        if text.is_empty() {
            self.out.push_str(&format!("<{name}/>"));
        } else {
            self.out
                .push_str(&format!("<{name}>{}</{name}>", escape(text)));
        }
        self
    }

    /// `elem` only when `text` is Some.
    pub fn opt(&mut self, name: &str, text: Option<&str>) -> &mut Writer {
        if let Some(t) = text {
            self.elem(name, t);
        }
        self
    }

    /// Closes everything and returns the document.
    pub fn finish(mut self) -> String {
        while !self.stack.is_empty() {
            self.end();
        }
        self.out
    }
}

/// A parsed element: local name, attributes, text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (prefix dropped).
    pub name: String,
    /// Attributes as (qualified name, unescaped value).
    pub attrs: Vec<(String, String)>,
    /// Concatenated, unescaped text content (untrimmed).
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// First child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Trimmed text of the first child with this name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// Attribute by local name (the part after any `:`).
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.rsplit(':').next() == Some(local))
            .map(|(_, v)| v.as_str())
    }
}

fn local(name: &str) -> String {
    name.rsplit(':').next().unwrap_or_default().to_string()
}

fn element_from(e: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let mut el = Element {
        name: local(e.name().as_ref()),
        ..Element::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        // What quick-xml's deprecated `unescape_value()` does since 0.38: entities resolved,
        // XML 1.0 attribute-value normalization.
        let v = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
        el.attrs.push((a.key.as_ref().to_string(), v.to_string()));
    }
    Ok(el)
}

/// Deepest element nesting a request body may have. COS's request documents nest at most five
/// levels (ACL: AccessControlPolicy/AccessControlList/Grant/Grantee/URI); the bound keeps both
/// the parse and the (recursive) drop of the tree shallow whatever a client sends.
pub const MAX_DEPTH: usize = 32;

/// Parses a document into its root element; Err(message) when the body is not well-formed XML
/// or nests deeper than [`MAX_DEPTH`].
pub fn parse(body: &[u8]) -> Result<Element, String> {
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    let mut reader = Reader::from_str(text.trim_start_matches('\u{feff}'));
    let mut stack: Vec<Element> = Vec::new();
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("elements nest deeper than {MAX_DEPTH}"));
                }
                stack.push(element_from(&e)?)
            }
            Event::Empty(e) => {
                let el = element_from(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.into_inner());
                }
            }
            // Since quick-xml 0.38 a text's entity and character references arrive as events of
            // their own instead of being unescaped with the text: resolve them as before (the
            // five predefined entities and `&#..;`; anything else is an error).
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    match r.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => top.text.push(c),
                        None => top.text.push_str(
                            resolve_predefined_entity(&r)
                                .ok_or_else(|| format!("unknown entity &{};", &*r))?,
                        ),
                    }
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.into_inner());
                }
            }
            Event::Eof => return Err("no root element".to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_escapes_and_nests() {
        let mut w = Writer::new();
        w.start("A").elem("ETag", "\"x\"").elem("Empty", "").end();
        let s = w.finish();
        assert!(
            s.ends_with("<A><ETag>&quot;x&quot;</ETag><Empty/></A>"),
            "{s}"
        );
    }

    #[test]
    fn parses_acl_sample_with_xsi_attribute() {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/xml-samples/request-acl-policy.python-xsi-attribute.xml"
        );
        let body = std::fs::read(p).unwrap();
        let root = parse(&body).unwrap();
        assert_eq!(root.name, "AccessControlPolicy");
        let acl = root.child("AccessControlList").unwrap();
        let grants: Vec<_> = acl.all("Grant").collect();
        assert_eq!(grants.len(), 2);
        let g = grants[1].child("Grantee").unwrap();
        assert_eq!(g.attr("type"), Some("Group"));
        assert_eq!(
            g.child_text("URI"),
            Some("http://cam.qcloud.com/groups/global/AllUsers")
        );
    }

    #[test]
    fn parses_delete_sample_unicode_keys() {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/xml-samples/request-delete-multiple.nodejs.xml"
        );
        let root = parse(&std::fs::read(p).unwrap()).unwrap();
        let keys: Vec<_> = root
            .all("Object")
            .filter_map(|o| o.child_text("Key"))
            .collect();
        assert_eq!(keys[1], "docs/目录/文件 b.txt");
        assert_eq!(root.child_text("Quiet"), Some("false"));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let n = 200_000;
        let body = format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        let err = parse(body.as_bytes()).unwrap_err();
        assert!(err.contains("deeper"), "{err}");
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
    }

    /// quick-xml 0.38+ hands entity and character references over as events of their own; keys
    /// in Delete Multiple bodies such as `a&amp;b` must still come out unescaped.
    #[test]
    fn text_references_are_resolved() {
        let el = parse(b"<Key a=\"x&lt;y\">a&amp;b&#x41;&#66;<![CDATA[&amp;]]></Key>").unwrap();
        assert_eq!(el.text, "a&bAB&amp;");
        assert_eq!(el.attr("a"), Some("x<y"));
        assert!(parse(b"<Key>&nosuch;</Key>").is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"").is_err());
    }
}
