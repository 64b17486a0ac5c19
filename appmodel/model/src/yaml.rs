//! A YAML reader that keeps the position of every node.
//!
//! serde's YAML front ends forget where a value came from once it is deserialized, yet every
//! error appmodel reports must point at a line and column. So a document is first read into a
//! [`Node`] tree (built from `saphyr-parser` events, YAML 1.2 core schema), checked there, and
//! only then turned into typed structs through `serde_json::Value`.
//!
//! Input is hostile: anchors and aliases are expanded by copying, so a small file could
//! stand for billions of values (a "billion laughs"). The reader charges every value it
//! builds, an alias at the full size of what it stands for, against [`MAX_NODES`] and
//! [`MAX_TEXT`], and refuses nesting deeper than [`MAX_DEPTH`] (the checks after it recurse).
//! saphyr-parser itself keeps its own state on the heap, not the stack.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diag::Diagnostic;

/// The most values (scalars, lists, mappings, keys included) one document may expand to.
pub const MAX_NODES: usize = 250_000;
/// The most scalar text, in bytes, one document may expand to.
pub const MAX_TEXT: usize = 16 << 20;
/// The deepest nesting of lists and mappings.
pub const MAX_DEPTH: usize = 64;

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

    fn end_of_span(span: &Span) -> Pos {
        Pos {
            line: span.end.line(),
            col: span.end.col() + 1,
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
    /// Where the node starts.
    pub pos: Pos,
    /// Where it ends (exclusive): for an alias, the end of the alias.
    pub end: Pos,
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
    read(text).map(|d| (d.root, d.duplicates))
}

/// One document as [`read`] returns it.
#[derive(Debug, Clone)]
pub struct Document {
    pub root: Node,
    /// A finding per repeated key (the first occurrence is kept).
    pub duplicates: Vec<Diagnostic>,
    /// Where the values of the repeated keys were (start, end), which are not in the tree.
    pub dropped: Vec<(Pos, Pos)>,
}

/// [`parse`], also telling where the values dropped with repeated keys were.
pub fn read(text: &str) -> Result<Document, Diagnostic> {
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
    let start = Pos { line: 1, col: 1 };
    let root = builder.root.unwrap_or(Node {
        value: Value::Null,
        pos: start,
        end: start,
    });
    Ok(Document {
        root,
        duplicates: builder.duplicates,
        dropped: builder.dropped,
    })
}

enum Frame {
    Seq(Node),
    Map(Node, Option<(String, Pos)>),
}

/// What a subtree costs: its values and its scalar text.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    nodes: usize,
    text: usize,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.text = self.text.saturating_add(other.text);
    }

    fn since(self, start: Cost) -> Cost {
        Cost {
            nodes: self.nodes - start.nodes,
            text: self.text - start.text,
        }
    }
}

/// A list or mapping being read.
struct Open {
    frame: Frame,
    anchor: usize,
    /// The document's tree cost when it started.
    start: Cost,
    /// The deepest nesting among its children (0: only scalars).
    height: usize,
}

