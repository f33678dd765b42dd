//! The dBase (`.dbf`) attribute table of a shapefile, and the text encodings of its
//! strings: a header, field descriptors, then fixed-width records of text.
//!
//! Hand-written rather than through the `dbase` crate because every value must come back
//! exactly as written: numbers are kept as their text until it is known whether they are
//! integers (the crate parses every numeric field to `f64`, losing integers past 2^53), and
//! every bad byte must give a message naming the record and the field.

use std::borrow::Cow;

use encoding_rs::Encoding;
use sluice_runtime::Value;

/// Bytes of the fixed part of the header.
pub(crate) const HEADER_LEN: usize = 32;
/// Bytes of one field descriptor.
pub(crate) const FIELD_LEN: usize = 32;
/// Ends the field descriptors.
pub(crate) const TERMINATOR: u8 = 0x0d;
/// Ends the file (optional when reading).
pub(crate) const END_OF_FILE: u8 = 0x1a;

/// The code page 437 characters of bytes 0x80..=0xFF (encoding_rs has no DOS code pages).
const CP437: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";
/// The code page 850 characters of bytes 0x80..=0xFF.
const CP850: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜø£Ø×ƒáíóúñÑªº¿®¬½¼¡«»░▒▓│┤ÁÂÀ©╣║╗╝¢¥┐└┴┬├─┼ãÃ╚╔╩╦╠═╬¤ðÐÊËÈıÍÎÏ┘┌█▄¦Ì▀ÓßÔÒõÕµþÞÚÛÙýÝ¯´\u{ad}±‗¾¶§÷¸°¨·¹³²■\u{a0}";

/// How the strings of a `.dbf` are encoded.
#[derive(Debug, Clone)]
pub(crate) struct Codec {
    kind: CodecKind,
}

#[derive(Debug, Clone)]
enum CodecKind {
    /// No encoding declared: UTF-8, and a value that is not valid UTF-8 is read as
    /// windows-1252 (Latin-1's superset), value by value.
    Guess,
    /// An encoding of the WHATWG set (UTF-8, Shift_JIS, windows-125x, ISO-8859-x, ...).
    Rs(&'static Encoding),
    /// A DOS code page: the characters of bytes 0x80..=0xFF, and its number.
    Table(Box<[char; 128]>, u16),
}

/// What decoding one value did besides decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Decoded as the encoding says.
    Exact,
    /// Not valid in the encoding: bad bytes were replaced with U+FFFD.
    Replaced,
    /// No encoding declared and not UTF-8: read as windows-1252.
    Latin,
}

impl Codec {
    /// The rule when nothing declares an encoding.
    pub(crate) fn guess() -> Codec {
        Codec {
            kind: CodecKind::Guess,
        }
    }

    /// UTF-8.
    pub(crate) fn utf8() -> Codec {
        Codec {
            kind: CodecKind::Rs(encoding_rs::UTF_8),
        }
    }

    fn table(chars: &str, number: u16) -> Codec {
        let mut t = ['\0'; 128];
        for (slot, c) in t.iter_mut().zip(chars.chars()) {
            *slot = c;
        }
        Codec {
            kind: CodecKind::Table(Box::new(t), number),
        }
    }

