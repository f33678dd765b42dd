//! The `.shp` / `.shx` formats: the 100-byte header both files share, and one shape record's
//! content turned into a geometry (and back, for `shapefile_writer`).
//!
//! Everything here works on byte slices already read: counts found in the data are checked
//! against the bytes actually there before anything is allocated, so a corrupt file is an
//! error message, never a panic or a huge allocation.

use geo_types::{Coord, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};
use sluice_runtime::feature::Ordinates;

/// The file code every `.shp` and `.shx` starts with.
pub(crate) const FILE_CODE: i32 = 9994;
/// The version the header carries.
pub(crate) const VERSION: i32 = 1000;
/// Bytes of the header of `.shp` and `.shx`.
pub(crate) const HEADER_LEN: usize = 100;
/// M values below this are "no data" (the specification's -10^38).
pub(crate) const M_NO_DATA: f64 = -1e38;
/// What a writer stores for a missing (NaN) M value.
pub(crate) const M_NO_DATA_WRITTEN: f64 = -1e39;

/// The shape types of the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Points (1, 11, 21).
    Point,
    /// Polylines (3, 13, 23).
    PolyLine,
    /// Polygons (5, 15, 25).
    Polygon,
    /// Multipoints (8, 18, 28).
    MultiPoint,
}

/// Which extra ordinates a shape type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dim {
    /// X and Y.
    Xy,
    /// X, Y and M.
    M,
    /// X, Y, Z and (optionally) M.
    Z,
}

/// A shape type code split into kind and dimension; `None` for the null shape (0).
pub(crate) fn shape_type(code: i32) -> Result<Option<(Kind, Dim)>, String> {
    let kind = |k| Ok(Some(k));
    match code {
        0 => Ok(None),
        1 => kind((Kind::Point, Dim::Xy)),
        3 => kind((Kind::PolyLine, Dim::Xy)),
        5 => kind((Kind::Polygon, Dim::Xy)),
        8 => kind((Kind::MultiPoint, Dim::Xy)),
        11 => kind((Kind::Point, Dim::Z)),
        13 => kind((Kind::PolyLine, Dim::Z)),
        15 => kind((Kind::Polygon, Dim::Z)),
        18 => kind((Kind::MultiPoint, Dim::Z)),
        21 => kind((Kind::Point, Dim::M)),
        23 => kind((Kind::PolyLine, Dim::M)),
        25 => kind((Kind::Polygon, Dim::M)),
        28 => kind((Kind::MultiPoint, Dim::M)),
        31 => Err("MultiPatch shapes (type 31) are not supported".into()),
        other => Err(format!("unknown shape type {other}")),
    }
}

/// The code of a kind and dimension.
pub(crate) fn type_code(kind: Kind, dim: Dim) -> i32 {
    let base = match kind {
        Kind::Point => 1,
        Kind::PolyLine => 3,
        Kind::Polygon => 5,
        Kind::MultiPoint => 8,
    };
    base + match dim {
        Dim::Xy => 0,
        Dim::Z => 10,
        Dim::M => 20,
    }
}

/// What the header of a `.shp` or `.shx` says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Header {
    /// The file's length in bytes.
    pub file_len: u64,
    /// The file's shape type code.
    pub shape_type: i32,
}

/// Reads a 100-byte header.
pub(crate) fn read_header(b: &[u8; HEADER_LEN]) -> Result<Header, String> {
    let code = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if code != FILE_CODE {
        return Err(format!(
            "not a shapefile: the file code is {code}, expected {FILE_CODE}"
        ));
    }
    let words = i32::from_be_bytes([b[24], b[25], b[26], b[27]]);
    if words < (HEADER_LEN / 2) as i32 {
        return Err(format!(
            "the header gives a file length of {words} 16-bit words, less than the header itself"
        ));
    }
    let code = i32::from_le_bytes([b[32], b[33], b[34], b[35]]);
    shape_type(code)?;
    Ok(Header {
        file_len: words as u64 * 2,
        shape_type: code,
    })
}

