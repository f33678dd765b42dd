//! Features: an id, attributes and an optional geometry, cheap to share and copy-on-write.
//!
//! ```text
//! Feature (8 bytes) ──► Arc<Parts>: id
//!                                   Arc<Schema>   shared by every feature of a reader: the key list
//!                                   Arc<[Value]>  this feature's values, shared until someone edits them
//!                                   Arc<Geometry> shared until someone edits it
//! ```
//!
//! Cloning a feature (what a fan-out does, and what every sort of a fan-out holds) bumps one
//! reference count and holds one pointer. Editing a shared feature first copies its parts
//! (the id and three pointers); editing an attribute copies the value slice only when
//! another holder still has it, and never touches the geometry; editing the geometry never
//! touches the attributes.

pub mod arrow;
mod copies;
mod schema;
mod value;
pub mod wkb;

#[cfg(any(test, feature = "testing"))]
pub use copies::deep_copies;
pub use schema::Schema;
pub use value::{
    Value, format_float, parse_date, parse_datetime, parse_local_datetime, parse_zoned_datetime,
};

use std::sync::Arc;

/// A geometry with an optional coordinate reference system (an EPSG code) and, where the
/// source had them, Z and M ordinates.
///
/// `geo-types` shapes are two-dimensional; the third and fourth ordinates ride beside them
/// in [`Ordinates`], one value per coordinate in the order WKB writes coordinates (see
/// [`coord_count`]). Actions that only move coordinates (`reproject`) keep them; actions that
/// build a new shape (`buffer`, `convex_hull`, ...) make a 2D geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// The shape, in `geo-types`.
    pub geom: geo_types::Geometry<f64>,
    /// EPSG code of the coordinates, when known.
    pub crs: Option<u32>,
    ordinates: Option<Box<Ordinates>>,
}

/// The Z and M ordinates of a geometry, one value per coordinate in WKB order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ordinates {
    /// Heights (Z), when the geometry has them.
    pub z: Option<Vec<f64>>,
    /// Measures (M), when the geometry has them.
    pub m: Option<Vec<f64>>,
}

impl Ordinates {
    /// Whether neither Z nor M is present.
    pub fn is_empty(&self) -> bool {
        self.z.is_none() && self.m.is_none()
    }
}

/// Why ordinates could not be put on a geometry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{which} has {got} values for a geometry of {coords} coordinates")]
pub struct OrdinatesError {
    /// `"z"` or `"m"`.
    pub which: &'static str,
    /// How many values were given.
    pub got: usize,
    /// How many coordinates the geometry has.
    pub coords: usize,
}

impl Geometry {
    /// A geometry with no CRS.
    pub fn new(geom: geo_types::Geometry<f64>) -> Geometry {
        Geometry {
            geom,
            crs: None,
            ordinates: None,
        }
    }

    /// A 2D geometry in `crs`.
    pub fn in_crs(geom: geo_types::Geometry<f64>, crs: Option<u32>) -> Geometry {
        Geometry {
            geom,
            crs,
            ordinates: None,
        }
    }

    /// The same geometry with Z and/or M ordinates; each list must hold one value per
    /// coordinate ([`coord_count`]). Empty ordinates make a 2D geometry.
    pub fn with_ordinates(mut self, ordinates: Ordinates) -> Result<Geometry, OrdinatesError> {
        let coords = coord_count(&self.geom);
        for (which, list) in [("z", &ordinates.z), ("m", &ordinates.m)] {
            if let Some(list) = list
                && list.len() != coords
            {
                return Err(OrdinatesError {
                    which,
                    got: list.len(),
                    coords,
                });
            }
        }
        self.ordinates = (!ordinates.is_empty()).then(|| Box::new(ordinates));
        Ok(self)
    }

    /// A new shape with this geometry's CRS, keeping the Z and M ordinates when the new
    /// shape has as many coordinates (an action that moves coordinates one by one), and
    /// dropping them otherwise.
    pub fn with_shape(&self, geom: geo_types::Geometry<f64>) -> Geometry {
        let keep = self.ordinates.is_some() && coord_count(&geom) == coord_count(&self.geom);
        Geometry {
            geom,
            crs: self.crs,
            ordinates: if keep { self.ordinates.clone() } else { None },
        }
    }

