//! Well-known binary (WKB) geometry encoding, written by hand (about 300 lines, no crate).
//!
//! [`to_wkb`] writes little-endian ISO WKB: 2D, or with the ISO Z, M or ZM type codes
//! (1001…3007) when the geometry carries [`Ordinates`]. `geo-types` shapes that WKB has
//! no word for are written as their plain equivalent: a `Line` as a two-point `LineString`,
//! a `Rect` and a `Triangle` as a `Polygon` (so they read back as those).
//!
//! [`from_wkb`] reads either byte order, ISO Z/M/ZM type codes and PostGIS EWKB flags (Z, M,
//! SRID). Z and M values are kept as the geometry's [`Ordinates`] (a member of a collection
//! without them gets NaN there); the SRID is skipped. Bad input
//! gives a [`WkbError`], never a panic: every read is bounds-checked, counts are checked
//! against the bytes left before anything is allocated, and nesting of geometry collections
//! is limited to [`MAX_DEPTH`] levels.

use super::Ordinates;
use geo_types::{
    Coord, Geometry, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon,
    Point, Polygon,
};

/// How deeply geometry collections may nest before [`from_wkb`] gives up.
pub const MAX_DEPTH: usize = 64;

/// Why a WKB byte string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WkbError {
    /// The input ended before the geometry did.
    #[error("wkb truncated: needed {needed} more bytes at offset {offset}")]
    Truncated {
        /// Where the missing bytes should start.
        offset: usize,
        /// How many were needed.
        needed: usize,
    },
    /// The byte-order flag is neither 0 (big-endian) nor 1 (little-endian).
    #[error("wkb byte order flag {flag} at offset {offset} is not 0 or 1")]
    ByteOrder {
        /// Where the flag is.
        offset: usize,
        /// The flag read.
        flag: u8,
    },
    /// The geometry type code is not one this reader knows.
    #[error("unknown wkb geometry type {code} at offset {offset}")]
    UnknownType {
        /// Where the type code is.
        offset: usize,
        /// The code read.
        code: u32,
    },
    /// A multi-geometry holds a member of the wrong type.
    #[error("wkb {container} at offset {offset} holds a {member}")]
    WrongMember {
        /// Where the member starts.
        offset: usize,
        /// The container type (`multipoint`, ...).
        container: &'static str,
        /// The member's type.
        member: &'static str,
    },
    /// Geometry collections nest deeper than [`MAX_DEPTH`].
    #[error("wkb geometry collections nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The Z or M values read do not match the coordinates (a reader defect, reported
    /// rather than panicking).
    #[error("wkb ordinates: {0}")]
    Ordinates(String),
    /// Bytes are left after the geometry.
    #[error("{0} unexpected bytes after the wkb geometry")]
    TrailingBytes(usize),
}

// ─── writing ────────────────────────────────────────────────────────────────────────────────

const POINT: u32 = 1;
const LINESTRING: u32 = 2;
const POLYGON: u32 = 3;
const MULTIPOINT: u32 = 4;
const MULTILINESTRING: u32 = 5;
const MULTIPOLYGON: u32 = 6;
const COLLECTION: u32 = 7;

/// Appends `g` to `out` as little-endian ISO WKB, with its Z and M ordinates when it has
/// them.
pub fn to_wkb(g: &super::Geometry, out: &mut Vec<u8>) {
    let (z, m) = (g.z(), g.m());
    let dims = match (z.is_some(), m.is_some()) {
        (false, false) => 0,
        (true, false) => 1000,
        (false, true) => 2000,
        (true, true) => 3000,
    };
    Writer {
        out,
        z,
        m,
        dims,
        i: 0,
    }
    .geometry(&g.geom);
}

/// Appends a 2D shape to `out` as little-endian ISO WKB.
pub fn to_wkb_2d(g: &Geometry<f64>, out: &mut Vec<u8>) {
    Writer {
        out,
        z: None,
        m: None,
        dims: 0,
        i: 0,
    }
    .geometry(g);
}

