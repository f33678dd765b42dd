//! `shapefile_writer`: writes features to an ESRI Shapefile (`.shp`, `.shx`, `.dbf`,
//! `.cpg`, and `.prj` when the CRS is known).
//!
//! ```yaml
//! - id: save
//!   action: shapefile_writer
//!   with:
//!     path: out/parcels.shp
//!     encoding: UTF-8
//! ```
//!
//! - `path` names the `.shp`; the sidecars are written beside it with the same base name.
//!   Every file is written under a temporary name and all of them are moved into place
//!   together when the run succeeds (one commit of the run); a failed or cancelled run
//!   leaves none of them.
//! - One geometry type per file, decided by the first feature with a geometry: `Point`
//!   (point), `MultiPoint` (multipoint), `LineString` / `MultiLineString` (polyline),
//!   `Polygon` / `MultiPolygon` (polygon); Z when that geometry has Z (with M per record
//!   where a geometry has it), M when it has only M. A later geometry of another type, or
//!   with other ordinates (Z where the file has none, none where it has Z...), fails the run
//!   naming the feature: a shapefile cannot hold it, and dropping or inventing ordinates
//!   would change the data. A geometry collection fails the run. Features without a
//!   geometry (or with an empty one) are null shapes. Polygon rings are written with the
//!   shapefile's orientation: outer rings clockwise, holes counter-clockwise (reversed with
//!   their Z / M where needed). NaN measures are written as "no data" (-10^39).
//!   One CRS per file: a geometry in another CRS fails the run.
//! - Attributes become `.dbf` fields, in order of first appearance over all features:
//!   int `N` (width from the data, no decimals), float `N` with decimals (each value in its
//!   shortest text that reads back to the same `f64`, at least one decimal, exponent form
//!   past 24 characters; NaN and infinities fail the run), an int field that meets a float
//!   becomes a float field (ints widened), string `C` (width: the longest value in bytes
//!   after encoding; a value over 254 bytes fails the run naming the feature and the
//!   field), bool `L`, date `D`. DBF has no date-time, bytes or nested type: datetimes,
//!   local datetimes, bytes (hex), arrays and maps (JSON) are written as `C` text in their
//!   ISO 8601 / text form and read back as strings. Null is blanks (read back as null). A
//!   value of another type than its field's fails the run naming the feature.
//! - Field names are cut to 10 bytes (the format's limit) and made unique without regard
//!   to case (`longname_1`, ...); the renames are logged as one warning.
//! - `encoding` (default UTF-8; `Shift_JIS`, `latin1`, `windows-1252`, `cp437`...) encodes
//!   names and text; a character the encoding cannot hold fails the run naming the feature
//!   and the field. The `.cpg` records it (`UTF-8`, or the code page number: `932`,
//!   `1252`), and the `.dbf` language driver byte too where one exists (0x57 for
//!   windows-1252, 0x13 for Shift_JIS).
//! - The `.prj` holds the OGC WKT (with its EPSG authority) of the geometries' EPSG code,
//!   from the `crs-definitions` tables; for a code they lack, no `.prj` is written and a
//!   warning names the code. Geometries without a CRS: no `.prj`.
//! - Field widths depend on every value, so rows are spilled as they come to a temporary
//!   file in the run's spill folder (geometries to two more: the `.shp` records and the
//!   `.shx` index), and the files are assembled in `finish`: memory stays bounded by one
//!   feature whatever the input size.
//! - The format holds at most 2 GB: a `.shp` or `.dbf` that would pass 2^31 bytes fails the
//!   run (split the output upstream).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::store::AtomicWriter;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, Feature, Geometry,
    NodeContext, NodeImpl, Sink, Value,
};

use crate::sources::shapefile_reader::{
    Bounds, Codec, Dim, END_OF_FILE, Kind, M_NO_DATA_WRITTEN, SHP_HEADER_LEN, date_text,
    signed_area2, type_code, write_field, write_fixed, write_header,
};

/// Parameters of `shapefile_writer`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShapefileWriterParams {
    /// The `.shp` to write (a path, `file://` or `memory://` location); the `.shx`,
    /// `.dbf`, `.cpg` and `.prj` are written beside it.
    pub path: String,
    /// The text encoding of the `.dbf` (`UTF-8`, `Shift_JIS`, `latin1`, `windows-1252`,
    /// `932`, `cp437`...). Default: UTF-8.
    #[serde(default)]
    pub encoding: Option<String>,
}

