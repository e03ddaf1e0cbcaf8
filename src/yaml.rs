//! YAML reading that keeps what the Stackato client kept: every scalar as its raw text, every
//! node with its source position, and hard limits against hostile input (alias bombs, deep
//! nesting, huge files).
//!
//! The real client used Tcl's YAML reader, which tagged scalars but never converted them:
//! `1.10` stays `1.10` and `yes` stays `yes` until a key gives it a type. We build our own small
//! tree from the event stream of `granit-parser` (the parser under `serde-saphyr`) for the same
//! reason: a typed serde model would turn `1.10` into `1.1` before we could look at it.

use std::fmt;

use granit_parser::{Event, Parser, ScalarStyle, ScanError};

use crate::diag::{FileId, Span};

/// Largest manifest file we read. Real files are a few KiB; this keeps a runaway input from
/// eating memory.
pub(crate) const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of sequences and mappings we accept.
pub(crate) const MAX_DEPTH: usize = 64;
/// Most nodes a document may expand to, counting every copy an alias makes.
pub(crate) const MAX_NODES: usize = 250_000;

/// How a scalar was written. Only plain scalars can mean null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
}

/// One scalar, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    pub text: String,
    pub style: Style,
}

/// A mapping entry: key node (always a scalar here) and value node.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

#[derive(Debug, Clone)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A YAML node with the place it came from.
#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub(crate) span: Span,
}

/// The spellings YAML 1.1 (and the Tcl reader) took as null when written plainly.
pub(crate) fn is_null_word(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

impl Node {
    pub fn scalar(text: impl Into<String>, span: Span) -> Node {
        Node {
            value: Value::Scalar(Scalar {
                text: text.into(),
                style: Style::Quoted,
            }),
            span,
        }
    }

    pub fn null(span: Span) -> Node {
        Node {
            value: Value::Scalar(Scalar {
                text: "~".into(),
                style: Style::Plain,
            }),
            span,
        }
    }

    pub fn seq(items: Vec<Node>, span: Span) -> Node {
        Node {
            value: Value::Seq(items),
            span,
        }
    }

    pub fn map(entries: Vec<Entry>, span: Span) -> Node {
        Node {
            value: Value::Map(entries),
            span,
        }
    }

    /// The scalar text, unless the node is null or a collection.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) if !(s.style == Style::Plain && is_null_word(&s.text)) => {
                Some(&s.text)
            }
            _ => None,
        }
    }

    /// The scalar text even when it spells null (`~` gives `~`).
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.style == Style::Plain && is_null_word(&s.text))
    }

    pub(crate) fn is_scalar(&self) -> bool {
        matches!(self.value, Value::Scalar(_))
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(v) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn as_map_mut(&mut self) -> Option<&mut Vec<Entry>> {
        match &mut self.value {
            Value::Map(v) => Some(v),
            _ => None,
        }
    }

    /// Words for messages: "a scalar", "a sequence", "a mapping".
    pub(crate) fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Scalar(_) if self.is_null() => "nothing (null)",
            Value::Scalar(_) => "a scalar",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }

    /// The client's words for the node's type ("scalar", "sequence", "mapping").
    pub(crate) fn type_word(&self) -> &'static str {
        match &self.value {
            Value::Scalar(_) => "scalar",
            Value::Seq(_) => "sequence",
            Value::Map(_) => "mapping",
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?
            .iter()
            .find(|e| e.key.scalar_text() == Some(key))
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut()?
            .iter_mut()
            .find(|e| e.key.scalar_text() == Some(key))
            .map(|e| &mut e.value)
    }

    /// Remove and return the entry for `key`.
    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        let map = self.as_map_mut()?;
        let i = map.iter().position(|e| e.key.scalar_text() == Some(key))?;
        Some(map.remove(i))
    }

    /// Set `key` to `value`, replacing an existing entry in place or appending.
    pub fn insert(&mut self, key: Node, value: Node) {
        if let Some(map) = self.as_map_mut() {
            let k = key.scalar_text().unwrap_or_default().to_string();
            if let Some(e) = map.iter_mut().find(|e| e.key.scalar_text() == Some(&k)) {
                e.value = value;
            } else {
                map.push(Entry { key, value });
            }
        }
    }

    /// The node as plain JSON, the way the client's `debug-manifest` printed it: scalars as
    /// their text, plain null spellings as `null`.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Scalar(_) if self.is_null() => serde_json::Value::Null,
            Value::Scalar(s) => serde_json::Value::String(s.text.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(entries) => {
                let mut m = serde_json::Map::new();
                for e in entries {
                    m.insert(
                        e.key.scalar_text().unwrap_or_default().to_string(),
                        e.value.to_json(),
                    );
                }
                serde_json::Value::Object(m)
            }
        }
    }
}