    /// An encoding by name, as users and `.cpg` files write it: a WHATWG label (`UTF-8`,
    /// `Shift_JIS`, `sjis`, `latin1`, `windows-1252`, `ISO-8859-15`, `GBK`, `EUC-KR`...), a
    /// Windows code page number (`932`, `1252`, `CP1252`, `ANSI 1252`, `65001`), `8859x`
    /// (`88591`) or a DOS code page (`437`, `850`, `cp437`, `IBM850`).
    pub(crate) fn by_name(name: &str) -> Option<Codec> {
        let upper = name.trim().to_ascii_uppercase();
        let mut digits = upper.as_str();
        for prefix in ["ANSI ", "OEM ", "CP", "WINDOWS-", "IBM", "MS"] {
            if let Some(rest) = digits.strip_prefix(prefix) {
                digits = rest.trim();
            }
        }
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return digits.parse().ok().and_then(Codec::by_code_page);
        }
        if matches!(upper.as_str(), "UTF8" | "UTF-8") {
            return Some(Codec::utf8());
        }
        let enc = Encoding::for_label(upper.as_bytes())?;
        // UTF-16 cannot hold fixed-width single-byte fields; `replacement` decodes nothing.
        if enc == encoding_rs::UTF_16LE
            || enc == encoding_rs::UTF_16BE
            || enc == encoding_rs::REPLACEMENT
        {
            return None;
        }
        Some(Codec {
            kind: CodecKind::Rs(enc),
        })
    }

    /// A Windows / DOS code page number.
    pub(crate) fn by_code_page(cp: u32) -> Option<Codec> {
        let label = match cp {
            437 => return Some(Codec::table(CP437, 437)),
            850 => return Some(Codec::table(CP850, 850)),
            65001 => return Some(Codec::utf8()),
            866 => "IBM866",
            874 => "windows-874",
            932 => "Shift_JIS",
            936 => "GBK",
            949 => "EUC-KR",
            950 => "Big5",
            1250..=1258 => return Codec::label(&format!("windows-{cp}")),
            10000 => "macintosh",
            20866 => "KOI8-R",
            21866 => "KOI8-U",
            28591..=28599 => return Codec::label(&format!("ISO-8859-{}", cp - 28590)),
            28605 => "ISO-8859-15",
            // `88591`: ISO-8859-1 as GDAL writes it in `.cpg` files.
            88591..=88599 => return Codec::label(&format!("ISO-8859-{}", cp - 88590)),
            885910..=885916 => return Codec::label(&format!("ISO-8859-{}", cp - 885900)),
            _ => return None,
        };
        Codec::label(label)
    }

    /// A WHATWG encoding label (never a code page number: no recursion).
    fn label(label: &str) -> Option<Codec> {
        Encoding::for_label(label.as_bytes()).map(|e| Codec {
            kind: CodecKind::Rs(e),
        })
    }

    /// The code page a `.dbf` language driver id (header byte 29) names, as GDAL maps them;
    /// `None` for 0 (none declared) and ids not listed.
    pub(crate) fn ldid_code_page(ldid: u8) -> Option<u32> {
        Some(match ldid {
            0x01 | 0x09 | 0x0b | 0x0d | 0x0f | 0x11 | 0x15 | 0x18 | 0x19 | 0x1b => 437,
            0x02 | 0x0a | 0x0e | 0x10 | 0x12 | 0x14 | 0x16 | 0x1a | 0x1d | 0x25 | 0x37 => 850,
            0x03 | 0x57 | 0x58 | 0x59 => 1252,
            0x04 => 10000,
            0x08 | 0x17 | 0x66 => 865,
            0x13 | 0x7b => 932,
            0x1c | 0x6c => 863,
            0x1f | 0x22 | 0x23 | 0x40 | 0x64 | 0x87 => 852,
            0x24 => 860,
            0x26 | 0x65 => 866,
            0x4d | 0x7a => 936,
            0x4e | 0x79 => 949,
            0x4f | 0x78 => 950,
            0x50 | 0x7c => 874,
            0x67 => 861,
            0x6a | 0x86 => 737,
            0x6b | 0x88 => 857,
            0x96 => 10007,
            0x97 => 10029,
            0xc8 => 1250,
            0xc9 => 1251,
            0xca => 1254,
            0xcb => 1253,
            0xcc => 1257,
            _ => return None,
        })
    }

    /// The name written to a `.cpg` file: `UTF-8`, or the Windows code page number GDAL
    /// and ArcGIS both read (`932`, `1252`), or `8859x` for ISO-8859 (`88591`).
    pub(crate) fn cpg_name(&self) -> String {
        match &self.kind {
            CodecKind::Guess => "UTF-8".into(),
            CodecKind::Table(_, n) => n.to_string(),
            CodecKind::Rs(e) => {
                let name = e.name();
                match name {
                    "UTF-8" => "UTF-8".into(),
                    "Shift_JIS" => "932".into(),
                    "GBK" | "gb18030" => "936".into(),
                    "EUC-KR" => "949".into(),
                    "Big5" => "950".into(),
                    "IBM866" => "866".into(),
                    _ => {
                        if let Some(n) = name.strip_prefix("windows-") {
                            n.into()
                        } else if let Some(n) = name.strip_prefix("ISO-8859-") {
                            format!("8859{n}")
                        } else {
                            name.into()
                        }
                    }
                }
            }
        }
    }

    /// The language driver id written in the `.dbf` header (0: none, the `.cpg` says).
    pub(crate) fn ldid(&self) -> u8 {
        match &self.kind {
            CodecKind::Table(_, 437) => 0x01,
            CodecKind::Table(_, 850) => 0x02,
            CodecKind::Rs(e) if *e == encoding_rs::WINDOWS_1252 => 0x57,
            CodecKind::Rs(e) if *e == encoding_rs::SHIFT_JIS => 0x13,
            _ => 0,
        }
    }

    /// The encoding's name, for messages.
    pub(crate) fn name(&self) -> String {
        match &self.kind {
            CodecKind::Guess => "UTF-8 (or windows-1252 for a value that is not UTF-8)".into(),
            CodecKind::Rs(e) => e.name().into(),
            CodecKind::Table(_, n) => format!("code page {n}"),
        }
    }

    /// Decodes a value's bytes.
    pub(crate) fn decode<'a>(&self, bytes: &'a [u8]) -> (Cow<'a, str>, Decoded) {
        if bytes.is_ascii() {
            // ASCII is the same in every encoding offered here.
            if let Ok(s) = std::str::from_utf8(bytes) {
                return (Cow::Borrowed(s), Decoded::Exact);
            }
        }
        match &self.kind {
            CodecKind::Guess => match std::str::from_utf8(bytes) {
                Ok(s) => (Cow::Borrowed(s), Decoded::Exact),
                Err(_) => {
                    let (s, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
                    (s, Decoded::Latin)
                }
            },
            CodecKind::Rs(e) => {
                let (s, bad) = e.decode_without_bom_handling(bytes);
                (
                    s,
                    if bad {
                        Decoded::Replaced
                    } else {
                        Decoded::Exact
                    },
                )
            }
            CodecKind::Table(t, _) => (
                Cow::Owned(
                    bytes
                        .iter()
                        .map(|&b| {
                            if b < 128 {
                                b as char
                            } else {
                                t[b as usize - 128]
                            }
                        })
                        .collect(),
                ),
                Decoded::Exact,
            ),
        }
    }

    /// Encodes a value; `Err` with the first character the encoding cannot hold.
    pub(crate) fn encode<'a>(&self, s: &'a str) -> Result<Cow<'a, [u8]>, char> {
        if s.is_ascii() {
            return Ok(Cow::Borrowed(s.as_bytes()));
        }
        match &self.kind {
            CodecKind::Guess => Ok(Cow::Borrowed(s.as_bytes())),
            CodecKind::Rs(e) if *e == encoding_rs::UTF_8 => Ok(Cow::Borrowed(s.as_bytes())),
            CodecKind::Rs(e) => {
                let mut enc = e.new_encoder();
                let mut out = Vec::with_capacity(s.len() * 2);
                for (i, c) in s.char_indices() {
                    let piece = &s[i..i + c.len_utf8()];
                    let mut buf = [0u8; 8];
                    let (result, _, written) =
                        enc.encode_from_utf8_without_replacement(piece, &mut buf, false);
                    match result {
                        encoding_rs::EncoderResult::InputEmpty => {
                            out.extend_from_slice(&buf[..written])
                        }
                        _ => return Err(c),
                    }
                }
                Ok(Cow::Owned(out))
            }
            CodecKind::Table(t, _) => s
                .chars()
                .map(|c| {
                    if (c as u32) < 128 {
                        Ok(c as u8)
                    } else {
                        t.iter()
                            .position(|x| *x == c)
                            .map(|i| (i + 128) as u8)
                            .ok_or(c)
                    }
                })
                .collect::<Result<Vec<u8>, char>>()
                .map(Cow::Owned),
        }
    }
}

