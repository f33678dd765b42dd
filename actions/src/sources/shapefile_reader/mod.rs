//! `shapefile_reader`: reads ESRI Shapefiles (`.shp` + `.shx` + `.dbf`, with `.prj` and
//! `.cpg` when present) into features.
//!
//! ```yaml
//! - id: parcels
//!   action: shapefile_reader
//!   with:
//!     path: data/parcels.zip!/*.shp
//!     encoding: Shift_JIS
//! ```
//!
//! - `path` is a `.shp` file, a folder (its `.shp` files), a glob (`data/*.shp`), a zip
//!   archive (`data/parcels.zip`: every `.shp` inside it) or members of one
//!   (`data/parcels.zip!/parcels.shp`, `data/parcels.zip!/*.shp`). Files are read in name
//!   order, several at once (up to `read_ahead`), emitted in file order.
//! - The sidecars are found beside the `.shp`: same base name, extension in any case
//!   (`parcels.dbf`, `parcels.DBF`). The `.shx` index and the `.dbf` table are required:
//!   the index gives every record's offset and the record count, which are checked against
//!   the `.shp` as it streams and against the `.dbf`, so a damaged file is an error naming
//!   the file and the record, never features that are silently wrong. The three files are
//!   streamed side by side (never held whole).
//! - Geometries: points become `Point`, multipoints `MultiPoint`, polylines `LineString`
//!   (one part) or `MultiLineString`, polygons `Polygon` (one outer ring) or `MultiPolygon`.
//!   Polygon rings are grouped by orientation as the format defines it: clockwise rings are
//!   outer rings, counter-clockwise rings holes of the smallest outer ring that contains
//!   them (a hole inside none becomes a polygon of its own; a record whose rings all turn
//!   counter-clockwise is read as outer rings). Ring coordinates are kept in file order
//!   (outer rings stay clockwise), so writing them back gives the same bytes. The Z and M
//!   variants carry their heights and measures as the geometry's Z / M ordinates; an M
//!   below -10^38 ("no data") is NaN. A null shape, or a shape with no points, is a
//!   feature without geometry. MultiPatch shapes fail the run naming the record.
//! - Attributes: the `.dbf` fields, in file order. `C` is a string without its trailing
//!   blanks (all blank: null, as GDAL reads it); `N` and `F` an int when the field has no
//!   decimals and the value fits 64 bits, else a float (blank or `*`-filled: null); `L` a
//!   bool (`?` or blank: null); `D` a date (blank or zeros: null); Visual FoxPro `I` and `O`
//!   an int and a float; any other type its text. A value that does not parse fails the run
//!   naming the `.dbf`, the record and the field. Deleted records are skipped (their
//!   count is logged).
//! - Text encoding of the `.dbf`: the `encoding` parameter; else the `.cpg` file (`UTF-8`,
//!   `1252`, `932`, `SJIS`, `ISO-8859-1`...; a name sluice does not know fails the run);
//!   else the language driver byte of the `.dbf` header (0x57 ANSI and 0x03: windows-1252,
//!   0x13 and 0x7B: Shift_JIS, 0x01: code page 437, 0x02: 850, ... as GDAL maps them).
//!   With none of these (or a code page sluice cannot decode, logged), text is read as
//!   UTF-8, and a value that is not valid UTF-8 as windows-1252 (Latin-1's superset), value
//!   by value, with a log line naming the first such value. Bytes that are not valid in a
//!   declared encoding are replaced with U+FFFD, with a log line naming the first.
//! - CRS: the `crs` parameter; else the `.prj` file: a WKT with an EPSG authority, or the
//!   name of a CRS sluice recognises (ESRI's `GCS_WGS_1984`,
//!   `WGS_1984_Web_Mercator_Auxiliary_Sphere`, `WGS_1984_UTM_Zone_33N`,
//!   `RGF_1993_Lambert_93`, `JGD_2011_Japan_Zone_9`, `British_National_Grid`,
//!   `ETRS_1989_UTM_Zone_32N`, ... and the EPSG names of the same). A `.prj` naming
//!   anything else is logged as a warning and the geometries carry no CRS: never a guess.
//!   No `.prj`: no CRS.

mod dbf;
mod prj;
mod shp;