/// Deep merge as the client's `yaml::deep-merge`: mappings merge key by key, recursively; for
/// anything else (scalars and lists alike) `high` replaces `low` entirely.
pub(crate) fn deep_merge(high: Node, low: Node) -> Node {
    match (high.value, low.value) {
        (Value::Map(mut h), Value::Map(l)) => {
            let mut index: std::collections::HashMap<String, usize> = h
                .iter()
                .enumerate()
                .map(|(i, e)| (e.key.scalar_text().unwrap_or_default().to_string(), i))
                .collect();
            for le in l {
                let key = le.key.scalar_text().unwrap_or_default().to_string();
                match index.get(&key) {
                    Some(&i) => {
                        let placeholder = Node::null(h[i].value.span);
                        let hv = std::mem::replace(&mut h[i].value, placeholder);
                        h[i].value = deep_merge(hv, le.value);
                    }
                    None => {
                        index.insert(key, h.len());
                        h.push(le);
                    }
                }
            }
            Node {
                value: Value::Map(h),
                span: high.span,
            }
        }
        (hv, _) => Node {
            value: hv,
            span: high.span,
        },
    }
}

/// What can go wrong while reading YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub message: String,
    pub(crate) span: Span,
    pub hint: Option<String>,
    /// A second place worth showing (the first definition of a duplicate key).
    pub other: Option<(String, Span)>,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Byte offsets of line starts, to turn the parser's line/char-column into byte spans.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
            }
        }
        LineIndex { text, starts }
    }

    /// Byte offset of 1-based `line`, 0-based char `col`, clamped to the text.
    fn offset(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let line_text = &rest[..line_end];
        let off = line_text
            .char_indices()
            .nth(col)
            .map(|(i, _)| i)
            .unwrap_or(line_text.len());
        start + off
    }

    fn span(&self, file: FileId, s: &granit_parser::Span) -> Span {
        // The parser knows byte offsets for string input; the line scan is the fallback.
        let valid = |b: usize| b <= self.text.len() && self.text.is_char_boundary(b);
        let start = s
            .start
            .byte_offset()
            .filter(|b| valid(*b))
            .unwrap_or_else(|| self.offset(s.start.line(), s.start.col()));
        let end = s
            .end
            .byte_offset()
            .filter(|b| valid(*b))
            .unwrap_or_else(|| self.offset(s.end.line(), s.end.col()));
        let mut end = end.max(start);
        if end == start && start < self.text.len() {
            end = start + self.text[start..].chars().next().map_or(0, char::len_utf8);
        }
        Span {
            file,
            start: start as u32,
            end: end as u32,
            line: s.start.line().max(1) as u32,
            col: s.start.col() as u32 + 1,
        }
    }

    fn point(&self, file: FileId, line: usize, col: usize) -> Span {
        let start = self.offset(line, col);
        let end = (start + self.text[start..].chars().next().map_or(0, char::len_utf8))
            .min(self.text.len());
        Span {
            file,
            start: start as u32,
            end: end as u32,
            line: line.max(1) as u32,
            col: col as u32 + 1,
        }
    }
}

/// Decode file bytes as UTF-8, pointing at the first bad byte when that fails.
pub(crate) fn decode(bytes: &[u8], file: FileId) -> Result<&str, YamlError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(YamlError {
            message: format!(
                "file is {} bytes; manifests larger than {} bytes are refused",
                bytes.len(),
                MAX_FILE_BYTES
            ),
            span: Span::point(file, 1, 1, 0),
            hint: None,
            other: None,
        });
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        YamlError {
            message: format!(
                "the file is not valid UTF-8 (byte 0x{:02x} at line {line}, column {col})",
                bytes[e.valid_up_to()]
            ),
            span: Span::point(file, line as u32, col as u32, line_start as u32),
            hint: Some("save the file as UTF-8".into()),
            other: None,
        }
    })
}

enum Frame {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
    },
    Map {
        entries: Vec<Entry>,
        pending_key: Option<Node>,
        /// Keys that came in through a `<<` merge; an explicit key may override them.
        merged: Vec<String>,
        /// Key → position in `entries`, so duplicates are found in constant time.
        index: std::collections::HashMap<String, usize>,
        span: Span,
        anchor: usize,
    },
}

/// The first document of a YAML stream.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// `None` for an empty document.
    pub root: Option<Node>,
    /// Where a second document starts, if there is one (it is ignored, as the client did).
    pub(crate) next_document: Option<Span>,
}

