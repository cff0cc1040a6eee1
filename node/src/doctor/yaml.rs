//! A YAML document as a small owned tree whose every node and key knows its line, read
//! with `saphyr` (see `load`). The rules only ever need a few fields of a manifest, so
//! they walk this tree rather than deserializing the whole Kubernetes API into structs:
//! a field the doctor does not know is never an error, and a field it does know but of
//! the wrong type is reported with its path and line.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

/// Deeper than any manifest: nodes below this depth are dropped (read as null). The
/// parser has a recursion limit of its own; this one bounds our own walk whatever it is.
const MAX_DEPTH: usize = 256;

/// One YAML node and the line (1-based) it starts on.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// 1-based line in the file.
    pub line: usize,
    /// What the node holds.
    pub value: Value,
}

/// A node's content, scalars resolved by the YAML 1.2 core schema (`yes` is a string).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Any other scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<Entry>),
}

/// One key of a mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key as text (a non-string scalar key as it would print).
    pub key: String,
    /// The line of the key: where a finding about this field points.
    pub key_line: usize,
    /// The value.
    pub value: Node,
}

/// A file that is not YAML: the parser's message and where it stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// The parser's words.
    pub message: String,
}

/// Every document of `text`, in order (an empty document is a `Null` node). Aliases
/// are expanded under the parser's node budget (a billion-laughs file is an error, not
/// an out-of-memory), duplicate keys are an error, as the YAML spec says.
pub fn load(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| SyntaxError {
        line: e.marker().line().max(1),
        message: e.info().to_string(),
    })?;
    Ok(docs.iter().map(|d| convert(d, 0)).collect())
}

fn scalar_text(s: &Scalar<'_>) -> String {
    match s {
        Scalar::Null => "null".to_string(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::Integer(i) => i.to_string(),
        Scalar::FloatingPoint(f) => f.to_string(),
        Scalar::String(s) => s.to_string(),
    }
}

fn convert(n: &MarkedYaml<'_>, depth: usize) -> Node {
    let line = n.span.start.line().max(1);
    if depth > MAX_DEPTH {
        return Node {
            line,
            value: Value::Null,
        };
    }
    let value = match &n.data {
        YamlData::Value(s) => match s {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(*b),
            Scalar::Integer(i) => Value::Int(*i),
            Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
            Scalar::String(s) => Value::Str(s.to_string()),
        },
        // Only when the loader is told to parse lazily; kept as the text it is.
        YamlData::Representation(text, _, _) => Value::Str(text.to_string()),
        YamlData::Sequence(items) => {
            Value::Seq(items.iter().map(|i| convert(i, depth + 1)).collect())
        }
        YamlData::Mapping(map) => Value::Map(
            map.iter()
                .map(|(k, v)| Entry {
                    key: match &k.data {
                        YamlData::Value(s) => scalar_text(s),
                        YamlData::Representation(t, _, _) => t.to_string(),
                        // A sequence or mapping as a key: no Kubernetes field is one.
                        _ => "<complex key>".to_string(),
                    },
                    key_line: k.span.start.line().max(1),
                    value: convert(v, depth + 1),
                })
                .collect(),
        ),
        // A tag (`!!str 5`) says how to read the node; the doctor reads its content.
        YamlData::Tagged(_, inner) => return convert(inner, depth + 1),
        YamlData::Alias(_) | YamlData::BadValue => Value::Null,
    };
    Node { line, value }
}

impl Node {
    /// The value of `key` when this node is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// What kind of node this is, in words, for error messages.
    pub fn kind(&self) -> String {
        match &self.value {
            Value::Null => "null".to_string(),
            Value::Bool(b) => format!("a boolean ({b})"),
            Value::Int(i) => format!("an integer ({i})"),
            Value::Float(f) => format!("a number ({f})"),
            Value::Str(s) => format!("a string ({s:?})"),
            Value::Seq(_) => "a list".to_string(),
            Value::Map(_) => "a mapping".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_keys_carry_their_lines() {
        let docs = load("# comment\n---\na: 1\nb:\n  c: [x, 2]\n  d:\n    - e\n---\n").unwrap();
        // The trailing `---` opens an empty document.
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].value, Value::Null);
        let a = docs[0].get("a").unwrap();
        assert_eq!((a.key_line, &a.value.value), (3, &Value::Int(1)));
        let b = docs[0].get("b").unwrap();
        let d = b.value.get("d").unwrap();
        assert_eq!(d.key_line, 6);
        let Value::Seq(items) = &d.value.value else {
            panic!("{d:?}")
        };
        assert_eq!(items[0].line, 7);
        assert_eq!(items[0].value, Value::Str("e".into()));
    }

    #[test]
    fn bad_yaml_is_an_error_with_a_line_never_a_panic() {
        let e = load("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
        let e = load("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("duplicate"), "{e:?}");
        // Deep nesting and an alias bomb are refused by the parser's own limits.
        let deep = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(load(&deep).is_err());
        let mut bomb = String::from("a0: &a0 [1,1,1,1,1,1,1,1,1]\n");
        for i in 1..12 {
            let prev = format!("*a{}", i - 1);
            bomb += &format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 9].join(","));
        }
        assert!(load(&bomb).is_err());
    }

    #[test]
    fn core_schema_scalars_and_tags() {
        let docs = load("a: yes\nb: !!str 5\nc: 1.5\nd: ~\n").unwrap();
        let v = |k| docs[0].get(k).unwrap().value.value.clone();
        assert_eq!(v("a"), Value::Str("yes".into()));
        assert_eq!(v("c"), Value::Float(1.5));
        assert_eq!(v("d"), Value::Null);
        // A tagged scalar keeps its text as the loader resolved it.
        assert!(matches!(v("b"), Value::Str(_) | Value::Int(5)));
    }
}