/// An anchored node, ready to be copied by an alias.
struct Anchored {
    node: Node,
    cost: Cost,
    height: usize,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Anchored>,
    /// The values in the document tree, aliases expanded.
    tree: Cost,
    /// Everything built: the tree and the copies kept for anchors.
    built: Cost,
    root: Option<Node>,
    duplicates: Vec<Diagnostic>,
    dropped: Vec<(Pos, Pos)>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<(), Diagnostic> {
        let pos = Pos::from_span(span);
        let end = Pos::end_of_span(span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let tagged_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !tagged_str {
                    resolve_plain(&text)
                } else {
                    Value::Str(text.to_string())
                };
                let cost = Cost {
                    nodes: 1,
                    text: text.len(),
                };
                self.charge(cost, pos, false)?;
                self.push(Node { value, pos, end }, anchor, Some(text), cost, 0)
            }
            Event::SequenceStart(anchor, _) => {
                self.open(Frame::Seq, Value::Seq(Vec::new()), anchor, pos)
            }
            Event::MappingStart(anchor, _) => {
                self.open(|n| Frame::Map(n, None), Value::Map(Vec::new()), anchor, pos)
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(open) => {
                    let cost = self.tree.since(open.start);
                    let (Frame::Seq(mut node) | Frame::Map(mut node, _)) = open.frame;
                    node.end = end;
                    self.push(node, open.anchor, None, cost, open.height + 1)
                }
                None => Ok(()),
            },
            Event::Alias(id) => {
                let Some(anchored) = self.anchors.get(&id) else {
                    return Err(Diagnostic::new(
                        pos,
                        Path::root(),
                        "invalid YAML: alias to an unknown anchor".to_string(),
                    ));
                };
                let (cost, height) = (anchored.cost, anchored.height);
                if self.stack.len() + height > MAX_DEPTH {
                    return Err(too_deep(pos, true));
                }
                self.charge(cost, pos, true)?;
                let mut node = self
                    .anchors
                    .get(&id)
                    .map(|a| a.node.clone())
                    .unwrap_or(Node {
                        value: Value::Null,
                        pos,
                        end,
                    });
                node.pos = pos;
                node.end = end;
                self.push(node, 0, None, cost, height)
            }
            _ => Ok(()),
        }
    }

    fn open(
        &mut self,
        frame: impl FnOnce(Node) -> Frame,
        value: Value,
        anchor: usize,
        pos: Pos,
    ) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(pos, false));
        }
        self.charge(Cost { nodes: 1, text: 0 }, pos, false)?;
        let start = Cost {
            nodes: self.tree.nodes - 1,
            text: self.tree.text,
        };
        self.stack.push(Open {
            frame: frame(Node {
                value,
                pos,
                end: pos,
            }),
            anchor,
            start,
            height: 0,
        });
        Ok(())
    }

    /// Counts `cost` against the document's budget: into the tree, and into what is built.
    fn charge(&mut self, cost: Cost, pos: Pos, alias: bool) -> Result<(), Diagnostic> {
        self.tree.add(cost);
        self.built.add(cost);
        self.check_budget(pos, alias)
    }

    fn check_budget(&self, pos: Pos, alias: bool) -> Result<(), Diagnostic> {
        let what = if self.built.nodes > MAX_NODES {
            format!("more than {MAX_NODES} values")
        } else if self.built.text > MAX_TEXT {
            format!("more than {MAX_TEXT} bytes of text")
        } else {
            return Ok(());
        };
        let (message, hint) = if alias {
            (
                format!("this alias makes the document expand to {what}"),
                "anchors and aliases may repeat a value, not multiply the document; write the values out",
            )
        } else {
            (
                format!("the document has {what}"),
                "an app model or site configuration is far smaller; check that this is the right file",
            )
        };
        Err(Diagnostic::new(pos, Path::root(), message).with_hint(hint))
    }

    fn push(
        &mut self,
        node: Node,
        anchor: usize,
        scalar: Option<Cow<'_, str>>,
        cost: Cost,
        height: usize,
    ) -> Result<(), Diagnostic> {
        if anchor != 0 {
            // The copy kept for aliases is memory too.
            self.built.add(cost);
            self.check_budget(node.pos, false)?;
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    cost,
                    height,
                },
            );
        }
        let Some(open) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        open.height = open.height.max(height);
        match &mut open.frame {
            Frame::Seq(seq) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Frame::Map(map, pending) => match pending.take() {
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
                            self.dropped.push((node.pos, node.end));
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

fn too_deep(pos: Pos, alias: bool) -> Diagnostic {
    let message = if alias {
        format!("this alias nests lists and mappings deeper than {MAX_DEPTH} levels")
    } else {
        format!("lists and mappings are nested deeper than {MAX_DEPTH} levels")
    };
    Diagnostic::new(pos, Path::root(), message)
        .with_hint("an app model or site configuration needs only a few levels")
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
    /// Regression: site trust defect 6, alias bomb. Nine levels of ten aliases each stand for
    /// a billion values; the reader used to copy them all and run out of memory.
    #[test]
    fn a_billion_laughs_is_refused_at_the_alias_that_crosses_the_budget() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&text).unwrap_err();
        assert_eq!(
            err.message,
            format!("this alias makes the document expand to more than {MAX_NODES} values")
        );
        // The tree reaches the budget inside line 6 (10^5 values and their copies).
        assert_eq!(err.pos.line, 6, "{err:?}");
        assert!(err.hint.unwrap().contains("anchors and aliases"));
    }

    /// Regression: site trust defect 6, alias bomb: one long string repeated by aliases.
    #[test]
    fn aliases_of_a_long_string_are_charged_its_length() {
        let long = "x".repeat(1 << 20);
        let text = format!("a: &s {long}\nb: [{}]\n", vec!["*s"; 40].join(", "));
        let err = parse(&text).unwrap_err();
        assert_eq!(
            err.message,
            format!("this alias makes the document expand to more than {MAX_TEXT} bytes of text")
        );
        assert_eq!(err.pos.line, 2);
    }

    /// Regression: site trust defect 6, deep nesting would overflow the stack of the checks
    /// that recurse over the tree (and of its drop).
    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        let err = parse(&deep).unwrap_err();
        assert_eq!(
            err.message,
            format!("lists and mappings are nested deeper than {MAX_DEPTH} levels")
        );
        assert_eq!(
            err.pos,
            Pos {
                line: 1,
                col: MAX_DEPTH + 1
            }
        );
        // Block style, far deeper than the stack would take.
        let mut block = String::new();
        for i in 0..100_000 {
            block.push_str(&" ".repeat(i.min(2000)));
            block.push_str("- \n");
        }
        assert!(parse(&block).is_err());
        let block: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let err = parse(&block).unwrap_err();
        assert_eq!(err.pos.line, MAX_DEPTH + 1);
    }

    /// Regression: site trust defect 6: an alias may not nest beyond the limit either.
    #[test]
    fn an_alias_that_nests_too_deep_is_refused() {
        let inner = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let text =
            format!("a: &a {inner}\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]\n");
        let err = parse(&text).unwrap_err();
        assert_eq!(
            err.message,
            format!("this alias nests lists and mappings deeper than {MAX_DEPTH} levels")
        );
        assert_eq!(err.pos.line, 2);
    }

    #[test]
    fn nodes_know_where_they_end() {
        let (node, _) = parse("a: hello\nb: 'q x'\nc: |\n  one\n  two\nd: [1, 2]\n").unwrap();
        let span = |k: &str| {
            let n = node.get(k).unwrap();
            ((n.pos.line, n.pos.col), (n.end.line, n.end.col))
        };
        assert_eq!(span("a"), ((1, 4), (1, 9)));
        assert_eq!(span("b"), ((2, 4), (2, 9)));
        // A block scalar starts at its text and ends after its last line.
        assert_eq!(span("c"), ((4, 3), (6, 1)));
        assert_eq!(span("d"), ((6, 4), (6, 10)));
    }
}