    /// The Z and M ordinates, when the geometry has either.
    pub fn ordinates(&self) -> Option<&Ordinates> {
        self.ordinates.as_deref()
    }

    /// The Z values, one per coordinate, when the geometry has them.
    pub fn z(&self) -> Option<&[f64]> {
        self.ordinates.as_ref()?.z.as_deref()
    }

    /// The M values, one per coordinate, when the geometry has them.
    pub fn m(&self) -> Option<&[f64]> {
        self.ordinates.as_ref()?.m.as_deref()
    }

    /// A rough count of heap bytes (16 per coordinate, 8 more per Z or M), for memory
    /// accounting.
    pub fn heap_size(&self) -> usize {
        let n = coord_count(&self.geom);
        let extra = self.ordinates.as_ref().map_or(0, |o| {
            8 * n * (usize::from(o.z.is_some()) + usize::from(o.m.is_some()))
        });
        32 + 16 * n + extra
    }
}

/// The bounding box `[min_x, min_y, max_x, max_y]` of a shape (a polygon's exterior ring
/// bounds it), or `None` when it has no coordinates. NaN coordinates are skipped. A tight
/// loop over the coordinate slices: writers call it for every feature.
pub fn envelope(g: &geo_types::Geometry<f64>) -> Option<[f64; 4]> {
    use geo_types::{Coord, Geometry as G};
    fn add(b: &mut [f64; 4], cs: &[Coord<f64>]) {
        for c in cs {
            b[0] = b[0].min(c.x);
            b[1] = b[1].min(c.y);
            b[2] = b[2].max(c.x);
            b[3] = b[3].max(c.y);
        }
    }
    fn walk(b: &mut [f64; 4], g: &G<f64>) {
        match g {
            G::Point(p) => add(b, &[p.0]),
            G::Line(l) => add(b, &[l.start, l.end]),
            G::LineString(l) => add(b, &l.0),
            G::Polygon(p) => add(b, &p.exterior().0),
            G::MultiPoint(m) => m.0.iter().for_each(|p| add(b, &[p.0])),
            G::MultiLineString(m) => m.0.iter().for_each(|l| add(b, &l.0)),
            G::MultiPolygon(m) => m.0.iter().for_each(|p| add(b, &p.exterior().0)),
            G::GeometryCollection(c) => c.0.iter().for_each(|g| walk(b, g)),
            G::Rect(r) => add(b, &[r.min(), r.max()]),
            G::Triangle(t) => add(b, &t.to_array()),
        }
    }
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    walk(&mut b, g);
    (b[0] <= b[2] && b[1] <= b[3]).then_some(b)
}

/// How many coordinates `g` has, counted as WKB writes them: a `Line` has 2, a `Rect` 5 and
/// a `Triangle` 4 (closed rings), every ring with its closing point.
pub fn coord_count(g: &geo_types::Geometry<f64>) -> usize {
    use geo_types::Geometry as G;
    fn polygon(p: &geo_types::Polygon<f64>) -> usize {
        p.exterior().0.len() + p.interiors().iter().map(|r| r.0.len()).sum::<usize>()
    }
    match g {
        G::Point(_) => 1,
        G::Line(_) => 2,
        G::LineString(l) => l.0.len(),
        G::Polygon(p) => polygon(p),
        G::MultiPoint(m) => m.0.len(),
        G::MultiLineString(m) => m.0.iter().map(|l| l.0.len()).sum(),
        G::MultiPolygon(m) => m.0.iter().map(polygon).sum(),
        G::GeometryCollection(c) => c.0.iter().map(coord_count).sum(),
        G::Rect(_) => 5,
        G::Triangle(_) => 4,
    }
}

/// A batch of features: the unit that travels on an edge.
pub type Batch = Vec<Feature>;