/// Writes coordinates in order, taking the i-th Z and M value for the i-th coordinate.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    z: Option<&'a [f64]>,
    m: Option<&'a [f64]>,
    /// 0, 1000 (Z), 2000 (M) or 3000 (ZM), added to every type code.
    dims: u32,
    i: usize,
}

impl Writer<'_> {
    fn geometry(&mut self, g: &Geometry<f64>) {
        match g {
            Geometry::Point(p) => {
                self.header(POINT);
                self.coord(p.0);
            }
            Geometry::Line(l) => {
                self.header(LINESTRING);
                u32_le(self.out, 2);
                self.coord(l.start);
                self.coord(l.end);
            }
            Geometry::LineString(l) => {
                self.header(LINESTRING);
                self.coords(&l.0);
            }
            Geometry::Polygon(p) => self.polygon(p),
            Geometry::Rect(r) => self.polygon(&r.to_polygon()),
            Geometry::Triangle(t) => self.polygon(&t.to_polygon()),
            Geometry::MultiPoint(m) => {
                self.header(MULTIPOINT);
                u32_le(self.out, len32(m.0.len()));
                for p in &m.0 {
                    self.header(POINT);
                    self.coord(p.0);
                }
            }
            Geometry::MultiLineString(m) => {
                self.header(MULTILINESTRING);
                u32_le(self.out, len32(m.0.len()));
                for l in &m.0 {
                    self.header(LINESTRING);
                    self.coords(&l.0);
                }
            }
            Geometry::MultiPolygon(m) => {
                self.header(MULTIPOLYGON);
                u32_le(self.out, len32(m.0.len()));
                for p in &m.0 {
                    self.polygon(p);
                }
            }
            Geometry::GeometryCollection(c) => {
                self.header(COLLECTION);
                u32_le(self.out, len32(c.0.len()));
                for g in &c.0 {
                    self.geometry(g);
                }
            }
        }
    }

    fn header(&mut self, code: u32) {
        self.out.push(1);
        u32_le(self.out, code + self.dims);
    }

    fn coord(&mut self, c: Coord<f64>) {
        self.out.extend_from_slice(&c.x.to_le_bytes());
        self.out.extend_from_slice(&c.y.to_le_bytes());
        // The lengths were checked when the ordinates were set; NaN is a guard, not a value.
        for list in [self.z, self.m].into_iter().flatten() {
            let v = list.get(self.i).copied().unwrap_or(f64::NAN);
            self.out.extend_from_slice(&v.to_le_bytes());
        }
        self.i += 1;
    }

    fn coords(&mut self, cs: &[Coord<f64>]) {
        u32_le(self.out, len32(cs.len()));
        for c in cs {
            self.coord(*c);
        }
    }

    fn polygon(&mut self, p: &Polygon<f64>) {
        self.header(POLYGON);
        // An empty polygon (no exterior, no holes) has zero rings.
        if p.exterior().0.is_empty() && p.interiors().is_empty() {
            u32_le(self.out, 0);
            return;
        }
        u32_le(self.out, len32(1 + p.interiors().len()));
        self.coords(&p.exterior().0);
        for ring in p.interiors() {
            self.coords(&ring.0);
        }
    }
}

fn u32_le(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_le_bytes());
}

/// WKB counts are 32-bit; nothing in memory comes close, but saturate rather than wrap.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ─── reading ────────────────────────────────────────────────────────────────────────────────

/// Reads one WKB geometry that fills `bytes` exactly, with its Z and M ordinates (no CRS:
/// an EWKB SRID is skipped).
pub fn from_wkb(bytes: &[u8]) -> Result<super::Geometry, WkbError> {
    let mut r = Reader {
        bytes,
        pos: 0,
        coords: 0,
        z: None,
        m: None,
    };
    let g = r.geometry(0)?;
    match bytes.len() - r.pos {
        0 => {}
        n => return Err(WkbError::TrailingBytes(n)),
    }
    let ordinates = Ordinates { z: r.z, m: r.m };
    super::Geometry::new(g)
        .with_ordinates(ordinates)
        .map_err(|e| WkbError::Ordinates(e.to_string()))
}

