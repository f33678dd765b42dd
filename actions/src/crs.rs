//! Coordinate reference systems as users write them in parameters: an EPSG code (`4326`,
//! `"4326"`, `"EPSG:4326"`, `"urn:ogc:def:crs:EPSG::4326"`,
//! `"http://www.opengis.net/def/crs/EPSG/0/4326"`, `"OGC:CRS84"`), a WKT naming its EPSG
//! code, or a PROJ string; EPSG codes resolve to PROJ definitions through `crs-definitions`.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// A CRS as written in a workflow: an EPSG code (`4326`, `"EPSG:4326"`,
/// `"urn:ogc:def:crs:EPSG::4326"`), a WKT naming its EPSG code, or a PROJ string
/// (`"+proj=utm +zone=32 +datum=WGS84"`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CrsParam {
    /// An EPSG code.
    Code(u32),
    /// A code in words, a WKT or a PROJ string.
    Text(String),
}

/// What a [`CrsParam`] names: an EPSG code with its PROJ definition, or a PROJ string alone.
#[derive(Debug, Clone, PartialEq)]
pub struct CrsDefinition {
    /// The EPSG code, when it has one.
    pub code: Option<u32>,
    /// The PROJ string.
    pub proj: String,
}

impl CrsParam {
    /// The definition this names, or a message saying why it names none.
    pub fn resolve(&self) -> Result<CrsDefinition, String> {
        match self {
            CrsParam::Code(code) => epsg(*code),
            CrsParam::Text(text) => {
                let t = text.trim();
                if t.starts_with('+') || t.contains("+proj=") {
                    return Ok(CrsDefinition {
                        code: None,
                        proj: t.to_string(),
                    });
                }
                match code_in(t) {
                    Some(code) => epsg(code),
                    None => Err(format!(
                        "\"{t}\" names no CRS sluice knows; give an EPSG code (4326, \"EPSG:2154\", \"urn:ogc:def:crs:EPSG::6677\"), a WKT with its EPSG AUTHORITY or ID, or a PROJ string (\"+proj=...\")"
                    )),
                }
            }
        }
    }
}

/// The EPSG code a text names: `4326`, `EPSG:4326`, `urn:ogc:def:crs:EPSG:[version]:4326`,
/// `http(s)://www.opengis.net/def/crs/EPSG/0/4326`, `OGC:CRS84`, or the outermost EPSG
/// authority of a WKT.
fn code_in(t: &str) -> Option<u32> {
    let upper = t.to_ascii_uppercase();
    if matches!(
        upper.as_str(),
        "CRS84" | "OGC:CRS84" | "URN:OGC:DEF:CRS:OGC:1.3:CRS84" | "URN:OGC:DEF:CRS:OGC::CRS84"
    ) || upper.ends_with("/DEF/CRS/OGC/1.3/CRS84")
    {
        return Some(4326);
    }
    let digits = |s: &str| s.trim().parse::<u32>().ok();
    if let Some(code) = digits(&upper) {
        return Some(code);
    }
    if let Some(rest) = upper.strip_prefix("EPSG:") {
        return digits(rest);
    }
    if let Some(rest) = upper.strip_prefix("URN:OGC:DEF:CRS:EPSG:") {
        // urn:ogc:def:crs:EPSG::4326 or urn:ogc:def:crs:EPSG:9.8.15:4326
        return rest.rsplit(':').next().and_then(digits);
    }
    if upper.starts_with("HTTP://") || upper.starts_with("HTTPS://") {
        return upper
            .split_once("/DEF/CRS/EPSG/")
            .and_then(|(_, rest)| rest.rsplit('/').next())
            .and_then(digits);
    }
    // A WKT: the outermost object's authority is the last one in the text.
    let wkt_head = [
        "GEOGCS[",
        "PROJCS[",
        "GEOCCS[",
        "COMPD_CS[",
        "GEOGCRS[",
        "PROJCRS[",
        "GEODCRS[",
        "COMPOUNDCRS[",
        "GEOGRAPHICCRS[",
        "PROJECTEDCRS[",
    ];
    if wkt_head.iter().any(|h| upper.starts_with(h)) {
        let compact: String = upper.chars().filter(|c| !c.is_whitespace()).collect();
        let last = ["AUTHORITY[\"EPSG\",", "ID[\"EPSG\","]
            .iter()
            .filter_map(|key| compact.rfind(key).map(|at| (at, at + key.len())))
            .max()?;
        let rest = &compact[last.1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '"'))
            .unwrap_or(rest.len());
        // The outermost authority closes the text: `...AUTHORITY["EPSG","2154"]]`.
        if rest[end..].trim_start_matches(']').is_empty() {
            return digits(&rest[..end].replace('"', ""));
        }
    }
    None
}

/// The PROJ definition of an EPSG code.
pub fn epsg(code: u32) -> Result<CrsDefinition, String> {
    // The old unofficial code of Web Mercator.
    let code = if code == 900913 { 3857 } else { code };
    let def = u16::try_from(code)
        .ok()
        .and_then(crs_definitions::from_code)
        .ok_or_else(|| {
            format!("unknown CRS EPSG:{code} (not an EPSG code with a PROJ definition)")
        })?;
    Ok(CrsDefinition {
        code: Some(code),
        proj: def.proj4.to_string(),
    })
}

/// The WKT (OGC WKT 1, with its EPSG authority, which GDAL, QGIS and ArcGIS read) of an
/// EPSG code, from the `crs-definitions` tables; `None` for a code they do not hold.
pub fn wkt(code: u32) -> Option<&'static str> {
    let code = if code == 900913 { 3857 } else { code };
    u16::try_from(code)
        .ok()
        .and_then(crs_definitions::from_code)
        .map(|d| d.wkt)
        .filter(|w| !w.is_empty())
}

/// A reader's `crs` parameter: what a [`CrsParam`] names, as an EPSG code (features carry a
/// code). Use with `#[serde(default, deserialize_with = "crate::crs::code")]` and
/// `#[schemars(with = "Option<CrsParam>")]`.
pub fn code<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let param = Option::<CrsParam>::deserialize(d)?;
    param
        .map(|p| required(&p))
        .transpose()
        .map_err(serde::de::Error::custom)
}

/// [`code`] for a parameter with a default (`crs: u32`).
pub fn code_or_default<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let param = CrsParam::deserialize(d)?;
    required(&param).map_err(serde::de::Error::custom)
}

fn required(p: &CrsParam) -> Result<u32, String> {
    let def = p.resolve()?;
    def.code.ok_or_else(|| {
        "a PROJ string has no EPSG code to tag features with; give an EPSG code".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Reader {
        #[serde(default, deserialize_with = "code")]
        crs: Option<u32>,
    }

    #[test]
    fn a_reader_s_crs_takes_the_forms_users_write() {
        for (v, want) in [
            (json!({"crs": 2154}), Some(2154)),
            (json!({"crs": "EPSG:2154"}), Some(2154)),
            (json!({"crs": "urn:ogc:def:crs:EPSG::6677"}), Some(6677)),
            (json!({}), None),
        ] {
            let r: Reader = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(r.crs, want, "{v}");
        }
        for bad in [
            json!({"crs": "EPSG:99999"}),
            json!({"crs": "+proj=longlat"}),
            json!({"crs": "x"}),
        ] {
            assert!(
                serde_json::from_value::<Reader>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
