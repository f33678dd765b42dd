//! WKT text to and from sluice geometries, keeping Z and M.
//!
//! `geo-types` is 2D, so the `wkt` crate's conversion drops `Z` and `M` values; here they
//! become the geometry's [`Ordinates`] on reading (`POINT Z (1 2 3)`, `LINESTRING ZM (...)`),
//! and a geometry with ordinates is written with its `Z`, `M` or `ZM` tag and values.
//! 2D geometries go through the crate unchanged.

use std::str::FromStr;

use geo_types::{Coord, Geometry as G, LineString, Polygon};
use sluice_runtime::Geometry;
use sluice_runtime::feature::Ordinates;
use wkt::Wkt;
use wkt::types::{Coord as WCoord, Dimension};

/// Parses WKT text (no `SRID=` prefix) into a geometry without a CRS.
pub(crate) fn read(text: &str) -> Result<Geometry, String> {
    let parsed = Wkt::<f64>::from_str(text).map_err(|e| e.to_string())?;
    let mut extra = Extra::default();
    extra.wkt(&parsed);
    let shape = G::<f64>::try_from(parsed).map_err(|e| e.to_string())?;
    let geometry = Geometry::new(shape);
    if !(extra.any_z || extra.any_m) {
        return Ok(geometry);
    }
    geometry
        .with_ordinates(Ordinates {
            z: extra.any_z.then_some(extra.z),
            m: extra.any_m.then_some(extra.m),
        })
        .map_err(|e| format!("the Z/M values do not match the coordinates: {e}"))
}

/// Z and M values of coordinates in the order `geo-types` holds them.
#[derive(Default)]
struct Extra {
    z: Vec<f64>,
    m: Vec<f64>,
    any_z: bool,
    any_m: bool,
}

impl Extra {
    fn coord(&mut self, c: &WCoord<f64>) {
        self.any_z |= c.z.is_some();
        self.any_m |= c.m.is_some();
        self.z.push(c.z.unwrap_or(f64::NAN));
        self.m.push(c.m.unwrap_or(f64::NAN));
    }

    /// A polygon ring: `geo-types` closes one that is not closed, repeating its first point.
    fn ring(&mut self, ring: &[WCoord<f64>]) {
        ring.iter().for_each(|c| self.coord(c));
        if let (Some(first), Some(last)) = (ring.first(), ring.last())
            && (first.x, first.y) != (last.x, last.y)
        {
            self.coord(first);
        }
    }

    fn wkt(&mut self, w: &Wkt<f64>) {
        match w {
            Wkt::Point(p) => p.coord().iter().for_each(|c| self.coord(c)),
            Wkt::LineString(l) => l.coords().iter().for_each(|c| self.coord(c)),
            Wkt::Polygon(p) => p.rings().iter().for_each(|r| self.ring(r.coords())),
            Wkt::MultiPoint(m) => m
                .points()
                .iter()
                .filter_map(|p| p.coord())
                .for_each(|c| self.coord(c)),
            Wkt::MultiLineString(m) => m
                .line_strings()
                .iter()
                .flat_map(|l| l.coords())
                .for_each(|c| self.coord(c)),
            Wkt::MultiPolygon(m) => m
                .polygons()
                .iter()
                .flat_map(|p| p.rings())
                .for_each(|r| self.ring(r.coords())),
            Wkt::GeometryCollection(c) => c.geometries().iter().for_each(|g| self.wkt(g)),
        }
    }
}

/// The WKT text of a geometry, with `Z`/`M` values when it has them.
pub(crate) fn write(g: &Geometry) -> String {
    use wkt::ToWkt;
    let (z, m) = (g.z(), g.m());
    if z.is_none() && m.is_none() {
        return g.geom.wkt_string();
    }
    let dim = match (z.is_some(), m.is_some()) {
        (true, true) => Dimension::XYZM,
        (true, false) => Dimension::XYZ,
        _ => Dimension::XYM,
    };
    let mut lift = Lift { z, m, dim, at: 0 };
    lift.geometry(&g.geom).to_string()
}

/// Builds a `wkt` tree from a 2D shape, taking the i-th Z/M value for the i-th coordinate.
struct Lift<'a> {
    z: Option<&'a [f64]>,
    m: Option<&'a [f64]>,
    dim: Dimension,
    at: usize,
}

