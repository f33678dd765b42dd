//! GeoJSON geometry objects to and from sluice geometries, with heights.
//!
//! RFC 7946 positions are `[x, y]` or `[x, y, z]`. `geo-types` is 2D, so the conversion the
//! `geojson` crate offers drops a third value; here it becomes the geometry's Z
//! ([`Ordinates`]) on reading and is written back as the third value. A geometry where only
//! some positions have a height gets NaN for the others, written back as 2D positions.
//! Values past the third (which RFC 7946 asks writers not to use) are not kept.

use geojson::{GeometryValue, Position};
use sluice_runtime::Geometry;
use sluice_runtime::feature::Ordinates;

/// A GeoJSON geometry object (parsed JSON) as a geometry without a CRS; `null` is `None`.
pub(crate) fn read(g: &serde_json::Value) -> Result<Option<Geometry>, String> {
    if g.is_null() {
        return Ok(None);
    }
    let parsed = <geojson::Geometry as serde::Deserialize>::deserialize(g)
        .map_err(|e| format!("not a GeoJSON geometry: {e}"))?;
    let shape = geo_types::Geometry::<f64>::try_from(&parsed.value)
        .map_err(|e| format!("unsupported GeoJSON geometry: {e}"))?;
    let mut heights = Heights::default();
    heights.value(&parsed.value);
    let geometry = Geometry::new(shape);
    if !heights.any {
        return Ok(Some(geometry));
    }
    geometry
        .with_ordinates(Ordinates {
            z: Some(heights.z),
            m: None,
        })
        .map(Some)
        .map_err(|e| format!("heights: {e}"))
}

/// The third values of positions, in the order `geo-types` holds the coordinates.
#[derive(Default)]
struct Heights {
    z: Vec<f64>,
    any: bool,
}

impl Heights {
    fn position(&mut self, p: &Position) {
        match p.as_slice().get(2) {
            Some(z) => {
                self.any = true;
                self.z.push(*z);
            }
            None => self.z.push(f64::NAN),
        }
    }

    fn positions(&mut self, ps: &[Position]) {
        ps.iter().for_each(|p| self.position(p));
    }

    /// A polygon ring; `geo-types` closes one that is not closed, repeating its first point.
    fn ring(&mut self, ring: &[Position]) {
        self.positions(ring);
        if let (Some(first), Some(last)) = (ring.first(), ring.last())
            && (first.as_slice().first(), first.as_slice().get(1))
                != (last.as_slice().first(), last.as_slice().get(1))
        {
            self.position(first);
        }
    }

    fn value(&mut self, v: &GeometryValue) {
        match v {
            GeometryValue::Point { coordinates } => self.position(coordinates),
            GeometryValue::MultiPoint { coordinates }
            | GeometryValue::LineString { coordinates } => self.positions(coordinates),
            GeometryValue::MultiLineString { coordinates } => {
                coordinates.iter().for_each(|l| self.positions(l))
            }
            GeometryValue::Polygon { coordinates } => coordinates.iter().for_each(|r| self.ring(r)),
            GeometryValue::MultiPolygon { coordinates } => {
                coordinates.iter().flatten().for_each(|r| self.ring(r))
            }
            GeometryValue::GeometryCollection { geometries } => {
                geometries.iter().for_each(|g| self.value(&g.value))
            }
        }
    }
}

/// A geometry as a GeoJSON geometry value, with its Z as third position values.
pub(crate) fn write(g: &Geometry) -> GeometryValue {
    let mut value = GeometryValue::from(&g.geom);
    if let Some(z) = g.z() {
        let mut at = 0;
        lift(&mut value, z, &mut at);
    }
    value
}

/// Gives positions, in coordinate order, their height (NaN: left 2D).
fn lift(v: &mut GeometryValue, z: &[f64], at: &mut usize) {
    let mut one = |p: &mut Position| {
        if let Some(&h) = z.get(*at)
            && !h.is_nan()
        {
            *p = Position::from([p[0], p[1], h]);
        }
        *at += 1;
    };
    match v {
        GeometryValue::Point { coordinates } => one(coordinates),
        GeometryValue::MultiPoint { coordinates } | GeometryValue::LineString { coordinates } => {
            coordinates.iter_mut().for_each(one)
        }
        GeometryValue::MultiLineString { coordinates } | GeometryValue::Polygon { coordinates } => {
            coordinates.iter_mut().flatten().for_each(one)
        }
        GeometryValue::MultiPolygon { coordinates } => {
            coordinates.iter_mut().flatten().flatten().for_each(one)
        }
        GeometryValue::GeometryCollection { geometries } => {
            for g in geometries {
                lift(&mut g.value, z, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(j: serde_json::Value) -> (Geometry, serde_json::Value) {
        let g = read(&j).unwrap().unwrap();
        let back = serde_json::to_value(geojson::Geometry::new(write(&g))).unwrap();
        (g, back)
    }

    #[test]
    fn heights_are_read_and_written_back() {
        let j = json!({"type": "Polygon", "coordinates": [
            [[0.0, 0.0, 10.0], [4.0, 0.0, 11.0], [4.0, 4.0, 12.5], [0.0, 0.0, 10.0]],
            [[1.0, 1.0, 1.0], [2.0, 1.0, 2.0], [2.0, 2.0, 3.0], [1.0, 1.0, 1.0]]
        ]});
        let (g, back) = round_trip(j.clone());
        assert_eq!(
            g.z(),
            Some(&[10.0, 11.0, 12.5, 10.0, 1.0, 2.0, 3.0, 1.0][..])
        );
        assert_eq!(back["coordinates"], j["coordinates"]);
        let j = json!({"type": "GeometryCollection", "geometries": [
            {"type": "Point", "coordinates": [1.0, 2.0]},
            {"type": "MultiLineString", "coordinates": [[[0.0, 0.0, -1.5], [1.0, 1.0, 1e300]]]}
        ]});
        let (g, back) = round_trip(j.clone());
        let z = g.z().unwrap();
        assert!(z[0].is_nan());
        assert_eq!(&z[1..], &[-1.5, 1e300]);
        assert_eq!(
            back["geometries"], j["geometries"],
            "a 2D position stays 2D"
        );
    }

    #[test]
    fn flat_geometries_have_no_ordinates_and_open_rings_get_the_first_height() {
        let (g, back) = round_trip(json!({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}));
        assert!(g.ordinates().is_none());
        assert_eq!(back["coordinates"], json!([[0.0, 0.0], [1.0, 1.0]]));
        let (g, _) = round_trip(json!({"type": "Polygon", "coordinates": [
            [[0, 0, 5], [1, 0, 6], [1, 1, 7]]
        ]}));
        assert_eq!(g.z(), Some(&[5.0, 6.0, 7.0, 5.0][..]));
        assert_eq!(read(&json!(null)).unwrap(), None);
        assert!(read(&json!({"type": "Point"})).is_err());
    }
}