/// `batch` cut into owned batches of `chunk` features, in order (the last may be shorter;
/// an empty batch gives one empty batch), to share out on the pool. Cut from the end, so
/// each feature is moved once.
pub fn split_batch(mut batch: Batch, chunk: usize) -> Vec<Batch> {
    let chunk = chunk.max(1);
    let mut out = Vec::with_capacity(batch.len().div_ceil(chunk).max(1));
    while batch.len() > chunk {
        let at = (batch.len() - 1) / chunk * chunk;
        out.push(batch.split_off(at));
    }
    out.push(batch);
    out.reverse();
    out
}

/// Hints the CPU to bring the cache line at `p` in (a no-op off x86-64). Nothing is read:
/// any address will do.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: a prefetch is only a hint to the cache; it never faults and has no visible
    // effect, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// How many features ahead [`prefetch_ahead`] fetches a feature's parts (and half as many,
/// its values).
const PREFETCH_DISTANCE: usize = 8;

/// Call before working on `features[i]` in a loop over features that sit anywhere in memory
/// (a sort's output, in sorted order): fetches the parts of a feature some places ahead and
/// the values of one half as far, so the loop does not wait on memory feature by feature.
#[inline]
pub fn prefetch_ahead(features: &[Feature], i: usize) {
    if let Some(f) = features.get(i + PREFETCH_DISTANCE) {
        f.prefetch();
    }
    if let Some(f) = features.get(i + PREFETCH_DISTANCE / 2) {
        f.prefetch_values();
    }
}

/// A record with attributes and an optional geometry. See the [module docs](self).
#[derive(Clone)]
pub struct Feature {
    inner: Arc<Parts>,
}

/// What a feature holds, behind its one pointer.
#[derive(Clone)]
struct Parts {
    id: u64,
    schema: Arc<Schema>,
    values: Arc<[Value]>,
    geometry: Option<Arc<Geometry>>,
}

impl std::fmt::Debug for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feature")
            .field("id", &self.inner.id)
            .field("schema", &self.inner.schema)
            .field("values", &self.inner.values)
            .field("geometry", &self.inner.geometry)
            .finish()
    }
}

impl Feature {
    /// A feature with the given schema and values. Missing trailing values are null; extra
    /// values are dropped.
    pub fn new(id: u64, schema: Arc<Schema>, mut values: Vec<Value>) -> Feature {
        values.resize(schema.len(), Value::Null);
        Feature {
            inner: Arc::new(Parts {
                id,
                schema,
                values: values.into(),
                geometry: None,
            }),
        }
    }

    /// The parts, to change them: copied first (the id and three pointers) when another
    /// holder shares them.
    #[inline]
    fn parts(&mut self) -> &mut Parts {
        Arc::make_mut(&mut self.inner)
    }

    /// A feature with no attributes.
    pub fn empty(id: u64) -> Feature {
        Feature::new(id, Schema::empty(), Vec::new())
    }