/// Parse the first YAML document of `text`.
pub fn parse(text: &str, file: FileId) -> Result<Parsed, YamlError> {
    let idx = LineIndex::new(text);
    let parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: std::collections::HashMap<usize, Node> = std::collections::HashMap::new();
    let mut nodes: usize = 0;
    let mut root: Option<Node> = None;
    let mut docs = 0;
    let mut next_document = None;

    let scan_err = |e: ScanError| -> YamlError {
        let m = e.marker();
        let span = idx.point(file, m.line(), m.col());
        let line_text = text.lines().nth(m.line().saturating_sub(1)).unwrap_or("");
        let hint =
            if line_text.starts_with('\t') || line_text.trim_start_matches(' ').starts_with('\t') {
                Some("YAML does not allow tabs for indentation; indent with spaces".to_string())
            } else if e.info().contains("mapping values are not allowed") {
                Some("a value containing `: ` must be quoted, e.g. - \"echo a: b\"".to_string())
            } else {
                None
            };
        YamlError {
            message: format!("YAML syntax error: {}", e.info()),
            span,
            hint,
            other: None,
        }
    };

    for next in parser {
        let (event, espan) = next.map_err(scan_err)?;
        let span = idx.span(file, &espan);
        let node = match event {
            Event::StreamStart => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(..) => {
                docs += 1;
                if docs > 1 {
                    next_document = Some(span);
                    break;
                }
                continue;
            }
            Event::DocumentEnd => continue,
            Event::Alias(id) => match anchors.get(&id) {
                Some(n) => {
                    nodes += count_nodes(n);
                    if nodes > MAX_NODES {
                        return Err(too_big(span));
                    }
                    let mut n = n.clone();
                    n.span = span;
                    n
                }
                None => {
                    return Err(YamlError {
                        message: "YAML alias refers to an unknown anchor".into(),
                        span,
                        hint: None,
                        other: None,
                    });
                }
            },
            Event::Scalar(text, style, anchor, _tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    _ => Style::Block,
                };
                let n = Node {
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        style,
                    }),
                    span,
                };
                if anchor != 0 {
                    anchors.insert(anchor, n.clone());
                }
                n
            }
            Event::SequenceStart(_, anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(span));
                }
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    span,
                    anchor,
                });
                continue;
            }
            Event::MappingStart(_, anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(span));
                }
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    pending_key: None,
                    merged: Vec::new(),
                    index: std::collections::HashMap::new(),
                    span,
                    anchor,
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    items,
                    span: s,
                    anchor,
                }) => {
                    let n = Node::seq(items, s);
                    if anchor != 0 {
                        anchors.insert(anchor, n.clone());
                    }
                    n
                }
                _ => return Err(internal(span)),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    entries,
                    span: s,
                    anchor,
                    ..
                }) => {
                    let n = Node::map(entries, s);
                    if anchor != 0 {
                        anchors.insert(anchor, n.clone());
                    }
                    n
                }
                _ => return Err(internal(span)),
            },
            // Comment, anchor-metadata and unresolved-alias events are not enabled.
            #[allow(unreachable_patterns)]
            _ => continue,
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(too_big(node.span));
        }
        match stack.last_mut() {
            None => {
                if root.is_none() {
                    root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                merged,
                index,
                ..
            }) => match pending_key.take() {
                None => {
                    if !node.is_scalar() {
                        return Err(YamlError {
                            message: format!(
                                "a mapping key must be text, but this key is {}",
                                node.kind_name()
                            ),
                            span: node.span,
                            hint: Some(
                                "a line starting with `? ` or `[`/`{` used as a key is not supported"
                                    .into(),
                            ),
                            other: None,
                        });
                    }
                    *pending_key = Some(node);
                }
                Some(key) => add_entry(entries, merged, index, key, node)?,
            },
        }
    }
    Ok(Parsed {
        root,
        next_document,
    })
}

