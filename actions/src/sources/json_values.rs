//! JSON straight into sluice values, shared by `json_reader` and `geojson_reader`.
//!
//! - [`ValueSeed`] deserializes any JSON value into a [`Value`] (whole numbers become ints,
//!   objects maps, arrays arrays) without building a `serde_json::Value` first.
//! - [`RowSeed`] deserializes a JSON object into a row: a shared `Arc<Schema>` and its values.
//!   Keys are compared with the previous object's schema as they come, so a file of objects
//!   with the same keys in the same order allocates no key at all and every row shares one
//!   schema; a new key list is looked up in a per-file map, then in the reader's
//!   [`SharedCache`] (so files with the same keys share schemas too).
//!
//! Anything other than an object becomes [`Element::Other`] (with a short description), so
//! a caller can reject it without losing its place in a stream.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use sluice_runtime::{Schema, Value};

use sluice_runtime::input::SharedCache;

/// Distinct key lists one file remembers before it stops adding to its own map.
const LOCAL_SCHEMAS: usize = 1024;

/// Deserializes one JSON value into a [`Value`].
pub(crate) struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        // Above i64::MAX there is no exact form: the record is rejected, never rounded.
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {v} does not fit a 64-bit signed int")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.into()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v.into()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(ValueSeed)? {
            items.push(v);
        }
        Ok(Value::Array(items.into()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = BTreeMap::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(ValueSeed)?;
            m.insert(k, v);
        }
        Ok(Value::Map(Arc::new(m)))
    }
}

/// A JSON object as a row: its schema and values, and the raw JSON of the geometry field.
#[derive(Debug)]
pub(crate) struct Row {
    /// The attribute names (shared).
    pub schema: Arc<Schema>,
    /// The values, in schema order.
    pub values: Vec<Value>,
    /// The value of the geometry field, when one was asked for and present.
    pub geometry: Option<serde_json::Value>,
}

/// One element of a JSON stream: an object, or something else.
#[derive(Debug)]
pub(crate) enum Element {
    /// An object.
    Row(Row),
    /// Not an object: what it was (`a number`, `an array`...).
    Other(&'static str),
}

/// Remembers the schemas of the objects read so far (see the [module docs](self)).
pub(crate) struct SchemaCache<'a> {
    last: Arc<Schema>,
    local: HashMap<Vec<Arc<str>>, Arc<Schema>>,
    shared: &'a SharedCache<Vec<Arc<str>>, Arc<Schema>>,
}

impl<'a> SchemaCache<'a> {
    /// A cache for one file, backed by the reader's shared cache.
    pub(crate) fn new(shared: &'a SharedCache<Vec<Arc<str>>, Arc<Schema>>) -> Self {
        SchemaCache {
            last: Schema::empty(),
            local: HashMap::new(),
            shared,
        }
    }

    fn schema_for(&mut self, keys: Vec<Arc<str>>) -> Arc<Schema> {
        let schema = match self.local.get(&keys) {
            Some(s) => s.clone(),
            None => {
                let s = self
                    .shared
                    .get_or_insert_with(keys.clone(), || Schema::new(keys.iter().cloned()));
                if self.local.len() < LOCAL_SCHEMAS {
                    self.local.insert(keys, s.clone());
                }
                s
            }
        };
        self.last = schema.clone();
        schema
    }
}