pub(crate) use dbf::{Codec, END_OF_FILE, date_text, write_field, write_fixed};
pub(crate) use shp::{
    Bounds, Dim, HEADER_LEN as SHP_HEADER_LEN, Kind, M_NO_DATA_WRITTEN, signed_area2, type_code,
    write_header,
};

use std::io::{BufReader, Read};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::expr::Type;
use sluice_runtime::input::{FileOut, FileReader, FileSource, SharedCache};
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext};
use sluice_runtime::store;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    Geometry, NodeContext, NodeImpl, Schema,
};

use super::file_input::{files_param, peekable};
use dbf::Decoded;

/// Parameters of `shapefile_reader`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShapefileReaderParams {
    /// A `.shp` file, a folder (its `.shp` files), a glob (`data/*.shp`), a zip archive
    /// (every `.shp` in it) or zip members (`data/x.zip!/a.shp`, `data/x.zip!/*.shp`).
    /// The `.shx` and `.dbf` beside each `.shp` are required.
    pub path: String,
    /// The text encoding of the `.dbf` (`UTF-8`, `Shift_JIS`, `latin1`, `windows-1252`,
    /// `932`, `cp437`...). Default: the `.cpg` file, else the `.dbf` language driver, else
    /// UTF-8 with windows-1252 for values that are not UTF-8.
    #[serde(default)]
    pub encoding: Option<String>,
    /// The CRS of the coordinates: an EPSG code (`2154`, `"EPSG:2154"`) or a WKT naming
    /// one. Default: the `.prj` file's; none when it has none or names an unknown CRS.
    #[serde(default, deserialize_with = "crate::crs::code")]
    #[schemars(with = "Option<crate::crs::CrsParam>")]
    pub crs: Option<u32>,
    /// Most files read at once when `path` names several (default: the run's read-ahead,
    /// which shrinks under memory pressure; it also caps this value).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub read_ahead: Option<usize>,
    /// File name endings read from a folder, glob or archive (without the dot, any case).
    /// Default: `shp`.
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
}

/// The `shapefile_reader` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "shapefile_reader",
    ActionKind::Source,
    "Reads ESRI Shapefiles (.shp/.shx/.dbf, with .prj and .cpg; files, folders, globs, zip archives).",
    schema_of::<ShapefileReaderParams>,
    build,
)
.shape(shape)
.outputs(&[DEFAULT_PORT])
.reads_from("path")
.sliced("files by index; one shapefile is read whole by the first task")
.example("path: data/parcels.shp\n");

/// How many files validation reads the `.dbf` header of.
const SHAPE_FILES: usize = 8;

/// The attributes from the `.dbf` headers of the first local files (their field names and
/// types, read at validation), and the CRS of the parameter or the `.prj`; unread (open)
/// when a file cannot be peeked at (another store, a zip member) or its header is bad (the
/// run reports that).
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: ShapefileReaderParams = ctx.params()?;
    let unread = Ok(vec![
        Shape::unread(ctx.node_id).with_geometry(GeometryShape::Present { crs: p.crs }),
    ]);
    let encoding = p.encoding.as_deref().and_then(Codec::by_name);
    let files = files_param(p.path, p.read_ahead, p.extensions, &["shp"], false)?;
    let locations = files.locations();
    let mut merged: Option<Shape> = None;
    for shp in locations.iter().take(SHAPE_FILES) {
        let Some((fields, prj)) = header_fields(shp, encoding.as_ref()) else {
            return unread;
        };
        let crs = p.crs.or(prj);
        let attributes = fields.into_iter().map(|f| {
            let ty = match f.kind {
                b'C' => Type::String,
                b'L' => Type::Bool,
                b'D' => Type::Date,
                b'O' => Type::Float,
                b'I' => Type::Int,
                // An integer, or a float where a value is not one.
                b'N' | b'F' if f.decimals == 0 => Type::Any,
                b'N' | b'F' => Type::Float,
                _ => Type::String,
            };
            (f.name, ty)
        });
        let shape = Shape::closed(attributes).with_geometry(GeometryShape::Present { crs });
        merged = Some(match merged {
            None => shape,
            Some(before) => before.merge(&shape),
        });
    }
    let Some(mut shape) = merged else {
        return unread;
    };
    shape.open |= locations.len() > SHAPE_FILES;
    Ok(vec![shape])
}

