//! The `.prj` file: the CRS of a shapefile as WKT, in ESRI's dialect (no EPSG authority,
//! ESRI names such as `GCS_WGS_1984`) or OGC's (with an `AUTHORITY["EPSG",...]`).

/// The EPSG code a `.prj` text names: its EPSG authority (OGC WKT), else the outermost
/// name of a known CRS (ESRI or EPSG names); `None` when neither is known.
pub(crate) fn epsg_of(prj: &str) -> Option<u32> {
    let text = prj.trim().trim_start_matches('\u{feff}');
    if let Ok(crate::crs::CrsDefinition { code: Some(c), .. }) =
        crate::crs::CrsParam::Text(text.to_string()).resolve()
    {
        return Some(c);
    }
    code_of_name(&outer_name(text)?)
}

/// The name of the outermost WKT object: `PROJCS["NAME",...` gives `NAME`.
fn outer_name(wkt: &str) -> Option<String> {
    let open = wkt.find('[')?;
    let rest = &wkt[open + 1..];
    let start = rest.find('"')? + 1;
    let len = rest[start..].find('"')?;
    Some(rest[start..start + len].to_string())
}

/// A name upper-cased with every run of other characters than letters and digits as one
/// `_`: `RGF93 v1 / Lambert-93` gives `RGF93_V1_LAMBERT_93`.
fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

const ROMAN: [&str; 19] = [
    "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV",
    "XVI", "XVII", "XVIII", "XIX",
];

/// The EPSG code of a CRS name, ESRI's or EPSG's.
fn code_of_name(name: &str) -> Option<u32> {
    let n = normalise(name);
    let fixed = match n.as_str() {
        "GCS_WGS_1984" | "WGS_84" | "WGS_1984" => Some(4326),
        "WGS_1984_WEB_MERCATOR_AUXILIARY_SPHERE" | "WGS_84_PSEUDO_MERCATOR" => Some(3857),
        "GCS_ETRS_1989" | "ETRS89" => Some(4258),
        "GCS_NORTH_AMERICAN_1983" | "NAD83" => Some(4269),
        "GCS_NORTH_AMERICAN_1927" | "NAD27" => Some(4267),
        "GCS_JGD_2011" | "JGD2011" => Some(6668),
        "GCS_JGD_2000" | "JGD2000" => Some(4612),
        "GCS_RGF_1993" | "RGF93" | "RGF93_V1" => Some(4171),
        "GCS_OSGB_1936" | "OSGB_1936" | "OSGB36" => Some(4277),
        "GCS_GDA_1994" | "GDA94" => Some(4283),
        "GCS_GDA2020" | "GDA2020" => Some(7844),
        "RGF_1993_LAMBERT_93" | "RGF93_LAMBERT_93" | "RGF93_V1_LAMBERT_93" => Some(2154),
        "BRITISH_NATIONAL_GRID"
        | "OSGB_1936_BRITISH_NATIONAL_GRID"
        | "OSGB36_BRITISH_NATIONAL_GRID" => Some(27700),
        "ETRS_1989_LAEA" | "ETRS89_LAEA_EUROPE" | "ETRS89_EXTENDED_LAEA_EUROPE" => Some(3035),
        "ETRS_1989_LCC" | "ETRS89_LCC_EUROPE" | "ETRS89_EXTENDED_LCC_EUROPE" => Some(3034),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    // UTM zones: WGS_1984_UTM_Zone_33N, WGS_84_UTM_ZONE_33N, ETRS_1989_UTM_Zone_32N,
    // ETRS89_UTM_ZONE_32N, NAD_1983_UTM_Zone_18N, NAD83_UTM_ZONE_18N.
    for (prefixes, north, south, zones) in [
        (
            &["WGS_1984_UTM_ZONE_", "WGS_84_UTM_ZONE_"][..],
            32600,
            Some(32700),
            1..=60,
        ),
        (
            &["ETRS_1989_UTM_ZONE_", "ETRS89_UTM_ZONE_"][..],
            25800,
            None,
            28..=38,
        ),
        (
            &["NAD_1983_UTM_ZONE_", "NAD83_UTM_ZONE_"][..],
            26900,
            None,
            1..=23,
        ),
    ] {
        for p in prefixes {
            if let Some(rest) = n.strip_prefix(p) {
                let (digits, hemi) = rest.split_at(rest.len().saturating_sub(1));
                let zone: u32 = digits.parse().ok()?;
                if !zones.contains(&zone) {
                    return None;
                }
                return match hemi {
                    "N" => Some(north + zone),
                    "S" => south.map(|s| s + zone),
                    _ => None,
                };
            }
        }
    }
    // Japan Plane Rectangular CS zones 1 to 19: JGD_2011_Japan_Zone_9 (ESRI),
    // JGD2011_JAPAN_PLANE_RECTANGULAR_CS_IX (EPSG); the same for JGD2000.
    for (esri, epsg, base) in [
        (
            "JGD_2011_JAPAN_ZONE_",
            "JGD2011_JAPAN_PLANE_RECTANGULAR_CS_",
            6668,
        ),
        (
            "JGD_2000_JAPAN_ZONE_",
            "JGD2000_JAPAN_PLANE_RECTANGULAR_CS_",
            2442,
        ),
    ] {
        let zone = if let Some(rest) = n.strip_prefix(esri) {
            rest.parse::<u32>().ok()
        } else if let Some(rest) = n.strip_prefix(epsg) {
            ROMAN.iter().position(|r| *r == rest).map(|i| i as u32 + 1)
        } else {
            continue;
        };
        return zone.filter(|z| (1..=19).contains(z)).map(|z| base + z);
    }
    None
}