/// The `shapefile_writer` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "shapefile_writer",
    ActionKind::Sink,
    "Writes features to an ESRI Shapefile (.shp/.shx/.dbf/.cpg/.prj), committed only when the run succeeds.",
    schema_of::<ShapefileWriterParams>,
    build,
)
.writes_to("path")
.example("path: out/parcels.shp\n");

/// The most bytes a `.shp` or `.dbf` may hold (offsets are 32-bit).
const LIMIT: u64 = 1 << 31;
/// The widest character field.
const MAX_TEXT: usize = 254;
/// Float text longer than this is written in exponent form.
const MAX_PLAIN_FLOAT: usize = 24;

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: ShapefileWriterParams = ctx.params()?;
    Ok(BuiltAction::new(NodeImpl::Sink(Box::new(
        ShapefileWriter::new(p)?,
    ))))
}

/// The type of a `.dbf` field, from the values it has met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    /// Only nulls so far (written as `C` of width 1).
    Unknown,
    Int,
    Float,
    Text,
    Bool,
    Date,
}

impl FieldKind {
    fn of(v: &Value) -> FieldKind {
        match v {
            Value::Null => FieldKind::Unknown,
            Value::Bool(_) => FieldKind::Bool,
            Value::Int(_) => FieldKind::Int,
            Value::Float(_) => FieldKind::Float,
            Value::Date(_) => FieldKind::Date,
            _ => FieldKind::Text,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FieldKind::Unknown => "null",
            FieldKind::Int => "int",
            FieldKind::Float => "float",
            FieldKind::Text => "text (string, datetime, bytes, array or map)",
            FieldKind::Bool => "bool",
            FieldKind::Date => "date",
        }
    }
}

/// One field of the `.dbf` being gathered.
struct OutField {
    /// The attribute it holds.
    attribute: String,
    /// Its name in the file (encoded, at most 10 bytes).
    name: Vec<u8>,
    kind: FieldKind,
    /// The longest value in bytes.
    width: usize,
    /// Most digits after the decimal point (floats).
    decimals: usize,
}

/// A temporary file in the spill folder, removed when dropped.
struct Temp {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    len: u64,
}