/// Reads one WKB geometry that fills `bytes` exactly, as a 2D shape: Z and M are dropped.
/// For callers that only look at the outline (indexes, tests); readers use [`from_wkb`].
pub fn from_wkb_2d(bytes: &[u8]) -> Result<Geometry<f64>, WkbError> {
    from_wkb(bytes).map(|g| g.geom)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Coordinates read so far.
    coords: usize,
    /// Z values, started (with NaN for the coordinates before) at the first Z header.
    z: Option<Vec<f64>>,
    m: Option<Vec<f64>>,
}

/// A geometry header: byte order, base type (1..=7) and which extra ordinates follow x, y.
#[derive(Clone, Copy)]
struct Header {
    little: bool,
    code: u32,
    has_z: bool,
    has_m: bool,
}

impl Header {
    fn dims(self) -> usize {
        2 + usize::from(self.has_z) + usize::from(self.has_m)
    }
}

fn type_name(code: u32) -> &'static str {
    match code {
        POINT => "point",
        LINESTRING => "linestring",
        POLYGON => "polygon",
        MULTIPOINT => "multipoint",
        MULTILINESTRING => "multilinestring",
        MULTIPOLYGON => "multipolygon",
        _ => "geometrycollection",
    }
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], WkbError> {
        let end = self.pos.checked_add(N).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(WkbError::Truncated {
                offset: self.pos,
                needed: self.pos + N - self.bytes.len(),
            });
        };
        let mut a = [0u8; N];
        a.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
        Ok(a)
    }

    fn u32(&mut self, little: bool) -> Result<u32, WkbError> {
        let b = self.take::<4>()?;
        Ok(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn f64(&mut self, little: bool) -> Result<f64, WkbError> {
        let b = self.take::<8>()?;
        Ok(if little {
            f64::from_le_bytes(b)
        } else {
            f64::from_be_bytes(b)
        })
    }

    fn header(&mut self) -> Result<Header, WkbError> {
        let offset = self.pos;
        let [flag] = self.take::<1>()?;
        let little = match flag {
            0 => false,
            1 => true,
            flag => return Err(WkbError::ByteOrder { offset, flag }),
        };
        let type_at = self.pos;
        let raw = self.u32(little)?;
        // EWKB: flags in the high bits.
        let (ez, em, srid) = (
            raw & 0x8000_0000 != 0,
            raw & 0x4000_0000 != 0,
            raw & 0x2000_0000 != 0,
        );
        let iso = raw & 0x1fff_ffff;
        let (base, extra) = (iso % 1000, iso / 1000);
        let unknown = WkbError::UnknownType {
            offset: type_at,
            code: raw,
        };
        if !(POINT..=COLLECTION).contains(&base) {
            return Err(unknown);
        }
        let (has_z, has_m) = match extra {
            0 => (ez, em),
            1 if !(ez || em) => (true, false),
            2 if !(ez || em) => (false, true),
            3 if !(ez || em) => (true, true),
            _ => return Err(unknown),
        };
        if srid {
            self.u32(little)?;
        }
        // A Z or M header starts the list, so an empty `LINESTRING Z` keeps its dimension.
        let coords = self.coords;
        if has_z {
            self.z.get_or_insert_with(|| vec![f64::NAN; coords]);
        }
        if has_m {
            self.m.get_or_insert_with(|| vec![f64::NAN; coords]);
        }
        Ok(Header {
            little,
            code: base,
            has_z,
            has_m,
        })
    }

    /// How many items a count may claim, given that each takes at least `min` bytes.
    fn count(&mut self, h: Header, min: usize) -> Result<usize, WkbError> {
        let n = self.u32(h.little)? as usize;
        let left = self.bytes.len() - self.pos;
        if n.saturating_mul(min) > left {
            return Err(WkbError::Truncated {
                offset: self.pos,
                needed: n.saturating_mul(min) - left,
            });
        }
        Ok(n)
    }

    fn coord(&mut self, h: Header) -> Result<Coord<f64>, WkbError> {
        let x = self.f64(h.little)?;
        let y = self.f64(h.little)?;
        let z = if h.has_z {
            Some(self.f64(h.little)?)
        } else {
            None
        };
        let m = if h.has_m {
            Some(self.f64(h.little)?)
        } else {
            None
        };
        for (list, v) in [(&mut self.z, z), (&mut self.m, m)] {
            if let Some(list) = list {
                list.push(v.unwrap_or(f64::NAN));
            }
        }
        self.coords += 1;
        Ok(Coord { x, y })
    }

    fn line(&mut self, h: Header) -> Result<LineString<f64>, WkbError> {
        let n = self.count(h, 8 * h.dims())?;
        if h.has_z || h.has_m {
            let mut cs = Vec::with_capacity(n);
            for _ in 0..n {
                cs.push(self.coord(h)?);
            }
            return Ok(LineString(cs));
        }
        // 2D, the common case: `count` checked that the bytes are there, so the coordinates
        // are decoded from one slice without a bounds check each.
        let end = self.pos + 16 * n;
        let f = |chunk: &[u8]| {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            if h.little {
                f64::from_le_bytes(b)
            } else {
                f64::from_be_bytes(b)
            }
        };
        let cs: Vec<Coord<f64>> = self.bytes[self.pos..end]
            .chunks_exact(16)
            .map(|c| Coord {
                x: f(&c[..8]),
                y: f(&c[8..]),
            })
            .collect();
        self.pos = end;
        for list in [&mut self.z, &mut self.m].into_iter().flatten() {
            list.resize(list.len() + n, f64::NAN);
        }
        self.coords += n;
        Ok(LineString(cs))
    }

    fn polygon(&mut self, h: Header) -> Result<Polygon<f64>, WkbError> {
        let n = self.count(h, 4)?;
        if n == 0 {
            return Ok(Polygon::new(LineString(Vec::new()), Vec::new()));
        }
        let exterior = self.ring(h)?;
        let mut holes = Vec::with_capacity(n - 1);
        for _ in 1..n {
            holes.push(self.ring(h)?);
        }
        Ok(Polygon::new(exterior, holes))
    }

    /// A polygon ring. `Polygon::new` closes a ring that is not closed, so the first
    /// coordinate's Z and M are repeated for the point it adds.
    fn ring(&mut self, h: Header) -> Result<LineString<f64>, WkbError> {
        let start = self.coords;
        let ring = self.line(h)?;
        if ring.0.first() != ring.0.last() {
            for list in [&mut self.z, &mut self.m].into_iter().flatten() {
                let first = list[start];
                list.push(first);
            }
            self.coords += 1;
        }
        Ok(ring)
    }

    /// Reads a member of a multi-geometry, which must be of type `want`.
    fn member(&mut self, container: u32, want: u32) -> Result<Header, WkbError> {
        let offset = self.pos;
        let h = self.header()?;
        if h.code != want {
            return Err(WkbError::WrongMember {
                offset,
                container: type_name(container),
                member: type_name(h.code),
            });
        }
        Ok(h)
    }

    fn geometry(&mut self, depth: usize) -> Result<Geometry<f64>, WkbError> {
        if depth > MAX_DEPTH {
            return Err(WkbError::TooDeep);
        }
        let h = self.header()?;
        Ok(match h.code {
            POINT => Geometry::Point(Point(self.coord(h)?)),
            LINESTRING => Geometry::LineString(self.line(h)?),
            POLYGON => Geometry::Polygon(self.polygon(h)?),
            MULTIPOINT => {
                let n = self.count(h, 21)?;
                let mut ps = Vec::with_capacity(n);
                for _ in 0..n {
                    let m = self.member(MULTIPOINT, POINT)?;
                    ps.push(Point(self.coord(m)?));
                }
                Geometry::MultiPoint(MultiPoint(ps))
            }
            MULTILINESTRING => {
                let n = self.count(h, 9)?;
                let mut ls = Vec::with_capacity(n);
                for _ in 0..n {
                    let m = self.member(MULTILINESTRING, LINESTRING)?;
                    ls.push(self.line(m)?);
                }
                Geometry::MultiLineString(MultiLineString(ls))
            }
            MULTIPOLYGON => {
                let n = self.count(h, 9)?;
                let mut ps = Vec::with_capacity(n);
                for _ in 0..n {
                    let m = self.member(MULTIPOLYGON, POLYGON)?;
                    ps.push(self.polygon(m)?);
                }
                Geometry::MultiPolygon(MultiPolygon(ps))
            }
            _ => {
                let n = self.count(h, 5)?;
                let mut gs = Vec::with_capacity(n);
                for _ in 0..n {
                    gs.push(self.geometry(depth + 1)?);
                }
                Geometry::GeometryCollection(GeometryCollection(gs))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::{Line, Rect, Triangle, coord, line_string, point, polygon};
    use proptest::prelude::*;

    fn round_trip(g: &Geometry<f64>) -> Geometry<f64> {
        let mut buf = Vec::new();
        to_wkb_2d(g, &mut buf);
        from_wkb_2d(&buf).unwrap()
    }

    fn samples() -> Vec<Geometry<f64>> {
        let ls = line_string![(x: 0.0, y: 0.0), (x: 1.5, y: -2.0), (x: 3.0, y: 4.0)];
        let poly = polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 0.0, y: 10.0)],
            interiors: [[(x: 2.0, y: 2.0), (x: 3.0, y: 2.0), (x: 3.0, y: 3.0)]],
        );
        let poly2 = polygon![(x: 20.0, y: 20.0), (x: 21.0, y: 20.0), (x: 21.0, y: 21.0)];
        let empty_poly = Polygon::new(LineString(vec![]), vec![]);
        vec![
            point!(x: 1.0, y: 2.0).into(),
            point!(x: -0.0, y: f64::MAX).into(),
            ls.clone().into(),
            LineString::<f64>(vec![]).into(),
            poly.clone().into(),
            empty_poly.clone().into(),
            MultiPoint(vec![point!(x: 1.0, y: 1.0), point!(x: 2.0, y: 3.0)]).into(),
            MultiPoint::<f64>(vec![]).into(),
            MultiLineString(vec![ls.clone(), LineString(vec![])]).into(),
            MultiPolygon(vec![poly.clone(), poly2, empty_poly]).into(),
            Geometry::GeometryCollection(GeometryCollection(vec![
                point!(x: 5.0, y: 6.0).into(),
                Geometry::GeometryCollection(GeometryCollection(vec![ls.into(), poly.into()])),
                Geometry::GeometryCollection(GeometryCollection(vec![])),
            ])),
        ]
    }

    #[test]
    fn every_geometry_type_round_trips() {
        for g in samples() {
            assert_eq!(round_trip(&g), g, "{g:?}");
        }
    }

    #[test]
    fn line_rect_and_triangle_become_their_plain_equivalents() {
        let line = Line::new(coord! { x: 1.0, y: 2.0 }, coord! { x: 3.0, y: 4.0 });
        assert_eq!(
            round_trip(&line.into()),
            Geometry::LineString(line_string![(x: 1.0, y: 2.0), (x: 3.0, y: 4.0)])
        );
        let rect = Rect::new(coord! { x: 0.0, y: 0.0 }, coord! { x: 2.0, y: 1.0 });
        assert_eq!(
            round_trip(&rect.into()),
            Geometry::Polygon(rect.to_polygon())
        );
        let tri = Triangle::new(
            coord! { x: 0.0, y: 0.0 },
            coord! { x: 1.0, y: 0.0 },
            coord! { x: 0.0, y: 1.0 },
        );
        assert_eq!(round_trip(&tri.into()), Geometry::Polygon(tri.to_polygon()));
    }

    #[test]
    fn point_encoding_is_little_endian_iso() {
        let mut buf = Vec::new();
        to_wkb_2d(&point!(x: 1.0, y: 2.0).into(), &mut buf);
        let mut want = vec![1, 1, 0, 0, 0];
        want.extend_from_slice(&1.0f64.to_le_bytes());
        want.extend_from_slice(&2.0f64.to_le_bytes());
        assert_eq!(buf, want);
    }

    #[test]
    fn big_endian_and_extended_dimensions_are_read() {
        // Big-endian LINESTRING Z with two points: the z values are kept beside the shape.
        let mut buf = vec![0];
        buf.extend_from_slice(&1002u32.to_be_bytes());
        buf.extend_from_slice(&2u32.to_be_bytes());
        for v in [1.0f64, 2.0, 9.0, 3.0, 4.0, 9.0] {
            buf.extend_from_slice(&v.to_be_bytes());
        }
        let g = from_wkb(&buf).unwrap();
        assert_eq!(
            g.geom,
            Geometry::LineString(line_string![(x: 1.0, y: 2.0), (x: 3.0, y: 4.0)])
        );
        assert_eq!(g.z(), Some(&[9.0, 9.0][..]));
        assert_eq!(g.m(), None);
        // EWKB point with SRID 4326 and the Z flag.
        let mut buf = vec![1];
        buf.extend_from_slice(&(0xA000_0001u32).to_le_bytes());
        buf.extend_from_slice(&4326u32.to_le_bytes());
        for v in [5.0f64, 6.0, 7.0] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        let g = from_wkb(&buf).unwrap();
        assert_eq!(g.geom, Geometry::Point(point!(x: 5.0, y: 6.0)));
        assert_eq!((g.z(), g.crs), (Some(&[7.0][..]), None));
        // EWKB M flag alone: the value is a measure, not a height.
        let mut buf = vec![1];
        buf.extend_from_slice(&(0x4000_0001u32).to_le_bytes());
        for v in [5.0f64, 6.0, 8.0] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        let g = from_wkb(&buf).unwrap();
        assert_eq!((g.z(), g.m()), (None, Some(&[8.0][..])));
    }

    fn with(g: Geometry<f64>, z: Option<Vec<f64>>, m: Option<Vec<f64>>) -> super::super::Geometry {
        super::super::Geometry::new(g)
            .with_ordinates(Ordinates { z, m })
            .unwrap()
    }

    #[test]
    fn z_and_m_round_trip_with_iso_codes() {
        for g in samples() {
            let n = crate::feature::coord_count(&g);
            let zs: Vec<f64> = (0..n).map(|i| i as f64 * 1.5 - 3.0).collect();
            let ms: Vec<f64> = (0..n).map(|i| 100.0 + i as f64).collect();
            for (z, m, code) in [
                (Some(zs.clone()), None, 1000),
                (None, Some(ms.clone()), 2000),
                (Some(zs.clone()), Some(ms.clone()), 3000),
            ] {
                let geometry = with(g.clone(), z, m);
                let mut buf = Vec::new();
                to_wkb(&geometry, &mut buf);
                let outer = u32::from_le_bytes(buf[1..5].try_into().unwrap());
                assert_eq!(outer / 1000 * 1000, code, "{g:?}");
                assert_eq!(from_wkb(&buf).unwrap(), geometry, "{g:?}");
            }
        }
    }

    #[test]
    fn an_unclosed_ring_gets_its_first_z_for_the_closing_point() {
        // POLYGON Z with one open ring of three points.
        let mut buf = vec![1];
        buf.extend_from_slice(&1003u32.to_le_bytes());
        buf.extend_from_slice(&1u32.to_le_bytes());
        buf.extend_from_slice(&3u32.to_le_bytes());
        for v in [0.0f64, 0.0, 5.0, 1.0, 0.0, 6.0, 1.0, 1.0, 7.0] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        let g = from_wkb(&buf).unwrap();
        assert_eq!(g.z(), Some(&[5.0, 6.0, 7.0, 5.0][..]));
        // A collection whose second member has no Z gets NaN there.
        let mut buf = vec![1];
        buf.extend_from_slice(&7u32.to_le_bytes());
        buf.extend_from_slice(&2u32.to_le_bytes());
        buf.push(1);
        buf.extend_from_slice(&1001u32.to_le_bytes());
        for v in [1.0f64, 2.0, 3.0] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        to_wkb_2d(&point!(x: 4.0, y: 5.0).into(), &mut buf);
        let z = from_wkb(&buf).unwrap().z().unwrap().to_vec();
        assert_eq!(z[0], 3.0);
        assert!(z[1].is_nan());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for g in samples() {
            let mut buf = Vec::new();
            to_wkb_2d(&g, &mut buf);
            for cut in 0..buf.len() {
                let err = from_wkb_2d(&buf[..cut]).unwrap_err();
                assert!(
                    matches!(err, WkbError::Truncated { .. }),
                    "{g:?} cut at {cut}: {err}"
                );
            }
        }
    }

    #[test]
    fn bad_input_is_reported() {
        assert!(matches!(
            from_wkb_2d(&[7, 1, 0, 0, 0]),
            Err(WkbError::ByteOrder { flag: 7, .. })
        ));
        assert!(matches!(
            from_wkb_2d(&[1, 99, 0, 0, 0]),
            Err(WkbError::UnknownType { code: 99, .. })
        ));
        let mut buf = Vec::new();
        to_wkb_2d(&point!(x: 1.0, y: 2.0).into(), &mut buf);
        buf.push(0);
        assert_eq!(from_wkb_2d(&buf), Err(WkbError::TrailingBytes(1)));
        // A multipoint holding a linestring.
        let mut buf = vec![1, 4, 0, 0, 0, 1, 0, 0, 0];
        to_wkb_2d(&line_string![(x: 1.0, y: 2.0)].into(), &mut buf);
        let err = from_wkb_2d(&buf).unwrap_err();
        assert_eq!(
            err.to_string(),
            "wkb multipoint at offset 9 holds a linestring"
        );
        // A count far beyond the input allocates nothing and fails.
        let buf = [1, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(from_wkb_2d(&buf), Err(WkbError::Truncated { .. })));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut buf = Vec::new();
        for _ in 0..(MAX_DEPTH + 5) {
            buf.extend_from_slice(&[1, 7, 0, 0, 0, 1, 0, 0, 0]);
        }
        assert_eq!(from_wkb_2d(&buf), Err(WkbError::TooDeep));
        let mut ok: Geometry<f64> = point!(x: 0.0, y: 0.0).into();
        for _ in 0..MAX_DEPTH {
            ok = Geometry::GeometryCollection(GeometryCollection(vec![ok]));
        }
        assert_eq!(round_trip(&ok), ok);
    }

    fn finite() -> impl Strategy<Value = f64> {
        -1e12f64..1e12
    }

    proptest! {
        #[test]
        fn random_points_round_trip(x in any::<f64>(), y in any::<f64>()) {
            let mut buf = Vec::new();
            to_wkb_2d(&point!(x: x, y: y).into(), &mut buf);
            let Geometry::Point(p) = from_wkb_2d(&buf).unwrap() else { panic!("not a point") };
            prop_assert_eq!(p.x().to_bits(), x.to_bits());
            prop_assert_eq!(p.y().to_bits(), y.to_bits());
        }

        #[test]
        fn random_linestrings_round_trip(pts in prop::collection::vec((finite(), finite()), 0..40)) {
            let g: Geometry<f64> = LineString::from(pts).into();
            prop_assert_eq!(round_trip(&g), g);
        }

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = from_wkb_2d(&bytes);
        }
    }
}