/// One field of the table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// Its name (decoded, made unique within the table).
    pub name: String,
    /// The type letter (`C`, `N`, `F`, `L`, `D`, ...).
    pub kind: u8,
    /// Bytes in a record.
    pub width: usize,
    /// Digits after the decimal point (numeric fields).
    pub decimals: usize,
}

/// Reads the fixed part of the header: records, header length, record length, language
/// driver id.
pub(crate) fn read_fixed(b: &[u8; HEADER_LEN]) -> Result<(u32, usize, usize, u8), String> {
    let records = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let header_len = u16::from_le_bytes([b[8], b[9]]) as usize;
    let record_len = u16::from_le_bytes([b[10], b[11]]) as usize;
    if header_len < HEADER_LEN + 1 {
        return Err(format!(
            "not a dBase file: the header length is {header_len} bytes"
        ));
    }
    if record_len == 0 {
        return Err("not a dBase file: the record length is 0".into());
    }
    Ok((records, header_len, record_len, b[29]))
}

/// Reads the field descriptors (`rest`: the header after its first 32 bytes).
pub(crate) fn read_fields(
    rest: &[u8],
    record_len: usize,
    codec: &Codec,
) -> Result<Vec<Field>, String> {
    let mut fields: Vec<Field> = Vec::new();
    for d in rest.chunks(FIELD_LEN) {
        if d[0] == TERMINATOR {
            break;
        }
        if d.len() < FIELD_LEN {
            return Err("the field descriptors have no terminator (0x0D)".into());
        }
        let raw = &d[..11];
        let raw = &raw[..raw.iter().position(|b| *b == 0).unwrap_or(raw.len())];
        let (name, _) = codec.decode(raw);
        let kind = d[11].to_ascii_uppercase();
        let (width, decimals) = match kind {
            b'N' | b'F' => (d[16] as usize, d[17] as usize),
            // Long character fields keep the high byte of the width in the decimals byte.
            _ => (d[16] as usize + 256 * d[17] as usize, 0),
        };
        if width == 0 {
            return Err(format!("field \"{}\" has a width of 0", name.trim()));
        }
        let mut name = name.trim().to_string();
        if name.is_empty() {
            name = format!("FIELD_{}", fields.len() + 1);
        }
        let base = name.clone();
        let mut n = 1;
        while fields.iter().any(|f| f.name == name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        fields.push(Field {
            name,
            kind,
            width,
            decimals,
        });
    }
    let sum: usize = 1 + fields.iter().map(|f| f.width).sum::<usize>();
    if sum > record_len {
        return Err(format!(
            "the fields take {sum} bytes but a record is {record_len} bytes"
        ));
    }
    Ok(fields)
}

/// A field's value from its bytes in a record. `Err` says what is wrong with it.
pub(crate) fn value(
    field: &Field,
    raw: &[u8],
    codec: &Codec,
    decoded: &mut Decoded,
) -> Result<Value, String> {
    let text = || {
        let t = trim_end(raw);
        std::str::from_utf8(t).map_err(|_| "not ASCII text".to_string())
    };
    match field.kind {
        b'N' | b'F' => {
            let t = text()?.trim_start();
            if t.is_empty() || t.starts_with('*') {
                return Ok(Value::Null);
            }
            if field.decimals == 0
                && let Ok(i) = t.parse::<i64>()
            {
                return Ok(Value::Int(i));
            }
            t.parse::<f64>()
                .map(Value::Float)
                .map_err(|_| format!("\"{t}\" is not a number"))
        }
        b'L' => match raw.first().copied().unwrap_or(b' ') {
            b'Y' | b'y' | b'T' | b't' => Ok(Value::Bool(true)),
            b'N' | b'n' | b'F' | b'f' => Ok(Value::Bool(false)),
            b'?' | b' ' | 0 => Ok(Value::Null),
            other => Err(format!("{:?} is not a logical value", other as char)),
        },
        b'D' => {
            let t = text()?.trim();
            if t.is_empty() || t.bytes().all(|b| b == b'0') {
                return Ok(Value::Null);
            }
            date(t).ok_or_else(|| format!("\"{t}\" is not a date (YYYYMMDD)"))
        }
        // Visual FoxPro binary integers and doubles.
        b'I' if raw.len() == 4 => Ok(Value::Int(i64::from(i32::from_le_bytes([
            raw[0], raw[1], raw[2], raw[3],
        ])))),
        b'O' if raw.len() == 8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(raw);
            Ok(Value::Float(f64::from_le_bytes(a)))
        }
        // `C` and every other type: text, trailing blanks dropped; all blank is null.
        _ => {
            let t = trim_end(raw);
            if t.is_empty() {
                return Ok(Value::Null);
            }
            let (s, how) = codec.decode(t);
            if how != Decoded::Exact && *decoded == Decoded::Exact {
                *decoded = how;
            }
            Ok(Value::String(s.into()))
        }
    }
}