/// Bounds written in a header: x, y, z and m ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    /// xmin, ymin, xmax, ymax.
    pub xy: [f64; 4],
    /// zmin, zmax.
    pub z: [f64; 2],
    /// mmin, mmax.
    pub m: [f64; 2],
}

/// Writes a 100-byte header.
pub(crate) fn write_header(file_len: u64, shape_type: i32, b: &Bounds) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&FILE_CODE.to_be_bytes());
    // The caller checked the length fits (the 2 GB limit).
    let words = i32::try_from(file_len / 2).unwrap_or(i32::MAX);
    h[24..28].copy_from_slice(&words.to_be_bytes());
    h[28..32].copy_from_slice(&VERSION.to_le_bytes());
    h[32..36].copy_from_slice(&shape_type.to_le_bytes());
    let values = [
        b.xy[0], b.xy[1], b.xy[2], b.xy[3], b.z[0], b.z[1], b.m[0], b.m[1],
    ];
    for (i, v) in values.iter().enumerate() {
        h[36 + 8 * i..44 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    h
}

/// A little-endian cursor over a record's content; every read is checked.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.left() {
            return Err(format!(
                "the record ends before its {what} ({n} bytes needed, {} left)",
                self.left()
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn i32(&mut self, what: &str) -> Result<i32, String> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self, what: &str) -> Result<f64, String> {
        let b = self.take(8, what)?;
        Ok(le_f64(b))
    }

    /// A count that must be at least 0 and fit in what is left at `each` bytes apiece.
    fn count(&mut self, what: &str, each: usize) -> Result<usize, String> {
        let n = self.i32(what)?;
        let n = usize::try_from(n).map_err(|_| format!("negative {what} ({n})"))?;
        if n.saturating_mul(each) > self.left() {
            return Err(format!(
                "{what} {n} does not fit in the record ({} bytes left)",
                self.left()
            ));
        }
        Ok(n)
    }

    /// `n` f64 values.
    fn f64s(&mut self, n: usize, what: &str) -> Result<Vec<f64>, String> {
        let bytes = self.take(n.saturating_mul(8), what)?;
        Ok(bytes.chunks_exact(8).map(le_f64).collect())
    }
}

fn le_f64(b: &[u8]) -> f64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    f64::from_le_bytes(a)
}

/// M values with "no data" as NaN.
fn m_values(mut m: Vec<f64>) -> Vec<f64> {
    for v in &mut m {
        if *v < M_NO_DATA {
            *v = f64::NAN;
        }
    }
    m
}

/// One part (a ring or a line) with its ordinates.
struct Part {
    coords: Vec<Coord<f64>>,
    z: Option<Vec<f64>>,
    m: Option<Vec<f64>>,
}