/// The fields of the `.dbf` beside a local `.shp`, decoded as the run would decode them,
/// and the EPSG code its `.prj` names; `None` when they cannot be read now.
fn header_fields(shp: &str, encoding: Option<&Codec>) -> Option<(Vec<dbf::Field>, Option<u32>)> {
    if !peekable(shp) {
        return None;
    }
    let dbf_at = sidecar(shp, "dbf").ok()??;
    let mut dbf = store::open_read(&dbf_at).ok()?;
    let mut fixed = [0u8; dbf::HEADER_LEN];
    dbf.read_exact(&mut fixed).ok()?;
    let (_, header_len, record_len, ldid) = dbf::read_fixed(&fixed).ok()?;
    let mut rest = vec![0u8; header_len - dbf::HEADER_LEN];
    dbf.read_exact(&mut rest).ok()?;
    let cpg = sidecar(shp, "cpg")
        .ok()
        .flatten()
        .and_then(|at| small_text(&at).ok());
    let codec = match (encoding, cpg) {
        (Some(c), _) => c.clone(),
        (None, Some(name)) => Codec::by_name(&name)?,
        (None, None) => Codec::ldid_code_page(ldid)
            .and_then(Codec::by_code_page)
            .unwrap_or_else(Codec::guess),
    };
    let fields = dbf::read_fields(&rest, record_len, &codec).ok()?;
    let prj = sidecar(shp, "prj")
        .ok()
        .flatten()
        .and_then(|at| small_text(&at).ok())
        .and_then(|text| prj::epsg_of(&text));
    Some((fields, prj))
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: ShapefileReaderParams = ctx.params()?;
    let encoding = match &p.encoding {
        None => None,
        Some(name) => Some(Codec::by_name(name).ok_or_else(|| {
            ActionError::param(
                "encoding",
                format!(
                    "\"{name}\" is not an encoding sluice knows (UTF-8, Shift_JIS, latin1, \
                     windows-1252, ISO-8859-15, GBK, EUC-KR, Big5, cp437, cp850, a code page \
                     number...)"
                ),
            )
        })?),
    };
    let files = files_param(p.path, p.read_ahead, p.extensions, &["shp"], false)?;
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(
        FileReader::new(
            files,
            ShapefileReader {
                encoding,
                crs: p.crs,
                schemas: SharedCache::new(),
            },
        ),
    ))))
}

pub(crate) struct ShapefileReader {
    encoding: Option<Codec>,
    crs: Option<u32>,
    schemas: SharedCache<Vec<String>, Arc<Schema>>,
}

/// Bytes read from the files at a time.
const BUFFER: usize = 256 * 1024;
/// Most bytes of a `.prj` or `.cpg` read.
const SMALL_FILE: u64 = 1 << 20;

