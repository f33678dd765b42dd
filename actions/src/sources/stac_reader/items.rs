//! STAC items into features: a page (an ItemCollection) or an item file, streamed with
//! serde the way `geojson_reader` streams a FeatureCollection, properties through the same
//! row code (`json_values`), geometry through `geojson_geometry`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{BufReader, Read};
use std::sync::Arc;

use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use sluice_runtime::feature::parse_zoned_datetime;
use sluice_runtime::input::SharedCache;
use sluice_runtime::{Feature, REJECTION_REASON, Schema, Value};

use super::super::json_values::{
    Element, Row, RowSeed, SchemaCache, ValueSeed, json_error_message,
};

/// Properties typed as instants when they hold an RFC 3339 date-time.
const DATETIMES: [&str; 5] = [
    "datetime",
    "start_datetime",
    "end_datetime",
    "created",
    "updated",
];
/// Item members that become attributes of their own; a property of the same name is kept
/// as `properties.<name>`.
const ITEM_FIELDS: [&str; 5] = ["id", "collection", "assets", "bbox", "links"];

/// What one item became.
pub(super) enum Converted {
    /// A feature.
    Feature(Feature),
    /// An item that cannot be a feature, with its reason.
    Rejected(Feature),
    /// An item already emitted (same collection and id).
    Duplicate,
}

/// Converts items, remembering schemas and the items already seen.
pub(super) struct Items<'a> {
    cache: SchemaCache<'a>,
    include_bbox: bool,
    include_links: bool,
    /// Full schemas by the properties' schema.
    schemas: HashMap<Vec<Arc<str>>, Arc<Schema>>,
    last: Option<(Arc<Schema>, Arc<Schema>)>,
    rejected: Arc<Schema>,
    seen: HashSet<String>,
    /// Items dropped as duplicates.
    pub duplicates: u64,
}

impl<'a> Items<'a> {
    pub(super) fn new(
        shared: &'a SharedCache<Vec<Arc<str>>, Arc<Schema>>,
        include_bbox: bool,
        include_links: bool,
    ) -> Items<'a> {
        Items {
            cache: SchemaCache::new(shared),
            include_bbox,
            include_links,
            schemas: HashMap::new(),
            last: None,
            rejected: Schema::new(["url", "id", REJECTION_REASON]),
            seen: HashSet::new(),
            duplicates: 0,
        }
    }

    /// Reads a page (an ItemCollection) or an item file from `input`, pushing what each
    /// item became. Invalid JSON, or a document that is neither, is an error message
    /// (`line:column: ...` for JSON).
    pub(super) fn read(
        &mut self,
        input: impl Read,
        url: &str,
        out: &mut Vec<Converted>,
    ) -> Result<(), String> {
        let mut de = serde_json::Deserializer::from_reader(BufReader::new(input));
        let mut walk = Walk {
            items: self,
            url,
            out,
            index: 0,
        };
        let result = TopSeed { walk: &mut walk }
            .deserialize(&mut de)
            .and_then(|top| de.end().map(|()| top));
        match result {
            Ok(Top::Collection) => Ok(()),
            Ok(Top::Item(parts)) => {
                let c = walk.convert(*parts);
                walk.out.push(c);
                Ok(())
            }
            Ok(Top::Other(what)) => Err(format!(
                "expected a STAC ItemCollection or Item, found {what}"
            )),
            Err(e) if e.line() > 0 => Err(format!(
                "invalid JSON at line {}, column {}: {}",
                e.line(),
                e.column(),
                json_error_message(&e)
            )),
            Err(e) => Err(format!("invalid JSON: {}", json_error_message(&e))),
        }
    }

    /// The schema of an item whose properties have `props`.
    fn schema_for(&mut self, props: &Arc<Schema>) -> Arc<Schema> {
        if let Some((from, to)) = &self.last
            && Arc::ptr_eq(from, props)
        {
            return to.clone();
        }
        let key: Vec<Arc<str>> = props.names().to_vec();
        let schema = match self.schemas.get(&key) {
            Some(s) => s.clone(),
            None => {
                let mut names: Vec<String> = vec!["id".into(), "collection".into()];
                for n in props.names() {
                    if ITEM_FIELDS.contains(&&**n) {
                        names.push(format!("properties.{n}"));
                    } else {
                        names.push(n.to_string());
                    }
                }
                names.push("assets".into());
                if self.include_bbox {
                    names.push("bbox".into());
                }
                if self.include_links {
                    names.push("links".into());
                }
                let s = Schema::new(names);
                self.schemas.insert(key, s.clone());
                s
            }
        };
        self.last = Some((props.clone(), schema.clone()));
        schema
    }
}

