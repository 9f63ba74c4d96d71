//! Typed reading of a parsed JSON value with the path of every field: serde's derives do the
//! reading, and an error names where it happened (`steps[3].params.0.weight`), not only what.
//!
//! [`from_value`] runs a type's `Deserialize` over a [`serde_json::Value`] through a deserializer
//! that remembers the way down: an error raised inside an object member or a list element is
//! returned with that member's key or that element's index put in front of its path.

use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Expected, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::Value;

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A member of an object.
    Key(String),
    /// An element of a list.
    Index(usize),
}

/// What is wrong with the value at a [`FieldError`]'s path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A required field is absent.
    Missing {
        /// The absent field.
        field: String,
    },
    /// A field the format does not have.
    Unknown {
        /// The field's name as written.
        field: String,
        /// The fields the format has here.
        expected: Vec<String>,
    },
    /// A value of the wrong kind (a string for a number, a number for a list, …).
    WrongType {
        /// What was found, e.g. ``string "a"``.
        found: String,
        /// What the format expects there, e.g. `a number`.
        expected: String,
    },
    /// A value of the right kind out of what the format allows (e.g. a negative size).
    WrongValue {
        /// What was found.
        found: String,
        /// What the format expects there.
        expected: String,
    },
    /// A list of the wrong length.
    WrongLength {
        /// The length found.
        found: usize,
        /// What the format expects.
        expected: String,
    },
    /// Anything else serde reports.
    Other(String),
}

/// A value that does not have the type the format gives its field, with the field's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct FieldError {
    /// Where, from the top of the document (empty: the document itself).
    pub path: Vec<Segment>,
    /// What is wrong there.
    pub problem: Problem,
}

/// Writes `path` as `a.b[3].c`; a path of nothing is the document itself.
pub fn path_text(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(k) if out.is_empty() => out.push_str(k),
            Segment::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

impl FieldError {
    /// The path as text (`steps[3].params.0.weight`).
    pub fn path_text(&self) -> String {
        path_text(&self.path)
    }

    /// The path of the field at fault: for a missing or unknown field, the field itself.
    pub fn field(&self) -> String {
        match &self.problem {
            Problem::Missing { field } | Problem::Unknown { field, .. } => {
                let mut path = self.path.clone();
                path.push(Segment::Key(field.clone()));
                path_text(&path)
            }
            _ => self.path_text(),
        }
    }

    fn describe(&self) -> String {
        let at = if self.path.is_empty() && !matches!(self.problem, Problem::Missing { .. } | Problem::Unknown { .. }) {
            "the case".to_string()
        } else {
            format!("`{}`", self.field())
        };
        match &self.problem {
            Problem::Missing { .. } => format!("{at} is missing"),
            Problem::Unknown { expected, .. } => {
                let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
                format!("{at}: unknown field (expected one of {})", list.join(", "))
            }
            Problem::WrongType { found, expected } => format!("{at}: expected {expected}, found {found}"),
            Problem::WrongValue { found, expected } => format!("{at}: expected {expected}, found {found}"),
            Problem::WrongLength { found, expected } => {
                format!("{at}: expected {expected}, found a list of {found}")
            }
            Problem::Other(message) => format!("{at}: {message}"),
        }
    }

    fn new(problem: Problem) -> Self {
        FieldError {
            path: Vec::new(),
            problem,
        }
    }

    fn within(mut self, segment: Segment) -> Self {
        self.path.insert(0, segment);
        self
    }
}

/// serde's names of the primitive types, in the words of the format.
fn expected_words(expected: &dyn Expected) -> String {
    let text = expected.to_string();
    match text.as_str() {
        "f64" | "f32" => "a number".to_string(),
        "usize" | "u64" | "u32" => "a whole number >= 0".to_string(),
        "i64" | "i32" => "a whole number".to_string(),
        "a boolean" => "true or false".to_string(),
        "a map" => "an object".to_string(),
        "a sequence" => "a list".to_string(),
        _ => text,
    }
}

/// serde's names of what was found, in the words of JSON.
fn found_words(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Seq => "a list".to_string(),
        Unexpected::Map => "an object".to_string(),
        Unexpected::Unit | Unexpected::Option => "null".to_string(),
        other => other.to_string(),
    }
}

impl de::Error for FieldError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        FieldError::new(Problem::Other(msg.to_string()))
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        FieldError::new(Problem::WrongType {
            found: found_words(&unexp),
            expected: expected_words(exp),
        })
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        FieldError::new(Problem::WrongValue {
            found: found_words(&unexp),
            expected: expected_words(exp),
        })
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        FieldError::new(Problem::WrongLength {
            found: len,
            expected: exp.to_string(),
        })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        FieldError::new(Problem::Unknown {
            field: field.to_string(),
            expected: expected.iter().map(|e| e.to_string()).collect(),
        })
    }

    fn missing_field(field: &'static str) -> Self {
        FieldError::new(Problem::Missing {
            field: field.to_string(),
        })
    }
}

/// Reads a `T` from `value`; an error names the path of the value at fault.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, FieldError> {
    T::deserialize(At(value))
}

/// What `value` is, for an error.
fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (None, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// A value being read, as a deserializer.
struct At<'a>(&'a Value);

impl<'de> de::Deserializer<'de> for At<'de> {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Elements {
                items: items.iter(),
                index: 0,
            }),
            Value::Object(map) => visitor.visit_map(Members {
                members: map.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map enum identifier
    }
}

/// The elements of a list, each read with its index.
struct Elements<'a> {
    items: std::slice::Iter<'a, Value>,
    index: usize,
}

impl<'de> SeqAccess<'de> for Elements<'de> {
    type Error = FieldError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, FieldError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(At(item))
            .map(Some)
            .map_err(|e| e.within(Segment::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The members of an object, each value read with its key.
struct Members<'a> {
    members: serde_json::map::Iter<'a>,
    value: Option<(&'a String, &'a Value)>,
}

impl<'de> MapAccess<'de> for Members<'de> {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, FieldError> {
        let Some((key, value)) = self.members.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        seed.deserialize(BorrowedStrDeserializer::<FieldError>::new(key.as_str()))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, FieldError> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("a value without its key"));
        };
        seed.deserialize(At(value))
            .map_err(|e| e.within(Segment::Key(key.clone())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.members.len())
    }
}
