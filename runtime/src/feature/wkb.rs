//! Well-known binary (WKB) geometry encoding, written by hand (about 300 lines, no crate).
//!
//! [`to_wkb`] writes little-endian ISO WKB in two dimensions. `geo-types` shapes that WKB has
//! no word for are written as their plain equivalent: a `Line` as a two-point `LineString`,
//! a `Rect` and a `Triangle` as a `Polygon` (so they read back as those).
//!
//! [`from_wkb`] reads either byte order. It also accepts ISO Z/M/ZM type codes (1001…3007)
//! and PostGIS EWKB flags (Z, M, SRID), dropping the extra ordinates and the SRID. Bad input
//! gives a [`WkbError`], never a panic: every read is bounds-checked, counts are checked
//! against the bytes left before anything is allocated, and nesting of geometry collections
//! is limited to [`MAX_DEPTH`] levels.

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

/// Appends `g` to `out` as little-endian ISO WKB (2D).
pub fn to_wkb(g: &Geometry<f64>, out: &mut Vec<u8>) {
    match g {
        Geometry::Point(p) => {
            header(out, POINT);
            coord(out, p.0);
        }
        Geometry::Line(l) => {
            header(out, LINESTRING);
            u32_le(out, 2);
            coord(out, l.start);
            coord(out, l.end);
        }
        Geometry::LineString(l) => {
            header(out, LINESTRING);
            coords(out, &l.0);
        }
        Geometry::Polygon(p) => polygon(out, p),
        Geometry::Rect(r) => polygon(out, &r.to_polygon()),
        Geometry::Triangle(t) => polygon(out, &t.to_polygon()),
        Geometry::MultiPoint(m) => {
            header(out, MULTIPOINT);
            u32_le(out, len32(m.0.len()));
            for p in &m.0 {
                header(out, POINT);
                coord(out, p.0);
            }
        }
        Geometry::MultiLineString(m) => {
            header(out, MULTILINESTRING);
            u32_le(out, len32(m.0.len()));
            for l in &m.0 {
                header(out, LINESTRING);
                coords(out, &l.0);
            }
        }
        Geometry::MultiPolygon(m) => {
            header(out, MULTIPOLYGON);
            u32_le(out, len32(m.0.len()));
            for p in &m.0 {
                polygon(out, p);
            }
        }
        Geometry::GeometryCollection(c) => {
            header(out, COLLECTION);
            u32_le(out, len32(c.0.len()));
            for g in &c.0 {
                to_wkb(g, out);
            }
        }
    }
}

fn header(out: &mut Vec<u8>, code: u32) {
    out.push(1);
    u32_le(out, code);
}

fn u32_le(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_le_bytes());
}

/// WKB counts are 32-bit; nothing in memory comes close, but saturate rather than wrap.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn coord(out: &mut Vec<u8>, c: Coord<f64>) {
    out.extend_from_slice(&c.x.to_le_bytes());
    out.extend_from_slice(&c.y.to_le_bytes());
}

fn coords(out: &mut Vec<u8>, cs: &[Coord<f64>]) {
    u32_le(out, len32(cs.len()));
    for c in cs {
        coord(out, *c);
    }
}

fn polygon(out: &mut Vec<u8>, p: &Polygon<f64>) {
    header(out, POLYGON);
    // An empty polygon (no exterior, no holes) has zero rings.
    if p.exterior().0.is_empty() && p.interiors().is_empty() {
        u32_le(out, 0);
        return;
    }
    u32_le(out, len32(1 + p.interiors().len()));
    coords(out, &p.exterior().0);
    for ring in p.interiors() {
        coords(out, &ring.0);
    }
}

// ─── reading ────────────────────────────────────────────────────────────────────────────────