/// Deserializes a JSON object into an [`Element::Row`] (anything else: [`Element::Other`]).
pub(crate) struct RowSeed<'c, 'a> {
    /// The schema cache of the file.
    pub cache: &'c mut SchemaCache<'a>,
    /// The attribute that holds a GeoJSON geometry: kept aside as raw JSON, not an attribute.
    pub geometry_field: Option<&'c str>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_> {
    type Value = Element;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Element, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_> {
    type Value = Element;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Element, E> {
        Ok(Element::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Element, E> {
        Ok(Element::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Element, E> {
        Ok(Element::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Element, E> {
        Ok(Element::Other("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Element, E> {
        Ok(Element::Other("a string"))
    }
    fn visit_unit<E>(self) -> Result<Element, E> {
        Ok(Element::Other("null"))
    }
    fn visit_none<E>(self) -> Result<Element, E> {
        Ok(Element::Other("null"))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Element, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Element::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Element, A::Error> {
        read_row(self.cache, self.geometry_field, map).map(Element::Row)
    }
}

/// Reads the entries of an object into a row, matching keys against the last schema.
pub(crate) fn read_row<'de, A: MapAccess<'de>>(
    cache: &mut SchemaCache<'_>,
    geometry_field: Option<&str>,
    mut map: A,
) -> Result<Row, A::Error> {
    let last = cache.last.clone();
    let names = last.names();
    let mut values: Vec<Value> = Vec::with_capacity(names.len());
    // `None` while every key so far matched the last schema, position by position.
    let mut keys: Option<Vec<Arc<str>>> = None;
    let mut geometry = None;
    loop {
        let expected = match keys {
            None => names.get(values.len()).map(|n| &**n),
            Some(_) => None,
        };
        let Some(key) = map.next_key_seed(KeySeed {
            expected,
            geometry_field,
        })?
        else {
            break;
        };
        match key {
            Key::Geometry => geometry = Some(map.next_value::<serde_json::Value>()?),
            Key::Expected => values.push(map.next_value_seed(ValueSeed)?),
            Key::Other(name) => {
                let value = map.next_value_seed(ValueSeed)?;
                match &mut keys {
                    None => {
                        let mut k: Vec<Arc<str>> = names[..values.len()].to_vec();
                        k.push(name.into());
                        keys = Some(k);
                    }
                    Some(k) => k.push(name.into()),
                }
                values.push(value);
            }
        }
    }
    let schema = match keys {
        None if values.len() == names.len() => last,
        None => cache.schema_for(names[..values.len()].to_vec()),
        Some(k) => {
            let schema = cache.schema_for(k.clone());
            if schema.len() != k.len() {
                // A repeated key: the last value wins, in the first key's place.
                let mut deduped = vec![Value::Null; schema.len()];
                for (name, v) in k.iter().zip(values) {
                    if let Some(i) = schema.index_of(name) {
                        deduped[i] = v;
                    }
                }
                values = deduped;
            }
            schema
        }
    };
    Ok(Row {
        schema,
        values,
        geometry,
    })
}

/// What an object key is: the one the last schema has at this position (compared without
/// allocating), the geometry field, or another key.
enum Key {
    Expected,
    Geometry,
    Other(String),
}

struct KeySeed<'a> {
    expected: Option<&'a str>,
    geometry_field: Option<&'a str>,
}

impl KeySeed<'_> {
    fn classify(&self, v: &str) -> Option<Key> {
        if self.geometry_field == Some(v) {
            Some(Key::Geometry)
        } else if self.expected == Some(v) {
            Some(Key::Expected)
        } else {
            None
        }
    }
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(self
            .classify(v)
            .unwrap_or_else(|| Key::Other(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        Ok(self.classify(&v).unwrap_or(Key::Other(v)))
    }
}

/// Converts a GeoJSON geometry object into a `geo-types` geometry (null: none).
pub(crate) fn geojson_geometry(
    g: &serde_json::Value,
) -> Result<Option<sluice_runtime::Geometry>, String> {
    crate::geojson_geometry::read(g)
}

/// Adds one attribute name to schemas, remembering the last result (rows of one file mostly
/// share a schema, so this allocates once per file in the common case).
pub(crate) struct Extender {
    name: &'static str,
    last: Option<(Arc<Schema>, Arc<Schema>)>,
}

impl Extender {
    /// An extender that appends `name`.
    pub(crate) fn new(name: &'static str) -> Extender {
        Extender { name, last: None }
    }

    /// `schema` with the name appended (the same schema if it already has it).
    pub(crate) fn extend(&mut self, schema: &Arc<Schema>) -> Arc<Schema> {
        match &self.last {
            Some((from, to)) if Arc::ptr_eq(from, schema) => to.clone(),
            _ => {
                let to = if schema.index_of(self.name).is_some() {
                    schema.clone()
                } else {
                    schema.with(self.name)
                };
                self.last = Some((schema.clone(), to.clone()));
                to
            }
        }
    }
}

/// A serde_json error as `line:column: message` pieces: the message without serde_json's
/// own ` at line L column C` suffix.
pub(crate) fn json_error_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) => message.to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(text: &str, cache: &mut SchemaCache<'_>, geometry: Option<&str>) -> Element {
        let mut de = serde_json::Deserializer::from_str(text);
        RowSeed {
            cache,
            geometry_field: geometry,
        }
        .deserialize(&mut de)
        .unwrap()
    }

    fn unwrap_row(e: Element) -> Row {
        match e {
            Element::Row(r) => r,
            Element::Other(o) => panic!("not a row: {o}"),
        }
    }

    #[test]
    fn same_keys_share_a_schema_and_values_convert() {
        let shared = SharedCache::new();
        let mut cache = SchemaCache::new(&shared);
        let a = unwrap_row(row(
            r#"{"a": 1, "b": [1, 2.5, "x"], "c": {"k": null}, "d": 9223372036854775807}"#,
            &mut cache,
            None,
        ));
        let b = unwrap_row(row(
            r#"{"a": 2, "b": null, "c": 1, "d": true}"#,
            &mut cache,
            None,
        ));
        assert!(Arc::ptr_eq(&a.schema, &b.schema));
        assert_eq!(a.values[0], Value::Int(1));
        assert_eq!(
            a.values[1],
            Value::Array(vec![Value::Int(1), Value::Float(2.5), Value::from("x")].into())
        );
        assert_eq!(
            a.values[2],
            Value::Map(Arc::new(BTreeMap::from([("k".to_string(), Value::Null)])))
        );
        assert_eq!(a.values[3], Value::Int(i64::MAX));
        // Above i64::MAX there is no exact value: an error, not a rounded float.
        let mut de = serde_json::Deserializer::from_str(r#"{"d": 18446744073709551615}"#);
        let e = RowSeed {
            cache: &mut cache,
            geometry_field: None,
        }
        .deserialize(&mut de)
        .map(|_| ())
        .expect_err("an int above i64::MAX is an error");
        assert!(e.to_string().contains("does not fit"), "{e}");
        // A prefix, another order, then the first shape again.
        let c = unwrap_row(row(r#"{"a": 3}"#, &mut cache, None));
        assert_eq!(c.schema.names().len(), 1);
        let d = unwrap_row(row(r#"{"b": 1, "a": 2}"#, &mut cache, None));
        assert_eq!(&*d.schema.names()[0], "b");
        let e = unwrap_row(row(r#"{"a": 1, "b": 2, "c": 3, "d": 4}"#, &mut cache, None));
        assert!(Arc::ptr_eq(&a.schema, &e.schema));
        // Another file with the same keys gets the same schema from the shared cache.
        let mut other = SchemaCache::new(&shared);
        let f = unwrap_row(row(r#"{"b": 0, "a": 0}"#, &mut other, None));
        assert!(Arc::ptr_eq(&d.schema, &f.schema));
    }

    #[test]
    fn geometry_field_is_set_aside_and_repeated_keys_keep_the_last() {
        let shared = SharedCache::new();
        let mut cache = SchemaCache::new(&shared);
        let r = unwrap_row(row(
            r#"{"n": 1, "g": {"type": "Point", "coordinates": [1, 2]}, "n": 5, "m": 0}"#,
            &mut cache,
            Some("g"),
        ));
        assert_eq!(r.schema.names().len(), 2);
        assert_eq!(r.values, vec![Value::Int(5), Value::Int(0)]);
        let g = geojson_geometry(r.geometry.as_ref().unwrap()).unwrap();
        assert_eq!(
            g.map(|g| g.geom),
            Some(geo_types::Point::new(1.0, 2.0).into())
        );
        assert!(geojson_geometry(&serde_json::json!({"type": "Point"})).is_err());
        assert_eq!(geojson_geometry(&serde_json::Value::Null).unwrap(), None);
    }

    #[test]
    fn non_objects_are_described() {
        let shared = SharedCache::new();
        let mut cache = SchemaCache::new(&shared);
        assert!(matches!(
            row("[1, {}]", &mut cache, None),
            Element::Other("an array")
        ));
        assert!(matches!(
            row("3", &mut cache, None),
            Element::Other("a number")
        ));
        assert!(matches!(
            row("null", &mut cache, None),
            Element::Other("null")
        ));
    }
}