/// The geometry of one record's content: `None` for a null shape.
pub(crate) fn parse_record(
    content: &[u8],
) -> Result<Option<(geo_types::Geometry<f64>, Ordinates)>, String> {
    let mut c = Cursor {
        data: content,
        pos: 0,
    };
    let code = c.i32("shape type")?;
    let Some((kind, dim)) = shape_type(code)? else {
        return Ok(None);
    };
    if kind == Kind::Point {
        let x = c.f64("x")?;
        let y = c.f64("y")?;
        let mut ords = Ordinates::default();
        match dim {
            Dim::Xy => {}
            Dim::M => ords.m = Some(m_values(vec![c.f64("m")?])),
            Dim::Z => {
                ords.z = Some(vec![c.f64("z")?]);
                if c.left() >= 8 {
                    ords.m = Some(m_values(vec![c.f64("m")?]));
                }
            }
        }
        return Ok(Some((Point::new(x, y).into(), ords)));
    }
    c.take(32, "bounding box")?;
    let (parts, n) = if kind == Kind::MultiPoint {
        (vec![0usize], c.count("point count", 16)?)
    } else {
        let parts = c.count("part count", 4)?;
        let n = c.count("point count", 16)?;
        if parts.saturating_mul(4).saturating_add(n.saturating_mul(16)) > c.left() {
            return Err(format!(
                "{parts} parts and {n} points do not fit in the record ({} bytes left)",
                c.left()
            ));
        }
        let mut starts = Vec::with_capacity(parts);
        for i in 0..parts {
            let s = c.i32("part index")?;
            let s = usize::try_from(s)
                .ok()
                .filter(|s| *s <= n && starts.last().is_none_or(|p| s >= p))
                .ok_or_else(|| {
                    format!("part {i} starts at point {s}, outside the {n} points or before the previous part")
                })?;
            if i == 0 && s != 0 {
                return Err(format!("the first part starts at point {s}, not 0"));
            }
            starts.push(s);
        }
        (starts, n)
    };
    let xy = c.f64s(n * 2, "points")?;
    let coords: Vec<Coord<f64>> = xy
        .chunks_exact(2)
        .map(|p| Coord { x: p[0], y: p[1] })
        .collect();
    let mut z = None;
    let mut m = None;
    if dim == Dim::Z {
        c.take(16, "z range")?;
        z = Some(c.f64s(n, "z values")?);
    }
    // M is optional in Z shapes (and tolerated missing in M shapes): present when the
    // record holds it.
    if dim != Dim::Xy && c.left() >= 16 + 8 * n {
        c.take(16, "m range")?;
        m = Some(m_values(c.f64s(n, "m values")?));
    }
    if n == 0 {
        // No points: no geometry (as a null shape).
        return Ok(None);
    }
    if kind == Kind::MultiPoint {
        let g = MultiPoint(coords.into_iter().map(Point::from).collect());
        return Ok(Some((g.into(), Ordinates { z, m })));
    }
    let ends: Vec<usize> = parts.iter().skip(1).copied().chain([n]).collect();
    let split: Vec<Part> = parts
        .iter()
        .zip(ends)
        .filter(|(s, e)| e > s)
        .map(|(&s, e)| Part {
            coords: coords[s..e].to_vec(),
            z: z.as_ref().map(|z| z[s..e].to_vec()),
            m: m.as_ref().map(|m| m[s..e].to_vec()),
        })
        .collect();
    let has = (z.is_some(), m.is_some());
    Ok(Some(match kind {
        Kind::PolyLine => lines(split, has),
        _ => polygons(split, has),
    }))
}

/// Concatenated ordinates of parts, in order.
fn join(parts: &[&Part], (has_z, has_m): (bool, bool)) -> Ordinates {
    let cat = |f: fn(&Part) -> Option<&Vec<f64>>| {
        Some(
            parts
                .iter()
                .flat_map(|p| f(p).map(|v| v.as_slice()).unwrap_or_default())
                .copied()
                .collect(),
        )
    };
    Ordinates {
        z: if has_z { cat(|p| p.z.as_ref()) } else { None },
        m: if has_m { cat(|p| p.m.as_ref()) } else { None },
    }
}

/// One part: a LineString; several: a MultiLineString.
fn lines(parts: Vec<Part>, has: (bool, bool)) -> (geo_types::Geometry<f64>, Ordinates) {
    let refs: Vec<&Part> = parts.iter().collect();
    let ords = join(&refs, has);
    let mut ls: Vec<LineString<f64>> = parts.into_iter().map(|p| LineString(p.coords)).collect();
    if ls.len() == 1 {
        (ls.remove(0).into(), ords)
    } else {
        (MultiLineString(ls).into(), ords)
    }
}

/// Twice the signed area of a ring (positive: counter-clockwise).
pub(crate) fn signed_area2(c: &[Coord<f64>]) -> f64 {
    if c.len() < 3 {
        return 0.0;
    }
    let mut s = 0.0;
    for w in c.windows(2) {
        s += w[0].x * w[1].y - w[1].x * w[0].y;
    }
    let (last, first) = (c[c.len() - 1], c[0]);
    s + last.x * first.y - first.x * last.y
}