impl Temp {
    fn create(ctx: &NodeContext, what: &str) -> Result<Temp, ActionError> {
        let path = ctx.spill.new_path(&format!("shapefile_writer_{what}"))?;
        let file = File::create(&path)
            .map_err(|e| ActionError::io(format!("creating {}", path.display()), e))?;
        Ok(Temp {
            path,
            out: Some(BufWriter::with_capacity(256 * 1024, file)),
            len: 0,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ActionError> {
        self.len += bytes.len() as u64;
        match self.out.as_mut() {
            Some(w) => w
                .write_all(bytes)
                .map_err(|e| ActionError::io(format!("writing {}", self.path.display()), e)),
            None => Err(ActionError::Other(
                "shapefile_writer: temporary file closed".into(),
            )),
        }
    }

    /// Flushes and reopens the file for reading.
    fn reader(&mut self) -> Result<BufReader<File>, ActionError> {
        let io = |e| ActionError::io(format!("reading back {}", self.path.display()), e);
        if let Some(mut w) = self.out.take() {
            w.flush().map_err(io)?;
        }
        let file = File::open(&self.path).map_err(io)?;
        Ok(BufReader::with_capacity(256 * 1024, file))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        self.out = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The spilled parts of the output: `.shp` records, `.shx` entries, `.dbf` rows.
struct Spill {
    shp: Temp,
    shx: Temp,
    rows: Temp,
}

/// Ranges gathered over every record.
#[derive(Default)]
struct Extent {
    xy: Option<[f64; 4]>,
    z: Option<[f64; 2]>,
    m: Option<[f64; 2]>,
}

fn widen(r: &mut Option<[f64; 2]>, lo: f64, hi: f64) {
    let b = r.get_or_insert([lo, hi]);
    b[0] = b[0].min(lo);
    b[1] = b[1].max(hi);
}

/// The writer.
pub(crate) struct ShapefileWriter {
    path: String,
    /// `path` without its extension.
    base: String,
    /// Sidecar extensions in upper case (the `.shp` was named `.SHP`).
    upper: bool,
    codec: Codec,
    /// The most bytes a `.shp` or `.dbf` may hold.
    pub(crate) limit: u64,
    spill: Option<Spill>,
    /// The file's shape type, from the first geometry.
    layout: Option<(Kind, Dim)>,
    /// The id of the feature that decided it.
    layout_from: u64,
    crs: Option<u32>,
    fields: Vec<OutField>,
    by_attribute: HashMap<String, usize>,
    records: u64,
    extent: Extent,
    /// Scratch for one record's content and one row.
    content: Vec<u8>,
    row: Vec<u8>,
    pending: Vec<AtomicWriter>,
}

impl ShapefileWriter {
    fn new(p: ShapefileWriterParams) -> Result<ShapefileWriter, ActionError> {
        let lower = p.path.to_ascii_lowercase();
        if !lower.ends_with(".shp") || lower.ends_with("/.shp") {
            return Err(ActionError::param(
                "path",
                "must name the .shp file (out/parcels.shp)",
            ));
        }
        let name = p.encoding.as_deref().unwrap_or("UTF-8");
        let codec = Codec::by_name(name).ok_or_else(|| {
            ActionError::param(
                "encoding",
                format!(
                    "\"{name}\" is not an encoding sluice knows (UTF-8, Shift_JIS, latin1, \
                     windows-1252, ISO-8859-15, GBK, EUC-KR, Big5, cp437, cp850, a code page \
                     number...)"
                ),
            )
        })?;
        Ok(ShapefileWriter {
            base: p.path[..p.path.len() - 4].to_string(),
            upper: p.path.ends_with(".SHP"),
            path: p.path,
            codec,
            limit: LIMIT,
            spill: None,
            layout: None,
            layout_from: 0,
            crs: None,
            fields: Vec::new(),
            by_attribute: HashMap::new(),
            records: 0,
            extent: Extent::default(),
            content: Vec::new(),
            row: Vec::new(),
            pending: Vec::new(),
        })
    }

    fn sidecar(&self, ext: &str) -> String {
        let ext = if self.upper {
            ext.to_ascii_uppercase()
        } else {
            ext.to_string()
        };
        format!("{}.{ext}", self.base)
    }

    /// The field of an attribute, made on its first appearance (name cut and unique).
    fn field(&mut self, attribute: &str, id: u64) -> Result<usize, ActionError> {
        if let Some(&i) = self.by_attribute.get(attribute) {
            return Ok(i);
        }
        let encoded = self.codec.encode(attribute).map_err(|c| {
            ActionError::data(
                Some(format!("feature {id}")),
                format!(
                    "attribute name \"{attribute}\": {c:?} cannot be written in {}",
                    self.codec.name()
                ),
            )
        })?;
        let taken = |name: &[u8], fields: &[OutField]| {
            fields.iter().any(|f| f.name.eq_ignore_ascii_case(name))
        };
        let mut name = cut(attribute, &self.codec, 10);
        if name.is_empty() {
            name = b"FIELD".to_vec();
        }
        let mut n = 0;
        while taken(&name, &self.fields) {
            n += 1;
            let suffix = format!("_{n}");
            let mut stem = cut(attribute, &self.codec, 10 - suffix.len());
            stem.extend_from_slice(suffix.as_bytes());
            name = stem;
        }
        let _ = encoded;
        self.fields.push(OutField {
            attribute: attribute.to_string(),
            name,
            kind: FieldKind::Unknown,
            width: 1,
            decimals: 0,
        });
        let i = self.fields.len() - 1;
        self.by_attribute.insert(attribute.to_string(), i);
        Ok(i)
    }

    /// Spills one feature's row: (field, bytes) for each non-null value.
    fn spill_row(&mut self, f: &Feature) -> Result<(), ActionError> {
        let id = f.id();
        let mut row = std::mem::take(&mut self.row);
        row.clear();
        let mut count: u32 = 0;
        row.extend_from_slice(&[0; 4]);
        for (attribute, value) in f.attributes() {
            let i = self.field(attribute, id)?;
            if value.is_null() {
                continue;
            }
            let bytes = self.value_bytes(i, value, id)?;
            row.extend_from_slice(&(i as u32).to_le_bytes());
            row.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            row.extend_from_slice(&bytes);
            count += 1;
        }
        row[..4].copy_from_slice(&count.to_le_bytes());
        let result = match self.spill.as_mut() {
            Some(s) => s.rows.write(&row),
            None => Ok(()),
        };
        self.row = row;
        result
    }

    /// A value's bytes in its field, widening the field's type and width.
    fn value_bytes(&mut self, i: usize, value: &Value, id: u64) -> Result<Vec<u8>, ActionError> {
        let field = &mut self.fields[i];
        let at = || Some(format!("feature {id}"));
        let kind = FieldKind::of(value);
        field.kind = match (field.kind, kind) {
            (FieldKind::Unknown, k) => k,
            (a, b) if a == b => a,
            (FieldKind::Int, FieldKind::Float) | (FieldKind::Float, FieldKind::Int) => {
                FieldKind::Float
            }
            (a, b) => {
                return Err(ActionError::data(
                    at(),
                    format!(
                        "attribute \"{}\": a {} value in a field of {} (the type of its first value)",
                        field.attribute,
                        b.name(),
                        a.name()
                    ),
                ));
            }
        };
        let bytes: Vec<u8> = match value {
            Value::Int(v) => v.to_string().into_bytes(),
            Value::Float(v) => {
                let text = float_text(*v).ok_or_else(|| {
                    ActionError::data(
                        at(),
                        format!(
                            "attribute \"{}\": {v} cannot be written in a .dbf number field",
                            field.attribute
                        ),
                    )
                })?;
                let decimals = text
                    .split_once('.')
                    .map_or(0, |(_, d)| d.bytes().take_while(u8::is_ascii_digit).count());
                field.decimals = field.decimals.max(decimals);
                text.into_bytes()
            }
            Value::Bool(b) => vec![if *b { b'T' } else { b'F' }],
            Value::Date(d) => date_text(*d)
                .ok_or_else(|| {
                    ActionError::data(
                        at(),
                        format!(
                            "attribute \"{}\": {value} is outside the years 0 to 9999 a .dbf date holds",
                            field.attribute
                        ),
                    )
                })?
                .into_bytes(),
            other => {
                let text = match other {
                    Value::String(s) => std::borrow::Cow::Borrowed(&**s),
                    v => std::borrow::Cow::Owned(v.to_string()),
                };
                let encoded = self.codec.encode(&text).map_err(|c| {
                    ActionError::data(
                        at(),
                        format!(
                            "attribute \"{}\": {c:?} cannot be written in {}",
                            field.attribute,
                            self.codec.name()
                        ),
                    )
                })?;
                if encoded.len() > MAX_TEXT {
                    return Err(ActionError::data(
                        at(),
                        format!(
                            "attribute \"{}\": a text of {} bytes, more than the {MAX_TEXT} a .dbf field holds",
                            field.attribute,
                            encoded.len()
                        ),
                    ));
                }
                encoded.into_owned()
            }
        };
        field.width = field.width.max(bytes.len());
        Ok(bytes)
    }

    /// Spills one feature's shape record and index entry.
    fn spill_shape(&mut self, f: &Feature) -> Result<(), ActionError> {
        let id = f.id();
        let mut content = std::mem::take(&mut self.content);
        content.clear();
        let result = match f.geometry() {
            Some(g) if sluice_runtime::feature::coord_count(&g.geom) > 0 => {
                self.check_layout(g, id)?;
                self.check_crs(g, id)?;
                self.encode(g, id, &mut content)
            }
            _ => {
                content.extend_from_slice(&0i32.to_le_bytes());
                Ok(())
            }
        };
        if let Err(e) = result {
            self.content = content;
            return Err(e);
        }
        self.records += 1;
        let Some(spill) = self.spill.as_mut() else {
            return Ok(());
        };
        let offset = SHP_HEADER_LEN as u64 + spill.shp.len;
        let words = (content.len() / 2) as u64;
        if offset + 8 + content.len() as u64 > self.limit {
            self.content = content;
            return Err(ActionError::data(
                Some(format!("feature {id}")),
                format!(
                    "{} would pass {} bytes, the most a shapefile holds; split the output",
                    self.path, self.limit
                ),
            ));
        }
        let word = |v: u64| i32::try_from(v).unwrap_or(i32::MAX).to_be_bytes();
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&word(self.records));
        header[4..].copy_from_slice(&word(words));
        spill.shp.write(&header)?;
        spill.shp.write(&content)?;
        let mut entry = [0u8; 8];
        entry[..4].copy_from_slice(&word(offset / 2));
        entry[4..].copy_from_slice(&word(words));
        spill.shx.write(&entry)?;
        self.content = content;
        Ok(())
    }

    fn check_crs(&mut self, g: &Geometry, id: u64) -> Result<(), ActionError> {
        match (self.crs, g.crs) {
            (None, c) => self.crs = c,
            (Some(first), Some(c)) if first != c => {
                return Err(ActionError::data(
                    Some(format!("feature {id}")),
                    format!(
                        "geometry in EPSG:{c}, but this file is in EPSG:{first} (reproject upstream)"
                    ),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// The file's type from the first geometry; later ones must match it.
    fn check_layout(&mut self, g: &Geometry, id: u64) -> Result<(), ActionError> {
        let at = || Some(format!("feature {id}"));
        let kind = geometry_kind(&g.geom).ok_or_else(|| {
            ActionError::data(
                at(),
                "a geometry collection cannot be written to a shapefile",
            )
        })?;
        let dim = match (g.z().is_some(), g.m().is_some()) {
            (true, _) => Dim::Z,
            (false, true) => Dim::M,
            (false, false) => Dim::Xy,
        };
        match self.layout {
            None => {
                self.layout = Some((kind, dim));
                self.layout_from = id;
                Ok(())
            }
            Some(l) if l == (kind, dim) => Ok(()),
            Some((k, d)) => Err(ActionError::data(
                at(),
                format!(
                    "a {} geometry, but this shapefile holds {} (from feature {}); a shapefile has one geometry type",
                    type_name(kind, dim),
                    type_name(k, d),
                    self.layout_from
                ),
            )),
        }
    }

    /// A record's content (type, then the shape) for a geometry of the file's type.
    fn encode(&mut self, g: &Geometry, id: u64, out: &mut Vec<u8>) -> Result<(), ActionError> {
        use geo_types::Geometry as G;
        let Some((kind, dim)) = self.layout else {
            return Ok(());
        };
        let code = type_code(kind, dim);
        let z = g.z();
        let m = g.m();
        let mut parts: Vec<Vec<usize>> = Vec::new();
        let mut coords: Vec<geo_types::Coord<f64>> = Vec::new();
        let mut zs: Vec<f64> = Vec::new();
        let mut ms: Vec<f64> = Vec::new();
        // Appends one part (a ring when `ring` is Some(outer?)), oriented as the format says.
        let mut next = 0usize;
        let mut push = |pts: &[geo_types::Coord<f64>], ring: Option<bool>| {
            let start = next;
            next += pts.len();
            let mut idx: Vec<usize> = (start..start + pts.len()).collect();
            if let Some(outer) = ring {
                let area = signed_area2(pts);
                // Outer rings clockwise (negative area), holes counter-clockwise.
                if (outer && area > 0.0) || (!outer && area < 0.0) {
                    idx.reverse();
                }
            }
            idx
        };
        let polygon_parts = |p: &geo_types::Polygon<f64>,
                             parts: &mut Vec<Vec<usize>>,
                             coords: &mut Vec<geo_types::Coord<f64>>,
                             push: &mut PushPart<'_>| {
            parts.push(push(&p.exterior().0, Some(true)));
            coords.extend_from_slice(&p.exterior().0);
            for h in p.interiors() {
                parts.push(push(&h.0, Some(false)));
                coords.extend_from_slice(&h.0);
            }
        };
        match &g.geom {
            G::Point(p) => coords.push(p.0),
            G::MultiPoint(mp) => {
                coords.extend(mp.0.iter().map(|p| p.0));
            }
            G::Line(l) => {
                let pts = [l.start, l.end];
                parts.push(push(&pts, None));
                coords.extend_from_slice(&pts);
            }
            G::LineString(l) => {
                parts.push(push(&l.0, None));
                coords.extend_from_slice(&l.0);
            }
            G::MultiLineString(ml) => {
                for l in &ml.0 {
                    parts.push(push(&l.0, None));
                    coords.extend_from_slice(&l.0);
                }
            }
            G::Polygon(p) => polygon_parts(p, &mut parts, &mut coords, &mut push),
            G::MultiPolygon(mp) => {
                for p in &mp.0 {
                    polygon_parts(p, &mut parts, &mut coords, &mut push);
                }
            }
            G::Rect(r) => polygon_parts(&r.to_polygon(), &mut parts, &mut coords, &mut push),
            G::Triangle(t) => polygon_parts(&t.to_polygon(), &mut parts, &mut coords, &mut push),
            G::GeometryCollection(_) => {
                return Err(ActionError::data(
                    Some(format!("feature {id}")),
                    "a geometry collection cannot be written to a shapefile",
                ));
            }
        }
        // Every coordinate in the order written (parts reoriented).
        let order: Vec<usize> = if parts.is_empty() {
            (0..coords.len()).collect()
        } else {
            parts.iter().flatten().copied().collect()
        };
        for &i in &order {
            if let Some(z) = z {
                zs.push(z.get(i).copied().unwrap_or(0.0));
            }
            if let Some(m) = m {
                let v = m.get(i).copied().unwrap_or(f64::NAN);
                ms.push(if v.is_nan() { M_NO_DATA_WRITTEN } else { v });
            }
        }
        let put = |out: &mut Vec<u8>, v: f64| out.extend_from_slice(&v.to_le_bytes());
        out.extend_from_slice(&code.to_le_bytes());
        let mut b = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for &i in &order {
            let c = coords[i];
            b = [b[0].min(c.x), b[1].min(c.y), b[2].max(c.x), b[3].max(c.y)];
        }
        let xy = self.extent.xy.get_or_insert(b);
        *xy = [
            xy[0].min(b[0]),
            xy[1].min(b[1]),
            xy[2].max(b[2]),
            xy[3].max(b[3]),
        ];
        let range = |v: &[f64]| {
            v.iter()
                .filter(|x| !x.is_nan() && **x > -1e38)
                .fold(None, |r: Option<[f64; 2]>, &x| match r {
                    None => Some([x, x]),
                    Some([lo, hi]) => Some([lo.min(x), hi.max(x)]),
                })
        };
        let zr = range(&zs);
        let mr = range(&ms);
        if let Some([lo, hi]) = zr {
            widen(&mut self.extent.z, lo, hi);
        }
        if let Some([lo, hi]) = mr {
            widen(&mut self.extent.m, lo, hi);
        }
        if kind == Kind::Point {
            let c = coords[0];
            put(out, c.x);
            put(out, c.y);
            if let Some(&v) = zs.first() {
                put(out, v);
            }
            if let Some(&v) = ms.first() {
                put(out, v);
            }
            return Ok(());
        }
        for v in b {
            put(out, v);
        }
        if kind != Kind::MultiPoint {
            out.extend_from_slice(&(parts.len() as i32).to_le_bytes());
        }
        out.extend_from_slice(&(order.len() as i32).to_le_bytes());
        if kind != Kind::MultiPoint {
            let mut start = 0i32;
            for p in &parts {
                out.extend_from_slice(&start.to_le_bytes());
                start += p.len() as i32;
            }
        }
        for &i in &order {
            put(out, coords[i].x);
            put(out, coords[i].y);
        }
        let no_data = [M_NO_DATA_WRITTEN, M_NO_DATA_WRITTEN];
        if z.is_some() {
            for v in zr.unwrap_or([0.0, 0.0]) {
                put(out, v);
            }
            for &v in &zs {
                put(out, v);
            }
        }
        if m.is_some() {
            for v in mr.unwrap_or(no_data) {
                put(out, v);
            }
            for &v in &ms {
                put(out, v);
            }
        }
        Ok(())
    }

    /// Writes the five files (to temporary names) from the spill.
    fn assemble(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        let Some(mut spill) = self.spill.take() else {
            return Ok(());
        };
        let io = |what: &str, e| ActionError::io(format!("writing {what}"), e);
        // .dbf layout first: it may be refused.
        let record_len: usize = 1 + self.fields.iter().map(|f| self.width(f)).sum::<usize>();
        let header_len = 32 + 32 * self.fields.len() + 1;
        let dbf_at = self.sidecar("dbf");
        if record_len > usize::from(u16::MAX) || header_len > usize::from(u16::MAX) {
            return Err(ActionError::data(
                Some(dbf_at),
                format!(
                    "{} fields of {record_len} bytes a record: more than a .dbf holds",
                    self.fields.len()
                ),
            ));
        }
        let dbf_len = header_len as u64 + self.records * record_len as u64 + 1;
        if dbf_len > self.limit {
            return Err(ActionError::data(
                Some(dbf_at),
                format!(
                    "would be {dbf_len} bytes, more than the {} a shapefile's .dbf holds; split the output",
                    self.limit
                ),
            ));
        }
        let records = u32::try_from(self.records).map_err(|_| {
            ActionError::data(Some(dbf_at.clone()), "more records than a .dbf holds")
        })?;
        let shape_type = self.layout.map_or(0, |(k, d)| type_code(k, d));
        let bounds = Bounds {
            xy: self.extent.xy.unwrap_or([0.0; 4]),
            z: self.extent.z.unwrap_or([0.0; 2]),
            m: self.extent.m.unwrap_or([0.0; 2]),
        };

        // .shp and .shx: header, then the spilled body.
        let shp_len = SHP_HEADER_LEN as u64 + spill.shp.len;
        let mut shp = AtomicWriter::create(&self.path)?;
        shp.write_all(&write_header(shp_len, shape_type, &bounds))
            .map_err(|e| io(&self.path, e))?;
        std::io::copy(&mut spill.shp.reader()?, &mut shp).map_err(|e| io(&self.path, e))?;
        let shx_at = self.sidecar("shx");
        let mut shx = AtomicWriter::create(&shx_at)?;
        let shx_len = SHP_HEADER_LEN as u64 + spill.shx.len;
        shx.write_all(&write_header(shx_len, shape_type, &bounds))
            .map_err(|e| io(&shx_at, e))?;
        std::io::copy(&mut spill.shx.reader()?, &mut shx).map_err(|e| io(&shx_at, e))?;

        // .dbf: header, field descriptors, the rows replayed at their final widths.
        let mut dbf = AtomicWriter::create(&dbf_at)?;
        let mut head = Vec::with_capacity(header_len);
        head.extend_from_slice(&write_fixed(
            records,
            header_len as u16,
            record_len as u16,
            self.codec.ldid(),
        ));
        let mut offsets = Vec::with_capacity(self.fields.len());
        let mut at = 1;
        for f in &self.fields {
            let (letter, decimals) = match f.kind {
                FieldKind::Int => (b'N', 0),
                FieldKind::Float => (b'N', f.decimals.max(1)),
                FieldKind::Bool => (b'L', 0),
                FieldKind::Date => (b'D', 0),
                FieldKind::Text | FieldKind::Unknown => (b'C', 0),
            };
            let width = self.width(f);
            head.extend_from_slice(&write_field(&f.name, letter, width, decimals));
            offsets.push((
                at,
                width,
                matches!(f.kind, FieldKind::Int | FieldKind::Float),
            ));
            at += width;
        }
        head.push(0x0d);
        dbf.write_all(&head).map_err(|e| io(&dbf_at, e))?;
        let mut rows = spill.rows.reader()?;
        let mut record = vec![b' '; record_len];
        let read_err = |e| ActionError::io("reading back the spilled rows", e);
        let mut word = [0u8; 4];
        let mut value = Vec::new();
        for r in 0..self.records {
            if r.is_multiple_of(8192) {
                ctx.check_cancelled()?;
            }
            record.fill(b' ');
            rows.read_exact(&mut word).map_err(read_err)?;
            for _ in 0..u32::from_le_bytes(word) {
                rows.read_exact(&mut word).map_err(read_err)?;
                let i = u32::from_le_bytes(word) as usize;
                rows.read_exact(&mut word).map_err(read_err)?;
                value.resize(u32::from_le_bytes(word) as usize, 0);
                rows.read_exact(&mut value).map_err(read_err)?;
                let Some(&(start, width, right)) = offsets.get(i) else {
                    continue;
                };
                let n = value.len().min(width);
                let from = if right { start + width - n } else { start };
                record[from..from + n].copy_from_slice(&value[..n]);
            }
            dbf.write_all(&record).map_err(|e| io(&dbf_at, e))?;
        }
        dbf.write_all(&[END_OF_FILE]).map_err(|e| io(&dbf_at, e))?;

        // .cpg, .prj.
        let cpg_at = self.sidecar("cpg");
        let mut cpg = AtomicWriter::create(&cpg_at)?;
        cpg.write_all(self.codec.cpg_name().as_bytes())
            .map_err(|e| io(&cpg_at, e))?;
        let mut pending = vec![shp, shx, dbf, cpg];
        match self.crs {
            None => {}
            Some(code) => match crate::crs::wkt(code) {
                Some(wkt) => {
                    let prj_at = self.sidecar("prj");
                    let mut prj = AtomicWriter::create(&prj_at)?;
                    prj.write_all(wkt.as_bytes()).map_err(|e| io(&prj_at, e))?;
                    pending.push(prj);
                }
                None => ctx.log(format!(
                    "warning: no WKT is known for EPSG:{code}, so {} gets no .prj",
                    self.path
                )),
            },
        }
        for w in &mut pending {
            let at = w.location().to_string();
            w.flush().map_err(|e| io(&at, e))?;
        }
        self.pending = pending;
        Ok(())
    }

    /// A field's width in the file.
    fn width(&self, f: &OutField) -> usize {
        match f.kind {
            FieldKind::Float => f.width.max(f.decimals.max(1) + 2),
            FieldKind::Bool => 1,
            FieldKind::Date => 8,
            _ => f.width,
        }
    }
}

/// Adds one part (a line, or a ring when given whether it is outer) and gives the indices
/// of its coordinates in the order written.
type PushPart<'a> = dyn FnMut(&[geo_types::Coord<f64>], Option<bool>) -> Vec<usize> + 'a;

/// The shapefile kind of a geometry; `None` for a collection.
fn geometry_kind(g: &geo_types::Geometry<f64>) -> Option<Kind> {
    use geo_types::Geometry as G;
    Some(match g {
        G::Point(_) => Kind::Point,
        G::MultiPoint(_) => Kind::MultiPoint,
        G::Line(_) | G::LineString(_) | G::MultiLineString(_) => Kind::PolyLine,
        G::Polygon(_) | G::MultiPolygon(_) | G::Rect(_) | G::Triangle(_) => Kind::Polygon,
        G::GeometryCollection(_) => return None,
    })
}

fn type_name(kind: Kind, dim: Dim) -> String {
    let k = match kind {
        Kind::Point => "Point",
        Kind::MultiPoint => "MultiPoint",
        Kind::PolyLine => "PolyLine",
        Kind::Polygon => "Polygon",
    };
    let d = match dim {
        Dim::Xy => "",
        Dim::Z => "Z",
        Dim::M => "M",
    };
    format!("{k}{d}")
}

/// `name` encoded and cut to at most `max` bytes on a character boundary (characters the
/// encoding cannot hold are left out).
fn cut(name: &str, codec: &Codec, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in name.chars() {
        let mut buf = [0u8; 4];
        let Ok(bytes) = codec.encode(c.encode_utf8(&mut buf)) else {
            continue;
        };
        if out.len() + bytes.len() > max {
            break;
        }
        out.extend_from_slice(&bytes);
    }
    out
}

/// A float's shortest text that parses back to the same value, with at least one decimal
/// (so it reads back as a float), in exponent form when long; `None` for NaN and
/// infinities.
pub(crate) fn float_text(v: f64) -> Option<String> {
    if !v.is_finite() {
        return None;
    }
    let mut s = format!("{v}");
    if s.len() > MAX_PLAIN_FLOAT {
        s = format!("{v:e}");
    }
    if !s.contains(['.', 'e']) {
        s.push_str(".0");
    }
    Some(s)
}

impl Sink for ShapefileWriter {
    fn write(&mut self, _input: usize, batch: Batch, ctx: &NodeContext) -> Result<(), ActionError> {
        if self.spill.is_none() {
            self.spill = Some(Spill {
                shp: Temp::create(ctx, "shp")?,
                shx: Temp::create(ctx, "shx")?,
                rows: Temp::create(ctx, "dbf")?,
            });
        }
        for f in &batch {
            self.spill_shape(f)?;
            self.spill_row(f)?;
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        if self.spill.is_none() {
            // No feature at all: an empty shapefile.
            self.write(0, Vec::new(), ctx)?;
        }
        self.assemble(ctx)?;
        let renamed: Vec<String> = self
            .fields
            .iter()
            .filter(|f| f.name != f.attribute.as_bytes())
            .map(|f| {
                let (name, _) = self.codec.decode(&f.name);
                format!("{} -> {name}", f.attribute)
            })
            .collect();
        if !renamed.is_empty() {
            ctx.log(format!(
                "warning: {}: field names cut to 10 bytes (the .dbf limit) or made unique: {}",
                self.path,
                renamed.join(", ")
            ));
        }
        ctx.log(format!(
            "wrote {} features to {} ({}, {} fields)",
            self.records,
            self.path,
            self.layout
                .map_or("no geometry".into(), |(k, d)| type_name(k, d)),
            self.fields.len()
        ));
        Ok(())
    }

    fn commit(&mut self) -> Result<(), ActionError> {
        for w in std::mem::take(&mut self.pending) {
            w.commit()?;
        }
        Ok(())
    }

    fn abort(&mut self) {
        self.pending.clear();
        self.spill = None;
    }
}

#[cfg(test)]
pub(crate) mod tests;