impl Lift<'_> {
    fn coord(&mut self, c: Coord<f64>) -> WCoord<f64> {
        let value =
            |list: Option<&[f64]>| list.map(|l| l.get(self.at).copied().unwrap_or(f64::NAN));
        let out = WCoord {
            x: c.x,
            y: c.y,
            z: value(self.z),
            m: value(self.m),
        };
        self.at += 1;
        out
    }

    fn line(&mut self, l: &LineString<f64>) -> wkt::types::LineString<f64> {
        let coords = l.0.iter().map(|c| self.coord(*c)).collect();
        wkt::types::LineString::new(coords, self.dim)
    }

    fn polygon(&mut self, p: &Polygon<f64>) -> wkt::types::Polygon<f64> {
        let mut rings = Vec::with_capacity(1 + p.interiors().len());
        if !(p.exterior().0.is_empty() && p.interiors().is_empty()) {
            rings.push(self.line(p.exterior()));
            rings.extend(p.interiors().iter().map(|r| self.line(r)));
        }
        wkt::types::Polygon::new(rings, self.dim)
    }

    fn point(&mut self, c: Coord<f64>) -> wkt::types::Point<f64> {
        let c = self.coord(c);
        wkt::types::Point::new(Some(c), self.dim)
    }

    fn geometry(&mut self, g: &G<f64>) -> Wkt<f64> {
        match g {
            G::Point(p) => Wkt::Point(self.point(p.0)),
            G::Line(l) => self.geometry(&G::LineString(LineString(vec![l.start, l.end]))),
            G::LineString(l) => Wkt::LineString(self.line(l)),
            G::Polygon(p) => Wkt::Polygon(self.polygon(p)),
            G::Rect(r) => Wkt::Polygon(self.polygon(&r.to_polygon())),
            G::Triangle(t) => Wkt::Polygon(self.polygon(&t.to_polygon())),
            G::MultiPoint(m) => {
                let points = m.0.iter().map(|p| self.point(p.0)).collect();
                Wkt::MultiPoint(wkt::types::MultiPoint::new(points, self.dim))
            }
            G::MultiLineString(m) => {
                let lines = m.0.iter().map(|l| self.line(l)).collect();
                Wkt::MultiLineString(wkt::types::MultiLineString::new(lines, self.dim))
            }
            G::MultiPolygon(m) => {
                let polygons = m.0.iter().map(|p| self.polygon(p)).collect();
                Wkt::MultiPolygon(wkt::types::MultiPolygon::new(polygons, self.dim))
            }
            G::GeometryCollection(c) => {
                let members = c.0.iter().map(|g| self.geometry(g)).collect();
                Wkt::GeometryCollection(wkt::types::GeometryCollection::new(members, self.dim))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_and_m_survive_a_round_trip_through_text() {
        for text in [
            "POINT Z(1 2 3)",
            "POINT M(1 2 7)",
            "LINESTRING ZM(0 0 1 10,1 1 2 20)",
            "POLYGON Z((0 0 5,4 0 6,4 4 7,0 0 5),(1 1 0,2 1 0,2 2 0,1 1 0))",
            "MULTIPOLYGON Z(((0 0 1,1 0 1,1 1 1,0 0 1)),((5 5 -2.5,6 5 -2.5,6 6 1e300,5 5 -2.5)))",
            "GEOMETRYCOLLECTION Z(POINT Z(1 2 3),LINESTRING Z(0 0 0,1 1 1))",
        ] {
            let g = read(text).unwrap();
            assert!(g.ordinates().is_some(), "{text}");
            let back = write(&g);
            assert_eq!(read(&back).unwrap(), g, "{text} -> {back}");
        }
        let g = read("LINESTRING Z (0 0 1.5, 1 1 2.5)").unwrap();
        assert_eq!(g.z(), Some(&[1.5, 2.5][..]));
        assert_eq!(write(&g), "LINESTRING Z(0 0 1.5,1 1 2.5)");
    }

    #[test]
    fn flat_text_stays_flat_and_open_rings_repeat_their_first_height() {
        let g = read("POINT (1 2)").unwrap();
        assert!(g.ordinates().is_none());
        assert_eq!(write(&g), "POINT(1 2)");
        let g = read("POLYGON Z ((0 0 5, 1 0 6, 1 1 7))").unwrap();
        assert_eq!(g.z(), Some(&[5.0, 6.0, 7.0, 5.0][..]));
        assert!(read("POINT Z (1 2)").is_err());
        assert!(read("LINESTRING (0 0,").is_err());
    }
}