/// `raw` without trailing blanks and NULs.
fn trim_end(raw: &[u8]) -> &[u8] {
    let end = raw
        .iter()
        .rposition(|b| *b != b' ' && *b != 0)
        .map_or(0, |i| i + 1);
    &raw[..end]
}

/// `YYYYMMDD` as days since 1970-01-01.
fn date(t: &str) -> Option<Value> {
    if t.len() != 8 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i32 = t[0..4].parse().ok()?;
    let m: u32 = t[4..6].parse().ok()?;
    let d: u32 = t[6..8].parse().ok()?;
    let date = chrono::NaiveDate::from_ymd_opt(y, m, d)?;
    Some(Value::Date(
        chrono::Datelike::num_days_from_ce(&date) - 719_163,
    ))
}

/// A date (days since 1970-01-01) as `YYYYMMDD`, for years 0 to 9999.
pub(crate) fn date_text(days: i32) -> Option<String> {
    let date = chrono::NaiveDate::from_num_days_from_ce_opt(days.checked_add(719_163)?)?;
    let y = chrono::Datelike::year(&date);
    (0..=9999)
        .contains(&y)
        .then(|| date.format("%Y%m%d").to_string())
}

/// The fixed part of a header for writing.
pub(crate) fn write_fixed(
    records: u32,
    header_len: u16,
    record_len: u16,
    ldid: u8,
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = 0x03; // dBase III, no memo
    // The date of last update: 1995-07-26, as shapelib (GDAL) writes it, so the same
    // input always gives the same bytes.
    h[1] = 95;
    h[2] = 7;
    h[3] = 26;
    h[4..8].copy_from_slice(&records.to_le_bytes());
    h[8..10].copy_from_slice(&header_len.to_le_bytes());
    h[10..12].copy_from_slice(&record_len.to_le_bytes());
    h[29] = ldid;
    h
}

/// A field descriptor for writing (`name`: at most 10 bytes, already encoded).
pub(crate) fn write_field(name: &[u8], kind: u8, width: usize, decimals: usize) -> [u8; FIELD_LEN] {
    let mut d = [0u8; FIELD_LEN];
    let n = name.len().min(10);
    d[..n].copy_from_slice(&name[..n]);
    d[11] = kind;
    if kind == b'C' {
        d[16] = (width % 256) as u8;
        d[17] = (width / 256) as u8;
    } else {
        d[16] = width.min(255) as u8;
        d[17] = decimals.min(255) as u8;
    }
    d
}