/// The members of an item that matter here.
#[derive(Default)]
struct Parts {
    type_name: Option<String>,
    id: Option<Value>,
    collection: Option<Value>,
    geometry: Option<serde_json::Value>,
    bbox: Option<Value>,
    properties: Option<Element>,
    assets: Option<Value>,
    links: Option<Value>,
    has_features: bool,
}

enum Top {
    Collection,
    Item(Box<Parts>),
    Other(&'static str),
}

struct Walk<'w, 'a, 'o> {
    items: &'w mut Items<'a>,
    url: &'w str,
    out: &'o mut Vec<Converted>,
    /// Items seen in this document so far.
    index: u64,
}

impl Walk<'_, '_, '_> {
    fn reject(&mut self, id: Option<Value>, reason: String) -> Converted {
        let reason = format!("{}: item {}: {reason}", self.url, self.index);
        self.index += 1;
        Converted::Rejected(Feature::new(
            0,
            self.items.rejected.clone(),
            vec![
                Value::String(self.url.into()),
                id.unwrap_or(Value::Null),
                Value::String(reason.into()),
            ],
        ))
    }

    fn convert(&mut self, parts: Parts) -> Converted {
        let Parts {
            type_name,
            id,
            collection,
            geometry,
            bbox,
            properties,
            assets,
            links,
            has_features: _,
        } = parts;
        if type_name.as_deref() != Some("Feature") {
            let found = type_name.map_or("no type".to_string(), |t| format!("type \"{t}\""));
            return self.reject(
                id,
                format!("expected a STAC Item (a Feature), found {found}"),
            );
        }
        let id = match id {
            Some(Value::String(s)) => s,
            Some(Value::Int(i)) => i.to_string().into(),
            other => {
                return self.reject(other, "an item without a string id".into());
            }
        };
        let collection = match collection {
            Some(Value::String(c)) => Some(c),
            _ => None,
        };
        let key = format!("{}\u{0}{id}", collection.as_deref().unwrap_or_default());
        if !self.items.seen.insert(key) {
            self.index += 1;
            self.items.duplicates += 1;
            return Converted::Duplicate;
        }
        let (props_schema, props) = match properties {
            None | Some(Element::Other("null")) => (Schema::empty(), Vec::new()),
            Some(Element::Row(Row { schema, values, .. })) => (schema, values),
            Some(Element::Other(what)) => {
                return self.reject(
                    Some(Value::String(id)),
                    format!("properties: expected an object, found {what}"),
                );
            }
        };
        let geometry = match geometry.as_ref().map(crate::geojson_geometry::read) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(mut g))) => {
                g.crs = Some(4326);
                Some(g)
            }
            Some(Err(message)) => {
                return self.reject(Some(Value::String(id)), format!("geometry: {message}"));
            }
        };
        let schema = self.items.schema_for(&props_schema);
        let mut values = Vec::with_capacity(schema.len());
        values.push(Value::String(id));
        values.push(collection.map_or(Value::Null, Value::String));
        for (name, v) in props_schema.names().iter().zip(props) {
            let v = match v {
                Value::String(s) if DATETIMES.contains(&&**name) => {
                    match parse_zoned_datetime(&s) {
                        Some(us) => Value::DateTime(us),
                        None => Value::String(s),
                    }
                }
                v => v,
            };
            values.push(v);
        }
        values.push(assets.unwrap_or(Value::Null));
        if self.items.include_bbox {
            values.push(bbox.unwrap_or(Value::Null));
        }
        if self.items.include_links {
            values.push(links.unwrap_or(Value::Null));
        }
        self.index += 1;
        Converted::Feature(Feature::new(0, schema, values).with_geometry(geometry))
    }
}