    /// Builds a feature from name/value pairs (convenient in tests and examples; readers
    /// should share one schema with [`Feature::new`]).
    pub fn from_pairs<'a>(id: u64, pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Feature {
        let (names, values): (Vec<&str>, Vec<Value>) = pairs.into_iter().unzip();
        Feature::new(id, Schema::new(names), values)
    }

    /// Sets the geometry (builder style).
    pub fn with_geometry(mut self, geometry: Option<Geometry>) -> Feature {
        self.parts().geometry = geometry.map(Arc::new);
        self
    }

    /// The feature id (unique within a source).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Changes the feature id.
    pub fn set_id(&mut self, id: u64) {
        self.parts().id = id;
    }

    /// The shared key list.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.inner.schema
    }

    /// The values, in schema order.
    #[inline]
    pub fn values(&self) -> &[Value] {
        &self.inner.values
    }

    /// The value of an attribute, if the feature has it.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.inner
            .schema
            .index_of(name)
            .map(|i| &self.inner.values[i])
    }

    /// Attribute name/value pairs, in schema order.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.inner
            .schema
            .names()
            .iter()
            .map(|n| n.as_ref())
            .zip(self.inner.values.iter())
    }

    /// The geometry, if any.
    pub fn geometry(&self) -> Option<&Geometry> {
        self.inner.geometry.as_deref()
    }

    /// Mutable values; copies them first only if another holder shares them.
    pub fn values_mut(&mut self) -> &mut [Value] {
        let parts = self.parts();
        if Arc::strong_count(&parts.values) > 1 || Arc::weak_count(&parts.values) > 0 {
            copies::record();
        }
        Arc::make_mut(&mut parts.values)
    }

    /// Sets an attribute. An existing attribute is changed in place (copy-on-write); a new
    /// one extends this feature's schema. When many features gain the same attribute,
    /// prefer [`Feature::reshape`] with a schema computed once.
    pub fn set(&mut self, name: &str, value: Value) {
        match self.inner.schema.index_of(name) {
            Some(i) => self.values_mut()[i] = value,
            None => {
                let schema = self.inner.schema.with(name);
                let mut values = Vec::with_capacity(schema.len());
                values.extend(self.inner.values.iter().cloned());
                values.push(value);
                let parts = self.parts();
                parts.schema = schema;
                parts.values = values.into();
            }
        }
    }

    /// Replaces the schema and values together, keeping id and geometry.
    ///
    /// `values` is resized to the schema's length.
    pub fn reshape(&mut self, schema: Arc<Schema>, mut values: Vec<Value>) {
        values.resize(schema.len(), Value::Null);
        let parts = self.parts();
        parts.schema = schema;
        parts.values = values.into();
    }

    /// [`Feature::reshape`] with the values already shared: built with
    /// `collect::<Arc<[Value]>>()` from an exact-size iterator they take one allocation, where
    /// a `Vec` is allocated and then copied into its `Arc`.
    pub fn reshape_shared(&mut self, schema: Arc<Schema>, values: Arc<[Value]>) {
        if values.len() == schema.len() {
            let parts = self.parts();
            parts.schema = schema;
            parts.values = values;
        } else {
            self.reshape(schema, values.to_vec());
        }
    }

    /// Replaces the geometry. Never touches the attributes.
    pub fn set_geometry(&mut self, geometry: Option<Geometry>) {
        self.parts().geometry = geometry.map(Arc::new);
    }

    /// Mutable geometry; copies it first only if another holder shares it.
    pub fn geometry_mut(&mut self) -> Option<&mut Geometry> {
        self.inner.geometry.as_ref()?;
        let g = self.parts().geometry.as_mut()?;
        if Arc::strong_count(g) > 1 || Arc::weak_count(g) > 0 {
            copies::record();
        }
        Some(Arc::make_mut(g))
    }

    /// Takes the geometry out of the feature.
    pub fn take_geometry(&mut self) -> Option<Arc<Geometry>> {
        self.inner.geometry.as_ref()?;
        self.parts().geometry.take()
    }

    /// Puts a shared geometry on the feature.
    pub fn set_shared_geometry(&mut self, geometry: Option<Arc<Geometry>>) {
        self.parts().geometry = geometry;
    }

    /// Hints the CPU to bring this feature's parts into cache ahead of use: for loops over
    /// features in an order unrelated to where they sit in memory (a sort's output), a few
    /// features ahead.
    #[inline]
    pub fn prefetch(&self) {
        prefetch(Arc::as_ptr(&self.inner));
    }

    /// Hints the CPU to bring this feature's values into cache ahead of use. It reads the
    /// feature's parts, so [`Feature::prefetch`] those some features earlier.
    #[inline]
    pub fn prefetch_values(&self) {
        prefetch(self.inner.values.as_ptr());
    }

    /// Whether two features share the same attribute storage (no copy was made).
    pub fn shares_values_with(&self, other: &Feature) -> bool {
        Arc::ptr_eq(&self.inner.values, &other.inner.values)
    }

    /// Bytes of a feature with no values and no geometry: the pointer, its parts and the two
    /// reference-counted headers.
    pub const BASE_BYTES: usize =
        std::mem::size_of::<Feature>() + 16 + std::mem::size_of::<Parts>() + 16;

    /// Estimated bytes this feature holds (struct, values, strings, geometry), for accounting.
    pub fn mem_size(&self) -> usize {
        Feature::BASE_BYTES
            + self
                .inner
                .values
                .iter()
                .map(|v| std::mem::size_of::<Value>() + v.heap_size())
                .sum::<usize>()
            + self.inner.geometry.as_ref().map_or(0, |g| g.heap_size())
    }

    /// The attributes as a JSON object.
    pub fn attributes_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.attributes()
            .map(|(k, v)| (k.to_string(), v.to_json()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn envelope_agrees_with_geo() {
        use geo::BoundingRect;
        use geo_types::{Geometry as G, LineString, MultiPolygon, Point, Polygon};
        let poly = Polygon::new(
            LineString::from(vec![(0.0, 1.0), (5.0, -2.0), (3.0, 7.5), (0.0, 1.0)]),
            vec![LineString::from(vec![
                (1.0, 1.0),
                (2.0, 1.0),
                (2.0, 2.0),
                (1.0, 1.0),
            ])],
        );
        let far = Polygon::new(
            LineString::from(vec![(-9.0, 0.0), (-8.0, 1.0), (-9.0, 0.0)]),
            vec![],
        );
        let shapes: Vec<G<f64>> = vec![
            Point::new(1.0, 2.0).into(),
            poly.clone().into(),
            MultiPolygon(vec![poly.clone(), far]).into(),
            G::GeometryCollection(geo_types::GeometryCollection(vec![
                Point::new(-1.0, 50.0).into(),
                poly.into(),
            ])),
        ];
        for g in &shapes {
            let r = g.bounding_rect().unwrap();
            let want = [r.min().x, r.min().y, r.max().x, r.max().y];
            assert_eq!(super::envelope(g), Some(want), "{g:?}");
        }
        assert_eq!(super::envelope(&LineString::<f64>(vec![]).into()), None);
    }

    #[test]
    fn split_batch_keeps_order_and_sizes() {
        for (n, chunk) in [(10, 4), (8, 4), (3, 4), (0, 4), (5, 1), (7, 0)] {
            let batch: super::Batch = (0..n).map(super::Feature::empty).collect();
            let parts = super::split_batch(batch, chunk);
            let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
            let ids: Vec<u64> = parts.iter().flatten().map(|f| f.id()).collect();
            assert_eq!(ids, (0..n).collect::<Vec<u64>>(), "{n} by {chunk}");
            let (n, c) = (n as usize, chunk.max(1));
            let mut want: Vec<usize> = vec![c; n / c];
            if !n.is_multiple_of(c) || n == 0 {
                want.push(n % c);
            }
            assert_eq!(sizes, want, "{n} by {chunk}");
        }
    }

    use super::*;

    #[test]
    fn feature_is_one_pointer() {
        assert_eq!(std::mem::size_of::<Feature>(), 8);
    }

    #[test]
    fn clone_shares_and_edit_copies_only_the_attributes() {
        let g = Geometry::new(geo_types::Point::new(1.0, 2.0).into());
        let a = Feature::from_pairs(1, [("x", Value::Int(1))]).with_geometry(Some(g));
        let mut b = a.clone();
        assert!(a.shares_values_with(&b));
        let before = deep_copies();
        b.set("x", Value::Int(2));
        assert!(deep_copies() > before);
        assert_eq!(a.get("x"), Some(&Value::Int(1)));
        assert_eq!(b.get("x"), Some(&Value::Int(2)));
        assert!(std::ptr::eq(a.geometry().unwrap(), b.geometry().unwrap()));
    }

    #[test]
    fn unshared_edit_is_in_place() {
        let mut a = Feature::from_pairs(1, [("x", Value::Int(1))]);
        let p = a.values().as_ptr();
        a.set("x", Value::Int(5));
        assert_eq!(a.values().as_ptr(), p);
    }

    #[test]
    fn set_new_attribute_extends_schema() {
        let mut a = Feature::from_pairs(1, [("x", Value::Int(1))]);
        a.set("y", Value::from("b"));
        assert_eq!(a.schema().names().len(), 2);
        assert_eq!(a.get("y").and_then(Value::as_str), Some("b"));
    }
}
