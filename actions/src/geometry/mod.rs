//! Geometry processors: measures, constructions, spatial filters and reprojection.
//!
//! Every action here reads the feature's [`Geometry`](sluice_runtime::Geometry) (a `geo-types`
//! shape with an optional EPSG code) and uses the `geo` crate's algorithms. Conventions shared
//! by the whole group:
//!
//! - A feature an action cannot handle (no geometry where one is needed, bad WKT, a CRS the
//!   action cannot use) goes to the `rejected` port with the reason in `_rejection_reason`;
//!   nothing in this group fails the run because of one bad feature.
//! - Coordinates are in the units of the feature's CRS. The codes listed in
//!   [`GEOGRAPHIC_CRS`] are longitude/latitude in degrees; measures default to geodesic
//!   (metres, square metres) on those and to planar (CRS units) on everything else.
//! - Actions that write attributes compute the output schema once per distinct input schema
//!   (`Reshaper`) and never extend schemas feature by feature.
//! - The per-feature actions (measures, constructions, reprojection, WKT) share one transform
//!   body, `per_feature.rs`: each file holds its parameters, its spec and a `GeometryStep`
//!   (the computation for one feature, or the reason to reject it).

pub mod area;
pub mod bounds;
pub mod buffer;
pub mod centroid;
pub mod convex_hull;
pub mod geometry_filter;
pub mod geometry_to_wkt;
pub mod length;
mod per_feature;
pub mod reproject;
pub mod simplify;
pub mod spatial_filter;
pub mod wkt_to_geometry;

use std::sync::Arc;

use geo_types::{Coord, Geometry as G};
use sluice_runtime::{ActionSpec, Feature, Schema, Value};

/// The specs of every action in this module.
pub fn specs() -> Vec<ActionSpec> {
    vec![
        area::SPEC,
        length::SPEC,
        centroid::SPEC,
        bounds::SPEC,
        buffer::SPEC,
        simplify::SPEC,
        convex_hull::SPEC,
        geometry_filter::SPEC,
        spatial_filter::SPEC,
        reproject::SPEC,
        wkt_to_geometry::SPEC,
        geometry_to_wkt::SPEC,
    ]
}

/// EPSG codes whose coordinates are longitude/latitude in degrees: WGS 84 (4326), ETRS89
/// (4258), NAD83 (4269), NAD27 (4267), GDA94 (4283), SIRGAS 2000 (4674), GDA2020 (7844) and
/// CGCS2000 (4490).
pub const GEOGRAPHIC_CRS: &[u32] = &[4326, 4258, 4269, 4267, 4283, 4674, 7844, 4490];

/// Whether `crs` is one of the [`GEOGRAPHIC_CRS`] codes.
pub fn is_geographic(crs: Option<u32>) -> bool {
    crs.is_some_and(|c| GEOGRAPHIC_CRS.contains(&c))
}

/// The WKT-style name of a geometry's type, for messages (`point`, `multipolygon`...).
pub(crate) fn type_name(geom: &G<f64>) -> &'static str {
    match geom {
        G::Point(_) => "point",
        G::Line(_) => "line",
        G::LineString(_) => "linestring",
        G::Polygon(_) => "polygon",
        G::MultiPoint(_) => "multipoint",
        G::MultiLineString(_) => "multilinestring",
        G::MultiPolygon(_) => "multipolygon",
        G::GeometryCollection(_) => "geometrycollection",
        G::Rect(_) => "rect",
        G::Triangle(_) => "triangle",
    }
}

/// The first coordinate that is not a finite longitude/latitude pair (latitude within ±90°),
/// so that geodesic code is never fed nonsense.
pub(crate) fn bad_lonlat(geom: &G<f64>) -> Option<Coord<f64>> {
    use geo::CoordsIter;
    geom.coords_iter()
        .find(|c| !(c.x.is_finite() && c.y.is_finite() && c.y.abs() <= 90.0))
}

/// The first coordinate that is not finite (NaN or infinite).
pub(crate) fn non_finite(geom: &G<f64>) -> Option<Coord<f64>> {
    use geo::CoordsIter;
    geom.coords_iter()
        .find(|c| !(c.x.is_finite() && c.y.is_finite()))
}

