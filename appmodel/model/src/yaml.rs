//! A YAML reader that keeps the position of every node.
//!
//! serde's YAML front ends forget where a value came from once it is deserialized, yet every
//! error appmodel reports must point at a line and column. So a document is first read into a
//! [`Node`] tree (built from `saphyr-parser` events, YAML 1.2 core schema), checked there, and
//! only then turned into typed structs through `serde_json::Value`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diag::Diagnostic;

/// A position in a source file, both numbers 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }
}

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into a document, e.g. `components[1].ports[0].name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<Seg>);

impl Path {
    pub fn root() -> Path {
        Path(Vec::new())
    }

    pub fn key(&self, key: &str) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        Path(segs)
    }

    pub fn index(&self, index: usize) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Path(segs)
    }

    /// Builds a path from a dotted string where numeric parts are indexes (`components.1.env`).
    pub fn parse(dotted: &str) -> Path {
        Path(
            dotted
                .split('.')
                .filter(|s| !s.is_empty())
                .map(|s| match s.parse::<usize>() {
                    Ok(i) => Seg::Index(i),
                    Err(_) => Seg::Key(s.to_string()),
                })
                .collect(),
        )
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A mapping entry: the key keeps its own position so "unknown field" can point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    /// The name of this node's kind, as used in error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn entries(&self) -> &[Entry] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    /// The node at `path`, if the document has it.
    pub fn at(&self, path: &Path) -> Option<&Node> {
        let mut node = self;
        for seg in &path.0 {
            node = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(_)) => node.get(k)?,
                (Seg::Index(i), Value::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The best position for `path`: the node itself, or its deepest existing ancestor.
    pub fn locate(&self, path: &Path) -> Pos {
        let mut node = self;
        for seg in &path.0 {
            let next = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(_)) => node.get(k),
                (Seg::Index(i), Value::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.pos
    }

    /// The position of the key that ends `path` (falls back to [`Node::locate`]).
    pub fn locate_key(&self, path: &Path) -> Pos {
        if let Some((Seg::Key(k), parent)) = path.0.split_last() {
            if let Some(parent) = self.at(&Path(parent.to_vec())) {
                if let Some(e) = parent.entries().iter().find(|e| &e.key == k) {
                    return e.key_pos;
                }
            }
        }
        self.locate(path)
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Reads one YAML document. Syntax errors stop the read; duplicate keys are collected and the
/// first occurrence is kept, so a caller can report them together with later findings.
pub fn parse(text: &str) -> Result<(Node, Vec<Diagnostic>), Diagnostic> {
    let mut builder = Builder::default();
    let mut documents = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            Diagnostic::new(
                Pos {
                    line: e.marker().line(),
                    col: e.marker().col() + 1,
                },
                Path::root(),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(Diagnostic::new(
                        Pos::from_span(&span),
                        Path::root(),
                        "expected a single YAML document, found a second one".to_string(),
                    )
                    .with_hint("remove the `---` line and everything after it"));
                }
            }
            other => builder.event(other, &span)?,
        }
    }
    let root = builder.root.unwrap_or(Node {
        value: Value::Null,
        pos: Pos { line: 1, col: 1 },
    });
    Ok((root, builder.duplicates))
}

enum Frame {
    Seq(Node),
    Map(Node, Option<(String, Pos)>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Frame, usize)>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    duplicates: Vec<Diagnostic>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<(), Diagnostic> {
        let pos = Pos::from_span(span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let tagged_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !tagged_str {
                    resolve_plain(&text)
                } else {
                    Value::Str(text.to_string())
                };
                self.push(Node { value, pos }, anchor, Some(text))
            }
            Event::SequenceStart(anchor, _) => {
                let node = Node {
                    value: Value::Seq(Vec::new()),
                    pos,
                };
                self.stack.push((Frame::Seq(node), anchor));
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                let node = Node {
                    value: Value::Map(Vec::new()),
                    pos,
                };
                self.stack.push((Frame::Map(node, None), anchor));
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some((Frame::Seq(node) | Frame::Map(node, _), anchor)) => {
                    self.push(node, anchor, None)
                }
                None => Ok(()),
            },
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let mut node = node.clone();
                    node.pos = pos;
                    self.push(node, 0, None)
                }
                None => Err(Diagnostic::new(
                    pos,
                    Path::root(),
                    "invalid YAML: alias to an unknown anchor".to_string(),
                )),
            },
            _ => Ok(()),
        }
    }

    fn push(
        &mut self,
        node: Node,
        anchor: usize,
        scalar: Option<Cow<'_, str>>,
    ) -> Result<(), Diagnostic> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some((Frame::Seq(seq), _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some((Frame::Map(map, pending), _)) => match pending.take() {
                None => {
                    let Some(key) = scalar else {
                        return Err(Diagnostic::new(
                            node.pos,
                            Path::root(),
                            "a mapping key must be a plain value, not a list or mapping"
                                .to_string(),
                        ));
                    };
                    *pending = Some((key.into_owned(), node.pos));
                }
                Some((key, key_pos)) => {
                    if let Value::Map(entries) = &mut map.value {
                        if let Some(first) = entries.iter().find(|e| e.key == key) {
                            self.duplicates.push(
                                Diagnostic::new(
                                    key_pos,
                                    Path::root(),
                                    format!(
                                        "duplicate key `{key}` (first given at line {})",
                                        first.key_pos.line
                                    ),
                                )
                                .with_hint("a key may appear only once in a mapping"),
                            );
                        } else {
                            entries.push(Entry {
                                key,
                                key_pos,
                                value: node,
                            });
                        }
                    }
                }
            },
        }
        Ok(())
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Int(i);
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Value::Int(i);
        }
    }
    let looks_float = digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if looks_float {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_follow_the_core_schema() {
        let (node, dups) = parse(
            "a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: hello world\ng: 0x1F\nh: \"true\"\ni: 1.2.3\n",
        )
        .unwrap();
        assert!(dups.is_empty());
        let j = node.to_json();
        assert_eq!(
            j,
            serde_json::json!({"a":1,"b":"1","c":true,"d":null,"e":1.5,"f":"hello world","g":31,"h":"true","i":"1.2.3"})
        );
    }

    #[test]
    fn positions_point_at_values_and_keys() {
        let text = "app:\n  name: x\nlist:\n  - one\n  - two: 2\n";
        let (node, _) = parse(text).unwrap();
        assert_eq!(
            node.locate(&Path::parse("app.name")),
            Pos { line: 2, col: 9 }
        );
        assert_eq!(
            node.locate_key(&Path::parse("app.name")),
            Pos { line: 2, col: 3 }
        );
        assert_eq!(
            node.locate(&Path::parse("list.1.two")),
            Pos { line: 5, col: 10 }
        );
        // a missing child falls back to the deepest ancestor
        assert_eq!(
            node.locate(&Path::parse("app.nope")),
            Pos { line: 2, col: 3 }
        );
    }

    #[test]
    fn duplicate_keys_are_reported_and_the_first_kept() {
        let (node, dups) = parse("a: 1\nb: 2\na: 3\n").unwrap();
        assert_eq!(node.to_json(), serde_json::json!({"a":1,"b":2}));
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[0].message, "duplicate key `a` (first given at line 1)");
        assert_eq!(dups[0].pos, Pos { line: 3, col: 1 });
    }

    #[test]
    fn anchors_and_aliases_are_expanded() {
        let (node, _) = parse("base: &b {x: 1}\ncopy: *b\n").unwrap();
        assert_eq!(
            node.to_json(),
            serde_json::json!({"base":{"x":1},"copy":{"x":1}})
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.starts_with("invalid YAML: "), "{}", err.message);
        assert!(err.pos.line >= 1);
    }

    #[test]
    fn a_second_document_is_refused() {
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(err.pos.line, 2);
    }
}
