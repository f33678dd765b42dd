//! Deterministic sample data: the W1 benchmark table.
//!
//! W1 has seven columns `id,name,category,x,y,value,ts`; 2,000,000 rows are about 160 MB.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// A small deterministic generator (SplitMix64), so data is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const CATEGORIES: [&str; 6] = ["park", "lake", "road", "building", "forest", "river"];

/// Writes `rows` W1 rows (with header) to `out`, seeded by `seed`.
pub fn w1(rows: u64, seed: u64, out: &mut impl Write) -> io::Result<()> {
    let mut rng = Rng(seed);
    writeln!(out, "id,name,category,x,y,value,ts")?;
    let base = 1_704_067_200i64; // 2024-01-01T00:00:00Z
    for id in 0..rows {
        let cat = CATEGORIES[(rng.next() % CATEGORIES.len() as u64) as usize];
        let x = -180.0 + 360.0 * rng.unit();
        let y = -90.0 + 180.0 * rng.unit();
        let value = (rng.unit() * 100_000.0).round() / 100.0;
        let secs = base + (rng.next() % 31_536_000) as i64;
        let ts = chrono_like(secs);
        writeln!(out, "{id},name_{id},{cat},{x:.6},{y:.6},{value},{ts}")?;
    }
    Ok(())
}

/// Writes `rows` W1 rows, seeded by `seed`, to the CSV file `out`, making its folder if
/// needed: to a `.csv.partial` sibling first, renamed into place once complete. Errors name
/// the file and what was being done to it.
pub fn w1_file(out: &Path, rows: u64, seed: u64) -> io::Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| naming(e, "creating", dir))?;
    }
    let tmp = out.with_extension("csv.partial");
    let file = File::create(&tmp).map_err(|e| naming(e, "creating", &tmp))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w1(rows, seed, &mut w).map_err(|e| naming(e, "writing", &tmp))?;
    w.flush()?;
    std::fs::rename(&tmp, out).map_err(|e| naming(e, "renaming into", out))
}

/// `e`, its message prefixed with what was being done to which file.
fn naming(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time in 2024 (days-from-civil, no time zone table).
fn chrono_like(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w1_is_deterministic_and_well_formed() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        w1(100, 7, &mut a).unwrap();
        w1(100, 7, &mut b).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 101);
        assert!(lines.iter().all(|l| l.split(',').count() == 7));
        assert_eq!(chrono_like(1_704_067_200), "2024-01-01T00:00:00Z");
        assert_eq!(chrono_like(1_709_210_096), "2024-02-29T12:34:56Z");
    }
}
