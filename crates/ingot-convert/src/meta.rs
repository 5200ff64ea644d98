//! GGUF metadata values as the converter produces them, in the value types gguf-py's
//! `GGUFWriter` uses for each key (`add_uint32`, `add_float32`, `add_bool`, `add_string`, and
//! arrays of strings, int32 or float32).

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MetaValue {
    /// GGUF type UINT32.
    U32(u32),
    /// GGUF type FLOAT32.
    F32(f32),
    /// GGUF type BOOL.
    Bool(bool),
    /// GGUF type STRING.
    Str(String),
    /// ARRAY of STRING.
    StrArray(Vec<String>),
    /// ARRAY of INT32.
    I32Array(Vec<i32>),
    /// ARRAY of FLOAT32.
    F32Array(Vec<f32>),
}

impl MetaValue {
    /// The ingot-format value written for it.
    pub fn to_value(&self) -> ingot_format::Value {
        use ingot_format::Value;
        match self {
            MetaValue::U32(x) => Value::U32(*x),
            MetaValue::F32(x) => Value::F32(*x),
            MetaValue::Bool(b) => Value::Bool(*b),
            MetaValue::Str(s) => Value::String(s.clone()),
            MetaValue::StrArray(a) => Value::from(a.clone()),
            MetaValue::I32Array(a) => Value::from(a.clone()),
            MetaValue::F32Array(a) => Value::from(a.clone()),
        }
    }
}

/// Metadata in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, MetaValue)>,
}

impl Metadata {
    /// Appends a key (replacing the value in place if the key is already there, so the first
    /// position wins, like gguf-py's dict of fields).
    pub fn set(&mut self, key: impl Into<String>, value: MetaValue) {
        let key = key.into();
        if let Some(e) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            e.1 = value;
        } else {
            self.entries.push((key, value));
        }
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Entries in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetaValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