/// Reads one WKB geometry that fills `bytes` exactly.
pub fn from_wkb(bytes: &[u8]) -> Result<Geometry<f64>, WkbError> {
    let mut r = Reader { bytes, pos: 0 };
    let g = r.geometry(0)?;
    match bytes.len() - r.pos {
        0 => Ok(g),
        n => Err(WkbError::TrailingBytes(n)),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// A geometry header: byte order, base type (1..=7) and ordinates per coordinate.
#[derive(Clone, Copy)]
struct Header {
    little: bool,
    code: u32,
    dims: usize,
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
        let extra = match extra {
            0 => usize::from(ez) + usize::from(em),
            1 | 2 if !(ez || em) => 1,
            3 if !(ez || em) => 2,
            _ => return Err(unknown),
        };
        if srid {
            self.u32(little)?;
        }
        Ok(Header {
            little,
            code: base,
            dims: 2 + extra,
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
        for _ in 2..h.dims {
            self.f64(h.little)?;
        }
        Ok(Coord { x, y })
    }

    fn line(&mut self, h: Header) -> Result<LineString<f64>, WkbError> {
        let n = self.count(h, 8 * h.dims)?;
        let mut cs = Vec::with_capacity(n);
        for _ in 0..n {
            cs.push(self.coord(h)?);
        }
        Ok(LineString(cs))
    }

    fn polygon(&mut self, h: Header) -> Result<Polygon<f64>, WkbError> {
        let n = self.count(h, 4)?;
        if n == 0 {
            return Ok(Polygon::new(LineString(Vec::new()), Vec::new()));
        }
        let exterior = self.line(h)?;
        let mut holes = Vec::with_capacity(n - 1);
        for _ in 1..n {
            holes.push(self.line(h)?);
        }
        Ok(Polygon::new(exterior, holes))
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
        to_wkb(g, &mut buf);
        from_wkb(&buf).unwrap()
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
        to_wkb(&point!(x: 1.0, y: 2.0).into(), &mut buf);
        let mut want = vec![1, 1, 0, 0, 0];
        want.extend_from_slice(&1.0f64.to_le_bytes());
        want.extend_from_slice(&2.0f64.to_le_bytes());
        assert_eq!(buf, want);
    }

    #[test]
    fn big_endian_and_extended_dimensions_are_read() {
        // Big-endian LINESTRING Z with two points: the z values are dropped.
        let mut buf = vec![0];
        buf.extend_from_slice(&1002u32.to_be_bytes());
        buf.extend_from_slice(&2u32.to_be_bytes());
        for v in [1.0f64, 2.0, 9.0, 3.0, 4.0, 9.0] {
            buf.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(
            from_wkb(&buf).unwrap(),
            Geometry::LineString(line_string![(x: 1.0, y: 2.0), (x: 3.0, y: 4.0)])
        );
        // EWKB point with SRID 4326 and the Z flag.
        let mut buf = vec![1];
        buf.extend_from_slice(&(0xA000_0001u32).to_le_bytes());
        buf.extend_from_slice(&4326u32.to_le_bytes());
        for v in [5.0f64, 6.0, 7.0] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(
            from_wkb(&buf).unwrap(),
            Geometry::Point(point!(x: 5.0, y: 6.0))
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for g in samples() {
            let mut buf = Vec::new();
            to_wkb(&g, &mut buf);
            for cut in 0..buf.len() {
                let err = from_wkb(&buf[..cut]).unwrap_err();
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
            from_wkb(&[7, 1, 0, 0, 0]),
            Err(WkbError::ByteOrder { flag: 7, .. })
        ));
        assert!(matches!(
            from_wkb(&[1, 99, 0, 0, 0]),
            Err(WkbError::UnknownType { code: 99, .. })
        ));
        let mut buf = Vec::new();
        to_wkb(&point!(x: 1.0, y: 2.0).into(), &mut buf);
        buf.push(0);
        assert_eq!(from_wkb(&buf), Err(WkbError::TrailingBytes(1)));
        // A multipoint holding a linestring.
        let mut buf = vec![1, 4, 0, 0, 0, 1, 0, 0, 0];
        to_wkb(&line_string![(x: 1.0, y: 2.0)].into(), &mut buf);
        let err = from_wkb(&buf).unwrap_err();
        assert_eq!(
            err.to_string(),
            "wkb multipoint at offset 9 holds a linestring"
        );
        // A count far beyond the input allocates nothing and fails.
        let buf = [1, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(from_wkb(&buf), Err(WkbError::Truncated { .. })));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut buf = Vec::new();
        for _ in 0..(MAX_DEPTH + 5) {
            buf.extend_from_slice(&[1, 7, 0, 0, 0, 1, 0, 0, 0]);
        }
        assert_eq!(from_wkb(&buf), Err(WkbError::TooDeep));
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
            to_wkb(&point!(x: x, y: y).into(), &mut buf);
            let Geometry::Point(p) = from_wkb(&buf).unwrap() else { panic!("not a point") };
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
            let _ = from_wkb(&bytes);
        }
    }
}