/// Checks an attribute-name parameter.
pub(crate) fn check_attribute_name(
    path: &str,
    name: &str,
) -> Result<(), sluice_runtime::ActionError> {
    if name.is_empty() {
        return Err(sluice_runtime::ActionError::param(
            path,
            "the attribute name is empty",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Output schemas
// ---------------------------------------------------------------------------------------------

/// Writes a fixed set of attributes (and removes others) on features, computing the output
/// schema once per distinct input schema (compared by `Arc::ptr_eq`).
///
/// An attribute to write that the input already has is overwritten in place; a new one is
/// appended after the input's attributes, in the order given. When nothing is appended or
/// removed the feature keeps its schema and its values are edited copy-on-write.
pub(crate) struct Reshaper {
    add: Vec<Arc<str>>,
    remove: Vec<Arc<str>>,
    plans: Vec<Plan>,
}

/// The output layout for one input schema.
struct Plan {
    input: Arc<Schema>,
    output: Arc<Schema>,
    layout: Layout,
}

enum Layout {
    /// Same schema: write new value `k` at position `positions[k]`.
    InPlace(Vec<usize>),
    /// New schema: output position `i` takes `slots[i]`.
    Rebuild(Vec<Slot>),
}

#[derive(Clone, Copy)]
enum Slot {
    Old(usize),
    New(usize),
}

/// Plans kept per call; more distinct schemas than this in one call start over.
const MAX_PLANS: usize = 32;

impl Reshaper {
    /// A reshaper that writes `add` (values given in this order) and drops `remove`.
    pub(crate) fn new<A, R>(add: A, remove: R) -> Reshaper
    where
        A: IntoIterator,
        A::Item: Into<Arc<str>>,
        R: IntoIterator,
        R::Item: Into<Arc<str>>,
    {
        Reshaper {
            add: add.into_iter().map(Into::into).collect(),
            remove: remove.into_iter().map(Into::into).collect(),
            plans: Vec::new(),
        }
    }

    /// Writes `new` (one value per attribute to add, taken out of the slice) on `feature` and
    /// removes the attributes to remove.
    pub(crate) fn write(&mut self, feature: &mut Feature, new: &mut [Value]) {
        let plan = self.plan(feature.schema());
        match &plan.layout {
            Layout::InPlace(positions) => {
                let values = feature.values_mut();
                for (&pos, v) in positions.iter().zip(new.iter_mut()) {
                    values[pos] = std::mem::take(v);
                }
            }
            Layout::Rebuild(slots) => {
                let old = feature.values();
                let values: Vec<Value> = slots
                    .iter()
                    .map(|s| match *s {
                        Slot::Old(i) => old[i].clone(),
                        Slot::New(k) => new.get_mut(k).map(std::mem::take).unwrap_or_default(),
                    })
                    .collect();
                let output = plan.output.clone();
                feature.reshape(output, values);
            }
        }
    }

    fn plan(&mut self, input: &Arc<Schema>) -> &Plan {
        let found = self.plans.iter().position(|p| Arc::ptr_eq(&p.input, input));
        let i = match found {
            Some(i) => i,
            None => {
                if self.plans.len() >= MAX_PLANS {
                    self.plans.clear();
                }
                self.plans.push(self.make_plan(input));
                self.plans.len() - 1
            }
        };
        &self.plans[i]
    }

    fn make_plan(&self, input: &Arc<Schema>) -> Plan {
        let new_index = |name: &str| self.add.iter().position(|a| a.as_ref() == name);
        let mut names: Vec<Arc<str>> = Vec::with_capacity(input.len() + self.add.len());
        let mut slots = Vec::with_capacity(input.len() + self.add.len());
        for (i, name) in input.names().iter().enumerate() {
            if let Some(k) = new_index(name) {
                names.push(name.clone());
                slots.push(Slot::New(k));
            } else if !self.remove.iter().any(|r| r == name) {
                names.push(name.clone());
                slots.push(Slot::Old(i));
            }
        }
        for (k, name) in self.add.iter().enumerate() {
            if input.index_of(name).is_none() {
                names.push(name.clone());
                slots.push(Slot::New(k));
            }
        }
        if names.as_slice() == input.names() {
            let positions = self
                .add
                .iter()
                .map(|a| input.index_of(a).unwrap_or(usize::MAX))
                .collect();
            Plan {
                input: input.clone(),
                output: input.clone(),
                layout: Layout::InPlace(positions),
            }
        } else {
            Plan {
                input: input.clone(),
                output: Schema::new(names),
                layout: Layout::Rebuild(slots),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers shared by the tests of this module.

    use std::sync::{Arc, OnceLock};

    use geo_types::polygon;
    use sluice_runtime::{
        ActionError, ActionSpec, BuildContext, DEFAULT_PORT, Emitter, Feature, Geometry, NodeImpl,
        Processor, REJECTED_PORT, Schema, Transform,
    };

    /// Builds `spec` with `params`.
    pub(crate) fn build(
        spec: &ActionSpec,
        params: serde_json::Value,
    ) -> Result<NodeImpl, ActionError> {
        (spec.build)(&BuildContext {
            node_id: "t",
            params: &params,
        })
        .map(|b| b.node)
    }

    /// Builds a transform.
    pub(crate) fn transform(spec: &ActionSpec, params: serde_json::Value) -> Arc<dyn Transform> {
        match build(spec, params) {
            Ok(NodeImpl::Transform(t)) => t,
            Ok(_) => panic!("{} must build a transform", spec.name),
            Err(e) => panic!("{} failed to build: {e}", spec.name),
        }
    }

    /// Builds a processor.
    pub(crate) fn processor(spec: &ActionSpec, params: serde_json::Value) -> Box<dyn Processor> {
        match build(spec, params) {
            Ok(NodeImpl::Processor(p)) => p,
            Ok(_) => panic!("{} must build a processor", spec.name),
            Err(e) => panic!("{} failed to build: {e}", spec.name),
        }
    }

    /// Parses the spec's YAML example into JSON parameters (with the runtime's YAML parser).
    pub(crate) fn example_params(spec: &ActionSpec) -> serde_json::Value {
        sluice_runtime::workflow::yaml::parse(spec.example)
            .unwrap_or_else(|e| panic!("{} example does not parse: {e:?}", spec.name))
            .to_json()
    }

    /// Runs a transform over `input`, returning the features of each of `ports` ports.
    /// Applies `t` to `input`; with two ports, the second is `rejected`.
    pub(crate) fn run(t: &dyn Transform, ports: usize, input: Vec<Feature>) -> Vec<Vec<Feature>> {
        let mut out = if ports == 2 {
            Emitter::for_outputs(&[DEFAULT_PORT, REJECTED_PORT])
        } else {
            Emitter::buffer(ports)
        };
        t.apply(input, &mut out).unwrap();
        out.into_buffers()
    }

    /// A feature with one `name` attribute (`f<id>`) and a geometry; every feature made here
    /// shares one schema, as a reader's would.
    pub(crate) fn feature(id: u64, geom: geo_types::Geometry<f64>, crs: Option<u32>) -> Feature {
        static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
        let schema = SCHEMA.get_or_init(|| Schema::new(["name"])).clone();
        Feature::new(id, schema, vec![format!("f{id}").into()])
            .with_geometry(Some(Geometry::in_crs(geom, crs)))
    }

    /// `p` with its exterior ring and/or its holes running the other way.
    pub(crate) fn rewound(
        p: &geo_types::Polygon<f64>,
        exterior: bool,
        holes: bool,
    ) -> geo_types::Polygon<f64> {
        let turn = |ring: &geo_types::LineString<f64>, yes: bool| {
            let mut coords = ring.0.clone();
            if yes {
                coords.reverse();
            }
            geo_types::LineString(coords)
        };
        geo_types::Polygon::new(
            turn(p.exterior(), exterior),
            p.interiors().iter().map(|r| turn(r, holes)).collect(),
        )
    }

    /// The four windings of `p`: as given, exterior reversed, holes reversed, both reversed.
    pub(crate) fn windings(p: &geo_types::Polygon<f64>) -> [geo_types::Polygon<f64>; 4] {
        [
            p.clone(),
            rewound(p, true, false),
            rewound(p, false, true),
            rewound(p, true, true),
        ]
    }

    /// A 1° by 1° cell at the origin, counter-clockwise, with a counter-clockwise hole of a
    /// quarter of it (holes of valid polygons run clockwise: this one is wound the wrong way
    /// on purpose).
    pub(crate) fn cell_with_hole() -> geo_types::Polygon<f64> {
        polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 1.0)],
            interiors: [[(x: 0.25, y: 0.25), (x: 0.75, y: 0.25), (x: 0.75, y: 0.75), (x: 0.25, y: 0.75)]],
        )
    }

    /// The `_rejection_reason` of a feature.
    pub(crate) fn reason(f: &Feature) -> String {
        f.get(sluice_runtime::REJECTION_REASON)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshaper_appends_overwrites_and_removes_with_one_schema_per_input() {
        let schema = Schema::new(["a", "wkt", "b"]);
        let mut r = Reshaper::new(["b", "c"], ["wkt"]);
        let mut f1 = Feature::new(1, schema.clone(), vec![1.into(), "x".into(), 2.into()]);
        let mut f2 = Feature::new(2, schema.clone(), vec![3.into(), "y".into(), 4.into()]);
        r.write(&mut f1, &mut [Value::Int(20), Value::Int(30)]);
        r.write(&mut f2, &mut [Value::Int(40), Value::Int(50)]);
        let names: Vec<&str> = f1.schema().names().iter().map(|n| n.as_ref()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(Arc::ptr_eq(f1.schema(), f2.schema()));
        assert_eq!(
            f1.values(),
            &[Value::Int(1), Value::Int(20), Value::Int(30)]
        );
        assert_eq!(
            f2.values(),
            &[Value::Int(3), Value::Int(40), Value::Int(50)]
        );
    }

    #[test]
    fn reshaper_edits_in_place_when_the_schema_already_fits() {
        let schema = Schema::new(["a", "area"]);
        let mut r = Reshaper::new(["area"], Vec::<&str>::new());
        let mut f = Feature::new(1, schema.clone(), vec![1.into(), Value::Null]);
        r.write(&mut f, &mut [Value::Float(2.5)]);
        assert!(Arc::ptr_eq(f.schema(), &schema));
        assert_eq!(f.get("area"), Some(&Value::Float(2.5)));
    }

    /// The group in a real run: two sources into `spatial_filter`'s two inputs, WKT parsing,
    /// a spatial join, reprojection and a measure, written as JSON Lines.
    #[test]
    fn workflow_joins_shops_to_districts() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("joined.jsonl");
        let yaml = format!(
            r#"
name: geometry_join
nodes:
  - id: districts
    action: feature_creator
    with:
      features:
        - {{ district: north, wkt: "POLYGON ((0 1, 1 1, 1 2, 0 2, 0 1))" }}
        - {{ district: south, wkt: "POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))" }}
        - {{ district: broken, wkt: "POLYGON ((0 0" }}
  - id: shops
    action: feature_creator
    with:
      crs: 4326
      features:
        - {{ shop: a, geometry: {{ type: Point, coordinates: [0.5, 1.5] }} }}
        - {{ shop: b, geometry: {{ type: Point, coordinates: [0.5, 0.5] }} }}
        - {{ shop: c, geometry: {{ type: Point, coordinates: [5.0, 5.0] }} }}
  - id: parse
    action: wkt_to_geometry
    with: {{ crs: 4326 }}
  - id: join
    action: spatial_filter
    with: {{ predicate: within, merge_attributes: true }}
  - id: to_mercator
    action: reproject
    with: {{ to: 3857 }}
  - id: bbox
    action: bounds
  - id: write
    action: jsonl_writer
    with: {{ path: "{}" }}
edges:
  - districts -> parse
  - parse -> join.filter
  - shops -> join.candidate
  - join.passed -> to_mercator
  - to_mercator -> bbox
  - bbox -> write
"#,
            out.display().to_string().replace('\\', "/")
        );
        let registry = crate::registry();
        sluice_runtime::testing::run_workflow_yaml(&yaml, &registry).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert_eq!(rows[0]["shop"], "a");
        assert_eq!(rows[0]["district"], "north");
        assert_eq!(rows[1]["district"], "south");
        assert!(rows[0].get("wkt").is_none());
        // 0.5° east in Web Mercator.
        let x = rows[1]["xmin"].as_f64().unwrap();
        assert!((x - 55_659.745).abs() < 0.01, "{x}");
    }

    #[test]
    fn geographic_codes() {
        assert!(is_geographic(Some(4326)));
        assert!(!is_geographic(Some(3857)));
        assert!(!is_geographic(None));
    }
}