/// Add a mapping entry, refusing duplicates and expanding `<<` merge keys.
fn add_entry(
    entries: &mut Vec<Entry>,
    merged: &mut Vec<String>,
    index: &mut std::collections::HashMap<String, usize>,
    key: Node,
    value: Node,
) -> Result<(), YamlError> {
    let k = key.scalar_text().unwrap_or_default();
    if k == "<<" && matches!(&key.value, Value::Scalar(s) if s.style == Style::Plain) {
        let sources: Vec<&Node> = match &value.value {
            Value::Map(_) => vec![&value],
            Value::Seq(items) if items.iter().all(|n| n.as_map().is_some()) => {
                items.iter().collect()
            }
            _ => {
                return Err(YamlError {
                    message: "a `<<` merge key needs a mapping or a list of mappings".into(),
                    span: value.span,
                    hint: None,
                    other: None,
                });
            }
        };
        for src in sources {
            for e in src.as_map().unwrap_or_default() {
                let ek = e.key.scalar_text().unwrap_or_default();
                if !index.contains_key(ek) {
                    merged.push(ek.to_string());
                    index.insert(ek.to_string(), entries.len());
                    entries.push(e.clone());
                }
            }
        }
        return Ok(());
    }
    if let Some(pos) = merged.iter().position(|m| m == k) {
        merged.remove(pos);
        if let Some(&i) = index.get(k) {
            entries[i] = Entry { key, value };
        }
        return Ok(());
    }
    if let Some(first) = index.get(k).map(|&i| &entries[i]) {
        return Err(YamlError {
            message: format!("duplicate key `{k}` in the same mapping"),
            span: key.span,
            hint: Some("remove one of the two; YAML does not merge repeated keys".into()),
            other: Some(("first defined here".into(), first.key.span)),
        });
    }
    index.insert(k.to_string(), entries.len());
    entries.push(Entry { key, value });
    Ok(())
}

fn count_nodes(n: &Node) -> usize {
    match &n.value {
        Value::Scalar(_) => 1,
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|e| 1 + count_nodes(&e.value))
                .sum::<usize>()
        }
    }
}

fn too_big(span: Span) -> YamlError {
    YamlError {
        message: format!(
            "the document expands to more than {MAX_NODES} nodes (an alias bomb?); refusing it"
        ),
        span,
        hint: None,
        other: None,
    }
}

fn too_deep(span: Span) -> YamlError {
    YamlError {
        message: format!("nesting deeper than {MAX_DEPTH} levels; refusing it"),
        span,
        hint: None,
        other: None,
    }
}

fn internal(span: Span) -> YamlError {
    YamlError {
        message: "unbalanced YAML structure".into(),
        span,
        hint: None,
        other: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Node {
        parse(s, FileId(0)).unwrap().root.unwrap()
    }

    #[test]
    fn keeps_raw_scalar_text() {
        let n = p("a: 1.10\nb: yes\nc: 010\nd: ~\ne: '~'\nf:\n");
        assert_eq!(n.get("a").unwrap().as_str(), Some("1.10"));
        assert_eq!(n.get("b").unwrap().as_str(), Some("yes"));
        assert_eq!(n.get("c").unwrap().as_str(), Some("010"));
        assert!(n.get("d").unwrap().is_null());
        assert_eq!(n.get("e").unwrap().as_str(), Some("~"));
        assert!(n.get("f").unwrap().is_null());
    }

    #[test]
    fn positions_are_one_based() {
        let n = p("name: x\ninstances: many\n");
        let s = n.get("instances").unwrap().span;
        assert_eq!((s.line, s.col), (2, 12));
        assert_eq!(s.start as usize, "name: x\ninstances: ".len());
    }

    #[test]
    fn duplicate_keys_are_refused_with_both_places() {
        let e = parse("a: 1\nb: 2\na: 3\n", FileId(0)).unwrap_err();
        assert!(e.message.contains("duplicate key `a`"));
        assert_eq!(e.span.line, 3);
        assert_eq!(e.other.unwrap().1.line, 1);
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        let e = parse(&s, FileId(0)).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let s = "[".repeat(10_000);
        let e = parse(&s, FileId(0)).unwrap_err();
        assert!(
            e.message.contains("nesting") || e.message.contains("syntax"),
            "{}",
            e.message
        );
    }

    #[test]
    fn merge_keys_fill_missing_entries() {
        let n = p("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n");
        let c = n.get("c").unwrap();
        assert_eq!(c.get("x").unwrap().as_str(), Some("1"));
        assert_eq!(c.get("y").unwrap().as_str(), Some("3"));
    }

    #[test]
    fn deep_merge_replaces_lists_and_merges_maps() {
        let a = p("h: {x: [1]}\nk: a\n");
        let b = p("h: {x: [2, 3], y: 4}\nk: b\nz: 5\n");
        let m = deep_merge(a, b);
        assert_eq!(
            m.to_json(),
            serde_json::json!({"h": {"x": ["1"], "y": "4"}, "k": "a", "z": "5"})
        );
    }

    #[test]
    fn non_utf8_points_at_the_byte() {
        let e = decode(b"name: a\nmem: \xff\n", FileId(0)).unwrap_err();
        assert!(e.message.contains("line 2, column 6"), "{}", e.message);
    }

    #[test]
    fn tab_indentation_gets_a_hint() {
        let e = parse("a:\n\tb: 1\n", FileId(0)).unwrap_err();
        assert!(e.hint.unwrap_or_default().contains("tabs"));
    }
}