/// A located data error.
fn bad(at: impl Into<String>, message: impl Into<String>) -> ActionError {
    ActionError::data(Some(at.into()), message)
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` when the file ends first.
fn fill(r: &mut impl Read, buf: &mut [u8], location: &str) -> Result<bool, ActionError> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => return Ok(false),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ActionError::io(format!("reading {location}"), e)),
        }
    }
    Ok(true)
}

/// The file name part of a location (after the last `/`).
fn file_name(location: &str) -> &str {
    location.rsplit('/').next().unwrap_or(location)
}

/// The location of a sidecar of `shp` (same base name, extension `ext` in any case), if
/// there is one: the lower- and upper-case names are tried first, then the folder is
/// listed.
fn sidecar(shp: &str, ext: &str) -> Result<Option<String>, ActionError> {
    let name = file_name(shp);
    let stem = match name.rfind('.') {
        Some(i) => &name[..i],
        None => name,
    };
    let folder = &shp[..shp.len() - name.len()];
    for candidate in [ext.to_ascii_lowercase(), ext.to_ascii_uppercase()] {
        let location = format!("{folder}{stem}.{candidate}");
        match store::list(&location) {
            Ok(found) if found.iter().any(|f| f.location == location) => {
                return Ok(Some(location));
            }
            _ => {}
        }
    }
    let listing = if folder.is_empty() {
        store::list(".")
    } else {
        store::list(folder)
    };
    let Ok(entries) = listing else {
        return Ok(None);
    };
    Ok(entries.into_iter().map(|e| e.location).find(|l| {
        file_name(l)
            .rsplit_once('.')
            .is_some_and(|(s, e)| s == stem && e.eq_ignore_ascii_case(ext))
    }))
}

/// A small text file (`.prj`, `.cpg`), whole.
fn small_text(location: &str) -> Result<String, ActionError> {
    let mut bytes = Vec::new();
    store::open_read(location)?
        .take(SMALL_FILE)
        .read_to_end(&mut bytes)
        .map_err(|e| ActionError::io(format!("reading {location}"), e))?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_string())
}

impl FileSource for ShapefileReader {
    fn read_file(
        &self,
        location: &str,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        let shx_at = sidecar(location, "shx")?.ok_or_else(|| {
            bad(
                location,
                "no .shx index beside it (sluice needs the index to check every record's \
                 offset and the record count)",
            )
        })?;
        let dbf_at = sidecar(location, "dbf")?
            .ok_or_else(|| bad(location, "no .dbf attribute table beside it"))?;
        let crs = match self.crs {
            Some(c) => Some(c),
            None => match sidecar(location, "prj")? {
                None => None,
                Some(prj_at) => {
                    let text = small_text(&prj_at)?;
                    let code = prj::epsg_of(&text);
                    if code.is_none() {
                        ctx.log(format!(
                            "warning: {prj_at}: a CRS sluice does not recognise, the geometries \
                             get no CRS (give the crs parameter): {}",
                            text.chars().take(120).collect::<String>()
                        ));
                    }
                    code
                }
            },
        };
        let cpg = match &self.encoding {
            Some(_) => None,
            None => sidecar(location, "cpg")?
                .map(|at| small_text(&at).map(|t| (at, t)))
                .transpose()?,
        };
        let mut file = ShapeFile {
            shp: BufReader::with_capacity(BUFFER, store::open_read(location)?),
            shx: BufReader::with_capacity(BUFFER / 4, store::open_read(&shx_at)?),
            dbf: BufReader::with_capacity(BUFFER, store::open_read(&dbf_at)?),
            shp_at: location,
            shx_at: &shx_at,
            dbf_at: &dbf_at,
        };
        self.read(&mut file, crs, cpg, ctx, &mut |f| out.emit(f))
    }
}

/// The three open files of one shapefile, and their names for messages.
struct ShapeFile<'a, R> {
    shp: R,
    shx: R,
    dbf: R,
    shp_at: &'a str,
    shx_at: &'a str,
    dbf_at: &'a str,
}

impl ShapefileReader {
    /// The codec of a `.dbf`: the parameter, the `.cpg`, the language driver, the guess.
    fn codec(
        &self,
        cpg: Option<(String, String)>,
        ldid: u8,
        dbf_at: &str,
        ctx: &NodeContext,
    ) -> Result<Codec, ActionError> {
        if let Some(c) = &self.encoding {
            return Ok(c.clone());
        }
        if let Some((at, name)) = cpg {
            return Codec::by_name(&name).ok_or_else(|| {
                bad(
                    at,
                    format!(
                        "names the encoding \"{name}\", which sluice does not know; give the \
                         encoding parameter"
                    ),
                )
            });
        }
        if ldid == 0 {
            return Ok(Codec::guess());
        }
        match Codec::ldid_code_page(ldid).map(|cp| (cp, Codec::by_code_page(cp))) {
            Some((_, Some(c))) => Ok(c),
            found => {
                let what = match found {
                    Some((cp, _)) => format!("code page {cp}, which sluice cannot decode"),
                    None => "an id sluice does not know".to_string(),
                };
                ctx.log(format!(
                    "warning: {dbf_at}: language driver 0x{ldid:02X} is {what}; text is read as \
                     UTF-8 (windows-1252 where not UTF-8); give the encoding parameter"
                ));
                Ok(Codec::guess())
            }
        }
    }

    fn read<R: Read>(
        &self,
        f: &mut ShapeFile<'_, R>,
        crs: Option<u32>,
        cpg: Option<(String, String)>,
        ctx: &NodeContext,
        emit: &mut dyn FnMut(Feature) -> Result<(), ActionError>,
    ) -> Result<(), ActionError> {
        // Headers: .shp, .shx, .dbf.
        let mut head = [0u8; shp::HEADER_LEN];
        if !fill(&mut f.shp, &mut head, f.shp_at)? {
            return Err(bad(f.shp_at, "truncated: shorter than the 100-byte header"));
        }
        let shp_header = shp::read_header(&head).map_err(|m| bad(f.shp_at, m))?;
        if !fill(&mut f.shx, &mut head, f.shx_at)? {
            return Err(bad(f.shx_at, "truncated: shorter than the 100-byte header"));
        }
        let shx_header = shp::read_header(&head).map_err(|m| bad(f.shx_at, m))?;
        let index_bytes = shx_header.file_len - shp::HEADER_LEN as u64;
        if !index_bytes.is_multiple_of(8) {
            return Err(bad(
                f.shx_at,
                format!(
                    "the header gives a length of {} bytes, not 100 plus 8 per record",
                    shx_header.file_len
                ),
            ));
        }
        let count = index_bytes / 8;
        let mut fixed = [0u8; dbf::HEADER_LEN];
        if !fill(&mut f.dbf, &mut fixed, f.dbf_at)? {
            return Err(bad(f.dbf_at, "truncated: shorter than the 32-byte header"));
        }
        let (records, header_len, record_len, ldid) =
            dbf::read_fixed(&fixed).map_err(|m| bad(f.dbf_at, m))?;
        if u64::from(records) != count {
            let which = if u64::from(records) < count {
                "fewer"
            } else {
                "more"
            };
            return Err(bad(
                f.dbf_at,
                format!(
                    "the .dbf has {records} records, {which} than the {count} shapes of {} \
                     (its .shx index)",
                    f.shp_at
                ),
            ));
        }
        let codec = self.codec(cpg, ldid, f.dbf_at, ctx)?;
        let mut rest = vec![0u8; header_len - dbf::HEADER_LEN];
        if !fill(&mut f.dbf, &mut rest, f.dbf_at)? {
            return Err(bad(f.dbf_at, "truncated: the file ends in its header"));
        }
        let fields = dbf::read_fields(&rest, record_len, &codec).map_err(|m| bad(f.dbf_at, m))?;
        let names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
        let schema = self.schemas.get_or_insert_with(names.clone(), || {
            Schema::new(names.iter().map(String::as_str))
        });

        let mut pos = shp::HEADER_LEN as u64;
        let mut entry = [0u8; 8];
        let mut content = Vec::new();
        let mut record = vec![0u8; record_len];
        let mut deleted = 0u64;
        let mut decoded = Decoded::Exact;
        let mut first_odd: Option<String> = None;
        for i in 1..=count {
            if i.is_multiple_of(8192) {
                ctx.check_cancelled()?;
            }
            let at_shp = || format!("{}: record {i}", f.shp_at);
            // The index entry: where the record is and how long.
            if !fill(&mut f.shx, &mut entry, f.shx_at)? {
                return Err(bad(
                    f.shx_at,
                    format!("truncated: the index ends at entry {i} of {count}"),
                ));
            }
            let offset =
                i64::from(i32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]])) * 2;
            let indexed_len =
                i64::from(i32::from_be_bytes([entry[4], entry[5], entry[6], entry[7]])) * 2;
            let offset = u64::try_from(offset)
                .map_err(|_| bad(format!("{}: entry {i}", f.shx_at), "a negative offset"))?;
            if offset < pos {
                return Err(bad(
                    format!("{}: entry {i}", f.shx_at),
                    format!(
                        "puts record {i} at byte {offset}, inside the header or the previous record (which ends at {pos})"
                    ),
                ));
            }
            if offset > pos {
                let gap = offset - pos;
                let skipped = std::io::copy(&mut (&mut f.shp).take(gap), &mut std::io::sink())
                    .map_err(|e| ActionError::io(format!("reading {}", f.shp_at), e))?;
                if skipped < gap {
                    return Err(bad(at_shp(), "truncated: the file ends before the record"));
                }
                pos = offset;
            }
            // The record header (big-endian number and content length in 16-bit words).
            if !fill(&mut f.shp, &mut entry, f.shp_at)? {
                return Err(bad(
                    at_shp(),
                    "truncated: the file ends in the record header",
                ));
            }
            let len = i64::from(i32::from_be_bytes([entry[4], entry[5], entry[6], entry[7]])) * 2;
            let len = u64::try_from(len)
                .map_err(|_| bad(at_shp(), format!("a negative content length ({len} bytes)")))?;
            if i64::try_from(len).ok() != Some(indexed_len) {
                return Err(bad(
                    at_shp(),
                    format!(
                        "the record header gives {len} bytes of content, the .shx index {indexed_len}"
                    ),
                ));
            }
            if pos + 8 + len > shp_header.file_len {
                return Err(bad(
                    at_shp(),
                    format!(
                        "content of {len} bytes at byte {} runs past the end of the file ({} bytes, as its header says)",
                        pos + 8,
                        shp_header.file_len
                    ),
                ));
            }
            content.clear();
            let got = (&mut f.shp)
                .take(len)
                .read_to_end(&mut content)
                .map_err(|e| ActionError::io(format!("reading {}", f.shp_at), e))?;
            if (got as u64) < len {
                return Err(bad(
                    at_shp(),
                    format!("truncated: the file ends {got} bytes into {len} bytes of content"),
                ));
            }
            pos += 8 + len;
            let shape = shp::parse_record(&content).map_err(|m| bad(at_shp(), m))?;

            // The attributes.
            if !fill(&mut f.dbf, &mut record, f.dbf_at)? {
                return Err(bad(
                    format!("{}: record {i}", f.dbf_at),
                    format!("truncated: the file ends in record {i} of {records}"),
                ));
            }
            if record[0] == b'*' {
                deleted += 1;
                continue;
            }
            let mut values = Vec::with_capacity(fields.len());
            let mut at = 1;
            for field in &fields {
                let raw = &record[at..at + field.width];
                at += field.width;
                let before = decoded;
                let v = dbf::value(field, raw, &codec, &mut decoded).map_err(|m| {
                    bad(
                        format!("{}: record {i}", f.dbf_at),
                        format!("field \"{}\": {m}", field.name),
                    )
                })?;
                if before == Decoded::Exact && decoded != Decoded::Exact {
                    first_odd = Some(format!("record {i}, field \"{}\"", field.name));
                }
                values.push(v);
            }
            let geometry = match shape {
                None => None,
                Some((g, ords)) => Some(
                    Geometry::in_crs(g, crs)
                        .with_ordinates(ords)
                        .map_err(|e| bad(at_shp(), e.to_string()))?,
                ),
            };
            emit(Feature::new(0, schema.clone(), values).with_geometry(geometry))?;
        }
        if deleted > 0 {
            ctx.log(format!("{}: skipped {deleted} deleted records", f.dbf_at));
        }
        if let Some(first) = first_odd {
            ctx.log(match decoded {
                Decoded::Latin => format!(
                    "warning: {}: no encoding declared (.cpg or language driver) and some text \
                     is not UTF-8: read as windows-1252 (first at {first}); give the encoding \
                     parameter to be sure",
                    f.dbf_at
                ),
                _ => format!(
                    "warning: {}: some text is not valid {}: bad bytes replaced with U+FFFD \
                     (first at {first})",
                    f.dbf_at,
                    codec.name()
                ),
            });
        }
        Ok(())
    }
}

/// Runs the reader with `params` outside the executor (tests): its features.
#[cfg(test)]
pub(crate) fn read_params(params: serde_json::Value) -> Result<Vec<Feature>, ActionError> {
    let mut source = sluice_runtime::testing::build_source(&SPEC, params)?;
    let mut out = sluice_runtime::Emitter::for_outputs(SPEC.outputs);
    source.run(&NodeContext::standalone("t"), &mut out)?;
    Ok(out.into_buffers().pop().unwrap_or_default())
}

/// Reads one shapefile from byte slices (tests and fuzzing): `.shp`, `.shx`, `.dbf`.
#[cfg(test)]
pub(crate) fn read_bytes(shp: &[u8], shx: &[u8], dbf: &[u8]) -> Result<Vec<Feature>, ActionError> {
    let reader = ShapefileReader {
        encoding: None,
        crs: None,
        schemas: SharedCache::new(),
    };
    let mut file = ShapeFile {
        shp,
        shx,
        dbf,
        shp_at: "t.shp",
        shx_at: "t.shx",
        dbf_at: "t.dbf",
    };
    let ctx = NodeContext::standalone("t");
    let mut features = Vec::new();
    reader.read(&mut file, None, None, &ctx, &mut |f| {
        features.push(f);
        Ok(())
    })?;
    Ok(features)
}

#[cfg(test)]
mod tests;