struct TopSeed<'x, 'w, 'a, 'o> {
    walk: &'x mut Walk<'w, 'a, 'o>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_, '_, '_> {
    type Value = Top;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_, '_, '_> {
    type Value = Top;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a STAC ItemCollection or Item")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Top, E> {
        Ok(Top::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Top, E> {
        Ok(Top::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Top, E> {
        Ok(Top::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Top, E> {
        Ok(Top::Other("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Top, E> {
        Ok(Top::Other("a string"))
    }
    fn visit_unit<E>(self) -> Result<Top, E> {
        Ok(Top::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Top, A::Error> {
        let parts = read_parts(self.walk, map, true)?;
        if parts.has_features {
            Ok(Top::Collection)
        } else if parts.type_name.as_deref() == Some("FeatureCollection") {
            Err(A::Error::custom(
                "a FeatureCollection without a `features` array",
            ))
        } else {
            Ok(Top::Item(Box::new(parts)))
        }
    }
}

/// Reads an object's members; at the top (`top`), a `features` array is streamed item by
/// item into the walk's output.
fn read_parts<'de, A: MapAccess<'de>>(
    walk: &mut Walk<'_, '_, '_>,
    mut map: A,
    top: bool,
) -> Result<Parts, A::Error> {
    let mut parts = Parts::default();
    while let Some(key) = map.next_key::<String>()? {
        match key.as_str() {
            "type" => parts.type_name = map.next_value::<Option<String>>()?,
            "id" => parts.id = Some(map.next_value_seed(ValueSeed)?),
            "collection" => parts.collection = Some(map.next_value_seed(ValueSeed)?),
            "geometry" => parts.geometry = Some(map.next_value::<serde_json::Value>()?),
            "bbox" => parts.bbox = Some(map.next_value_seed(ValueSeed)?),
            "properties" => {
                parts.properties = Some(map.next_value_seed(RowSeed {
                    cache: &mut walk.items.cache,
                    geometry_field: None,
                })?)
            }
            "assets" => parts.assets = Some(map.next_value_seed(ValueSeed)?),
            // An item's own links (a page's paging links are read by the search).
            "links" => parts.links = Some(map.next_value_seed(ValueSeed)?),
            "features" if top => {
                parts.has_features = true;
                map.next_value_seed(FeaturesSeed { walk: &mut *walk })?;
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(parts)
}

struct FeaturesSeed<'x, 'w, 'a, 'o> {
    walk: &'x mut Walk<'w, 'a, 'o>,
}

impl<'de> DeserializeSeed<'de> for FeaturesSeed<'_, '_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FeaturesSeed<'_, '_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of STAC items")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element_seed(ItemSeed {
            walk: &mut *self.walk,
        })? {
            let converted = match item {
                Some(parts) => self.walk.convert(parts),
                None => self
                    .walk
                    .reject(None, "expected a STAC Item (an object)".into()),
            };
            self.walk.out.push(converted);
        }
        Ok(())
    }
}

/// One element of `features`: an item's parts, or `None` for something not an object.
struct ItemSeed<'x, 'w, 'a, 'o> {
    walk: &'x mut Walk<'w, 'a, 'o>,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, '_, '_, '_> {
    type Value = Option<Parts>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Parts>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_, '_, '_, '_> {
    type Value = Option<Parts>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a STAC item")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Option<Parts>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<Parts>, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<Parts>, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<Parts>, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Option<Parts>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<Parts>, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Parts>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Parts>, A::Error> {
        read_parts(self.walk, map, false).map(Some)
    }
}