/// Whether `p` is inside the ring (even-odd rule).
fn inside(p: Coord<f64>, ring: &[Coord<f64>]) -> bool {
    let mut inside = false;
    let n = ring.len();
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let (a, b) = (ring[i], ring[j]);
        if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn bbox(c: &[Coord<f64>]) -> [f64; 4] {
    c.iter().fold(
        [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ],
        |b, p| [b[0].min(p.x), b[1].min(p.y), b[2].max(p.x), b[3].max(p.y)],
    )
}

/// Closes a ring that is not closed (its ordinates too), so the ring's coordinates and
/// ordinates stay aligned when geo-types would close it.
fn close(p: &mut Part) {
    if let (Some(&first), Some(&last)) = (p.coords.first(), p.coords.last())
        && first != last
    {
        p.coords.push(first);
        for v in [&mut p.z, &mut p.m].into_iter().flatten() {
            if let Some(&f) = v.first() {
                v.push(f);
            }
        }
    }
}

/// Rings grouped into polygons: clockwise rings are outer rings, counter-clockwise rings
/// holes of the smallest outer ring containing them (a hole inside none is a polygon of
/// its own); with no clockwise ring at all, every ring is an outer ring.
fn polygons(mut rings: Vec<Part>, has: (bool, bool)) -> (geo_types::Geometry<f64>, Ordinates) {
    for r in &mut rings {
        close(r);
    }
    let areas: Vec<f64> = rings.iter().map(|r| signed_area2(&r.coords)).collect();
    let any_outer = areas.iter().any(|a| *a < 0.0);
    let is_outer: Vec<bool> = areas.iter().map(|a| !any_outer || *a <= 0.0).collect();
    let boxes: Vec<[f64; 4]> = rings.iter().map(|r| bbox(&r.coords)).collect();
    // For each polygon (one per outer ring, in file order): its ring indices.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: Vec<Option<usize>> = vec![None; rings.len()];
    for (i, outer) in is_outer.iter().enumerate() {
        if *outer {
            group_of[i] = Some(groups.len());
            groups.push(vec![i]);
        }
    }
    for i in (0..rings.len()).filter(|i| !is_outer[*i]) {
        let probe = rings[i].coords[0];
        let hb = boxes[i];
        let owner = (0..rings.len())
            .filter(|o| is_outer[*o])
            .filter(|o| {
                let b = boxes[*o];
                b[0] <= hb[0] && b[1] <= hb[1] && b[2] >= hb[2] && b[3] >= hb[3]
            })
            .filter(|o| inside(probe, &rings[*o].coords) || contains_ring(&rings[*o], &rings[i]))
            .min_by(|a, b| areas[*a].abs().total_cmp(&areas[*b].abs()));
        match owner.and_then(|o| group_of[o]) {
            Some(g) => groups[g].push(i),
            None => groups.push(vec![i]),
        }
    }
    let mut order: Vec<&Part> = Vec::with_capacity(rings.len());
    for g in &groups {
        for &i in g {
            order.push(&rings[i]);
        }
    }
    let ords = join(&order, has);
    let mut polys: Vec<Polygon<f64>> = groups
        .iter()
        .map(|g| {
            let ring = |i: usize| LineString(rings[i].coords.clone());
            Polygon::new(ring(g[0]), g[1..].iter().map(|&i| ring(i)).collect())
        })
        .collect();
    if polys.len() == 1 {
        (polys.remove(0).into(), ords)
    } else {
        (MultiPolygon(polys).into(), ords)
    }
}

/// Whether some vertex of `hole` is strictly inside `outer` (the first vertex may lie on
/// the outer ring).
fn contains_ring(outer: &Part, hole: &Part) -> bool {
    hole.coords
        .iter()
        .skip(1)
        .any(|p| inside(*p, &outer.coords))
}
