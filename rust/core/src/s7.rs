//! Siemens S7 data decoding: big-endian bytes of a PLC memory area in, typed values out.
//!
//! S7 addresses bytes (`DB1.DBD0` is the four bytes from byte 0 of data block 1), and
//! every multi-byte value is big-endian, so an [`S7Plan`] is a list of tags at byte
//! offsets (and a bit for `BOOL`) decoded from one block read. It is the byte-addressed
//! sibling of [`crate::decode::Plan`], with the same discipline: no panics, every
//! malformed value reported for its own tag while the others decode.
//!
//! Value mapping (types as TIA Portal names them):
//!
//! | type | bytes | value |
//! |---|---|---|
//! | `BOOL` | 1 (one bit) | bool |
//! | `BYTE`, `WORD`, `DWORD`, `USINT`…: `UINT`, `UDINT` | 1, 2, 4 | unsigned int |
//! | `SINT`, `INT`, `DINT` | 1, 2, 4 | signed int |
//! | `REAL`, `LREAL` | 4, 8 | float (IEEE 754 as sent, NaN included) |
//! | `CHAR` | 1 | one Latin-1 character |
//! | `STRING[n]` | n + 2 | Latin-1 text of the current length (header: max, current) |
//! | `WSTRING[n]` | 2n + 4 | UTF-16BE text of the current length (header: max, current) |
//! | `S5TIME` | 2 | seconds (BCD count × time base) |
//! | `TIME` | 4 | seconds (signed milliseconds) |
//! | `TIME_OF_DAY` | 4 | seconds since midnight (milliseconds, below 24 h) |
//! | `DATE` | 2 | ISO date text (days since 1990-01-01) |
//! | `DATE_AND_TIME` | 8 | ISO date-time text, milliseconds (BCD, years 1990–2089) |
//! | `DTL` | 12 | ISO date-time text, nanoseconds |
//!
//! Dates carry no time zone: they are the PLC's local clock, as the PLC gave them.

use thiserror::Error;

/// An S7 data type with its size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S7Type {
    Bool,
    Byte,
    Word,
    Dword,
    Sint,
    Int,
    Dint,
    Usint,
    Uint,
    Udint,
    Real,
    Lreal,
    Char,
    /// Maximum length in characters, 1..=254.
    String(u16),
    /// Maximum length in characters, 1..=16382.
    WString(u16),
    S5Time,
    Time,
    Date,
    TimeOfDay,
    DateAndTime,
    Dtl,
}

/// A type name that is not an S7 type, or a string length out of range.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum S7TypeError {
    #[error("unknown S7 type {0:?} (BOOL, BYTE, WORD, DWORD, SINT, INT, DINT, USINT, UINT, UDINT, REAL, LREAL, CHAR, STRING[n], WSTRING[n], S5TIME, TIME, DATE, TIME_OF_DAY, DATE_AND_TIME, DTL)")]
    Unknown(String),
    #[error("{ty} needs a length in 1..={max}, got {got:?}")]
    Length {
        ty: &'static str,
        max: u16,
        got: String,
    },
    #[error("tag {tag:?}: bit {bit} outside 0..=7")]
    Bit { tag: String, bit: u8 },
    #[error("tag {tag:?}: only BOOL has a bit")]
    BitOnNonBool { tag: String },
    #[error("tag {tag:?}: byte offset {offset} + {size} bytes passes 4294967295")]
    Offset { tag: String, offset: u32, size: u32 },
}

/// Why one tag could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum S7DecodeError {
    #[error("tag {tag:?}: needs bytes {start}..{end}, the block has {got} from {base}")]
    OutOfBlock {
        tag: String,
        start: u64,
        end: u64,
        base: u64,
        got: usize,
    },
    #[error("tag {tag:?}: {what}")]
    Invalid { tag: String, what: String },
}

impl S7Type {
    /// Parse a type name (`REAL`, `STRING[20]`, `time_of_day`, `TOD`, `DT`); case-insensitive.
    pub fn parse(name: &str) -> Result<S7Type, S7TypeError> {
        let upper = name.trim().to_ascii_uppercase();
        if let Some(rest) = upper.strip_prefix("WSTRING") {
            return Ok(S7Type::WString(length_of(rest, "WSTRING", 16382)?));
        }
        if let Some(rest) = upper.strip_prefix("STRING") {
            return Ok(S7Type::String(length_of(rest, "STRING", 254)?));
        }
        Ok(match upper.as_str() {
            "BOOL" => S7Type::Bool,
            "BYTE" => S7Type::Byte,
            "WORD" => S7Type::Word,
            "DWORD" => S7Type::Dword,
            "SINT" => S7Type::Sint,
            "INT" => S7Type::Int,
            "DINT" => S7Type::Dint,
            "USINT" => S7Type::Usint,
            "UINT" => S7Type::Uint,
            "UDINT" => S7Type::Udint,
            "REAL" => S7Type::Real,
            "LREAL" => S7Type::Lreal,
            "CHAR" => S7Type::Char,
            "S5TIME" => S7Type::S5Time,
            "TIME" => S7Type::Time,
            "DATE" => S7Type::Date,
            "TIME_OF_DAY" | "TOD" => S7Type::TimeOfDay,
            "DATE_AND_TIME" | "DT" => S7Type::DateAndTime,
            "DTL" => S7Type::Dtl,
            _ => return Err(S7TypeError::Unknown(name.to_string())),
        })
    }

    /// Bytes a value occupies in PLC memory.
    pub fn size(self) -> u32 {
        match self {
            S7Type::Bool | S7Type::Byte | S7Type::Sint | S7Type::Usint | S7Type::Char => 1,
            S7Type::Word | S7Type::Int | S7Type::Uint | S7Type::S5Time | S7Type::Date => 2,
            S7Type::Dword
            | S7Type::Dint
            | S7Type::Udint
            | S7Type::Real
            | S7Type::Time
            | S7Type::TimeOfDay => 4,
            S7Type::Lreal | S7Type::DateAndTime => 8,
            S7Type::Dtl => 12,
            S7Type::String(n) => u32::from(n) + 2,
            S7Type::WString(n) => 2 * u32::from(n) + 4,
        }
    }
}

fn length_of(rest: &str, ty: &'static str, max: u16) -> Result<u16, S7TypeError> {
    let bad = || S7TypeError::Length {
        ty,
        max,
        got: rest.to_string(),
    };
    // a bare STRING is the S7 default of 254 characters (WSTRING likewise)
    if rest.is_empty() {
        return Ok(254);
    }
    let inner = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(bad)?;
    let n: u16 = inner.trim().parse().map_err(|_| bad())?;
    if n == 0 || n > max {
        return Err(bad());
    }
    Ok(n)
}

/// One tag: a type at a byte offset (and a bit, for `BOOL`).
#[derive(Clone, Debug, PartialEq)]
pub struct S7Field {
    pub name: String,
    pub offset: u32,
    pub bit: u8,
    pub ty: S7Type,
}

impl S7Field {
    /// A validated field.
    pub fn new(name: &str, offset: u32, ty: S7Type, bit: u8) -> Result<S7Field, S7TypeError> {
        if bit > 7 {
            return Err(S7TypeError::Bit {
                tag: name.to_string(),
                bit,
            });
        }
        if bit != 0 && ty != S7Type::Bool {
            return Err(S7TypeError::BitOnNonBool {
                tag: name.to_string(),
            });
        }
        if offset.checked_add(ty.size()).is_none() {
            return Err(S7TypeError::Offset {
                tag: name.to_string(),
                offset,
                size: ty.size(),
            });
        }
        Ok(S7Field {
            name: name.to_string(),
            offset,
            bit,
            ty,
        })
    }
}

/// A decoded S7 value.
#[derive(Clone, Debug, PartialEq)]
pub enum S7Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// Tags decoded together from one block of bytes.
#[derive(Clone, Debug, Default)]
pub struct S7Plan {
    fields: Vec<S7Field>,
}

impl S7Plan {
    pub fn new(fields: Vec<S7Field>) -> S7Plan {
        S7Plan { fields }
    }

    pub fn fields(&self) -> &[S7Field] {
        &self.fields
    }

    /// Decode every tag from `data`, whose first byte is at offset `base`. One
    /// result per tag, in order: a tag outside the block or with malformed bytes
    /// is an error of its own and does not affect the others.
    pub fn decode(&self, data: &[u8], base: u32) -> Vec<Result<S7Value, S7DecodeError>> {
        self.fields
            .iter()
            .map(|f| decode_field(f, data, base))
            .collect()
    }

    /// Like [`S7Plan::decode`], handing each result to `sink` instead of collecting.
    pub fn decode_each<F>(&self, data: &[u8], base: u32, mut sink: F)
    where
        F: FnMut(usize, Result<S7Value, S7DecodeError>),
    {
        for (i, f) in self.fields.iter().enumerate() {
            sink(i, decode_field(f, data, base));
        }
    }
}

/// Decode one field from `data` starting at byte offset `base`.
pub fn decode_field(f: &S7Field, data: &[u8], base: u32) -> Result<S7Value, S7DecodeError> {
    let size = f.ty.size() as usize;
    let bytes = f
        .offset
        .checked_sub(base)
        .map(|rel| rel as usize)
        .and_then(|rel| data.get(rel..rel.checked_add(size)?))
        .ok_or_else(|| S7DecodeError::OutOfBlock {
            tag: f.name.clone(),
            start: u64::from(f.offset),
            end: u64::from(f.offset) + size as u64,
            base: u64::from(base),
            got: data.len(),
        })?;
    decode_bytes(f, bytes).map_err(|what| S7DecodeError::Invalid {
        tag: f.name.clone(),
        what,
    })
}

fn be<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, v) in out.iter_mut().zip(b) {
        *o = *v;
    }
    out
}

/// `bytes` is exactly `f.ty.size()` long (checked by the caller).
fn decode_bytes(f: &S7Field, b: &[u8]) -> Result<S7Value, String> {
    use S7Value::{Bool, Float, Int, Text};
    let first = b.first().copied().unwrap_or(0);
    Ok(match f.ty {
        S7Type::Bool => Bool((first >> f.bit) & 1 == 1),
        S7Type::Byte | S7Type::Usint => Int(i64::from(first)),
        S7Type::Sint => Int(i64::from(first as i8)),
        S7Type::Char => Text(char::from(first).to_string()),
        S7Type::Word | S7Type::Uint => Int(i64::from(u16::from_be_bytes(be(b)))),
        S7Type::Int => Int(i64::from(i16::from_be_bytes(be(b)))),
        S7Type::Dword | S7Type::Udint => Int(i64::from(u32::from_be_bytes(be(b)))),
        S7Type::Dint => Int(i64::from(i32::from_be_bytes(be(b)))),
        S7Type::Real => Float(f64::from(f32::from_be_bytes(be(b)))),
        S7Type::Lreal => Float(f64::from_be_bytes(be(b))),
        S7Type::Time => Float(f64::from(i32::from_be_bytes(be(b))) / 1000.0),
        S7Type::TimeOfDay => {
            let ms = u32::from_be_bytes(be(b));
            if ms >= 86_400_000 {
                return Err(format!("TIME_OF_DAY {ms} ms is not below 24 h"));
            }
            Float(f64::from(ms) / 1000.0)
        }
        S7Type::S5Time => Float(s5time(u16::from_be_bytes(be(b)))?),
        S7Type::Date => {
            let days = u16::from_be_bytes(be(b));
            // the S7 range ends at D#2168-12-31 (day 65378)
            if days > 65378 {
                return Err(format!("DATE day {days} is after 2168-12-31"));
            }
            let (y, m, d) = civil_from_days(DAYS_1990 + i64::from(days));
            Text(format!("{y:04}-{m:02}-{d:02}"))
        }
        S7Type::DateAndTime => Text(date_and_time(b)?),
        S7Type::Dtl => Text(dtl(b)?),
        S7Type::String(n) => {
            let max = first;
            let cur = b.get(1).copied().unwrap_or(0);
            if max == 255 {
                return Err("STRING header maximum 255 is not a string (at most 254)".into());
            }
            if cur > max || u16::from(cur) > n {
                return Err(format!(
                    "STRING current length {cur} exceeds its maximum {}",
                    u16::from(max).min(n)
                ));
            }
            let text = b.get(2..2 + usize::from(cur)).unwrap_or(&[]);
            Text(text.iter().map(|&c| char::from(c)).collect())
        }
        S7Type::WString(n) => {
            let max = u16::from_be_bytes(be(b));
            let cur = u16::from_be_bytes(be(b.get(2..).unwrap_or(&[])));
            if max > 16382 {
                return Err(format!(
                    "WSTRING header maximum {max} is not a string (at most 16382)"
                ));
            }
            if cur > max || cur > n {
                return Err(format!(
                    "WSTRING current length {cur} exceeds its maximum {}",
                    max.min(n)
                ));
            }
            let units = b
                .get(4..4 + 2 * usize::from(cur))
                .unwrap_or(&[])
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes(be(p)));
            let text: Result<String, _> = char::decode_utf16(units).collect();
            Text(text.map_err(|e| format!("WSTRING is not valid UTF-16: {e}"))?)
        }
    })
}

fn bcd(byte: u8, what: &str) -> Result<u32, String> {
    let (hi, lo) = (byte >> 4, byte & 0x0F);
    if hi > 9 || lo > 9 {
        return Err(format!("{what}: byte 0x{byte:02X} is not BCD"));
    }
    Ok(u32::from(hi) * 10 + u32::from(lo))
}

fn s5time(w: u16) -> Result<f64, String> {
    let base_code = w >> 12;
    let base_ms = match base_code {
        0 => 10.0,
        1 => 100.0,
        2 => 1000.0,
        3 => 10000.0,
        _ => {
            return Err(format!(
                "S5TIME 0x{w:04X}: time base nibble {base_code} > 3"
            ))
        }
    };
    let digits = [(w >> 8) & 0xF, (w >> 4) & 0xF, w & 0xF];
    if digits.iter().any(|&d| d > 9) {
        return Err(format!("S5TIME 0x{w:04X}: count is not BCD"));
    }
    let count = digits.iter().fold(0u32, |acc, &d| acc * 10 + u32::from(d));
    Ok(f64::from(count) * base_ms / 1000.0)
}

/// Days from 1970-01-01 to 1990-01-01.
const DAYS_1990: i64 = 7305;

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn check_clock(what: &str, y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Result<(), String> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return Err(format!("{what}: no such date {y:04}-{mo:02}-{d:02}"));
    }
    if h > 23 || mi > 59 || s > 59 {
        return Err(format!("{what}: no such time {h:02}:{mi:02}:{s:02}"));
    }
    Ok(())
}

fn date_and_time(b: &[u8]) -> Result<String, String> {
    let w = "DATE_AND_TIME";
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let yy = bcd(at(0), w)?;
    let y = if yy < 90 { 2000 + yy } else { 1900 + yy };
    let (mo, d, h, mi, s) = (
        bcd(at(1), w)?,
        bcd(at(2), w)?,
        bcd(at(3), w)?,
        bcd(at(4), w)?,
        bcd(at(5), w)?,
    );
    let ms_hi = bcd(at(6), w)?;
    let ms_lo = u32::from(at(7) >> 4);
    if ms_lo > 9 {
        return Err(format!("{w}: byte 0x{:02X} is not BCD", at(7)));
    }
    check_clock(w, y, mo, d, h, mi, s)?;
    let ms = ms_hi * 10 + ms_lo;
    Ok(format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}",
        ms * 1000
    ))
}

fn dtl(b: &[u8]) -> Result<String, String> {
    let at = |i: usize| u32::from(b.get(i).copied().unwrap_or(0));
    let y = u32::from(u16::from_be_bytes(be(b)));
    let (mo, d, h, mi, s) = (at(2), at(3), at(5), at(6), at(7));
    let ns = u32::from_be_bytes(be(b.get(8..).unwrap_or(&[])));
    if !(1970..=2554).contains(&y) {
        return Err(format!("DTL: year {y} outside 1970..2554"));
    }
    check_clock("DTL", y, mo, d, h, mi, s)?;
    if ns > 999_999_999 {
        return Err(format!("DTL: {ns} nanoseconds is not below one second"));
    }
    Ok(format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ns:09}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(ty: &str, offset: u32, bit: u8) -> S7Field {
        S7Field::new("t", offset, S7Type::parse(ty).unwrap(), bit).unwrap()
    }

    fn one(ty: &str, bytes: &[u8]) -> Result<S7Value, S7DecodeError> {
        decode_field(&field(ty, 0, 0), bytes, 0)
    }

    #[test]
    fn parses_types_and_sizes() {
        assert_eq!(S7Type::parse("real").unwrap(), S7Type::Real);
        assert_eq!(S7Type::parse("STRING[20]").unwrap().size(), 22);
        assert_eq!(S7Type::parse("WSTRING[10]").unwrap().size(), 24);
        assert_eq!(S7Type::parse("STRING").unwrap(), S7Type::String(254));
        assert_eq!(S7Type::parse("TOD").unwrap(), S7Type::TimeOfDay);
        assert_eq!(S7Type::parse("DTL").unwrap().size(), 12);
        assert!(S7Type::parse("STRING[0]").is_err());
        assert!(S7Type::parse("STRING[255]").is_err());
        assert!(S7Type::parse("STRING[x]").is_err());
        assert!(S7Type::parse("FLOAT").is_err());
        assert!(S7Field::new("b", 0, S7Type::Bool, 8).is_err());
        assert!(S7Field::new("i", 0, S7Type::Int, 1).is_err());
        assert!(S7Field::new("i", u32::MAX, S7Type::Int, 0).is_err());
    }

    #[test]
    fn decodes_numbers_big_endian() {
        assert_eq!(one("INT", &[0xFF, 0xFE]).unwrap(), S7Value::Int(-2));
        assert_eq!(one("WORD", &[0xFF, 0xFE]).unwrap(), S7Value::Int(65534));
        assert_eq!(
            one("DINT", &[0x80, 0, 0, 0]).unwrap(),
            S7Value::Int(-2_147_483_648)
        );
        assert_eq!(
            one("UDINT", &[0x80, 0, 0, 0]).unwrap(),
            S7Value::Int(2_147_483_648)
        );
        assert_eq!(
            one("REAL", &1.5f32.to_be_bytes()).unwrap(),
            S7Value::Float(1.5)
        );
        assert_eq!(
            one("LREAL", &(-2.25f64).to_be_bytes()).unwrap(),
            S7Value::Float(-2.25)
        );
        let bit = field("BOOL", 0, 3);
        assert_eq!(
            decode_field(&bit, &[0b1000], 0).unwrap(),
            S7Value::Bool(true)
        );
        assert_eq!(
            decode_field(&bit, &[0b0111], 0).unwrap(),
            S7Value::Bool(false)
        );
    }

    #[test]
    fn decodes_text_and_times() {
        let s = [10, 5, b'P', b'-', b'1', b'0', b'1', 0, 0, 0, 0, 0];
        assert_eq!(
            one("STRING[10]", &s).unwrap(),
            S7Value::Text("P-101".into())
        );
        assert!(one("STRING[10]", &[10, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(one("STRING[10]", &[255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        let w = [0, 2, 0, 2, 0, b'h', 0xD8, 0x3D];
        assert!(one("WSTRING[2]", &w).is_err()); // a lone high surrogate
        assert_eq!(one("S5TIME", &[0x21, 0x23]).unwrap(), S7Value::Float(123.0));
        assert!(one("S5TIME", &[0x41, 0x23]).is_err());
        assert_eq!(
            one("TIME", &(-1500i32).to_be_bytes()).unwrap(),
            S7Value::Float(-1.5)
        );
        assert!(one("TOD", &86_400_000u32.to_be_bytes()).is_err());
        assert_eq!(
            one("DATE", &[0, 0]).unwrap(),
            S7Value::Text("1990-01-01".into())
        );
        assert_eq!(
            one("DATE", &65378u16.to_be_bytes()).unwrap(),
            S7Value::Text("2168-12-31".into())
        );
        assert!(one("DATE", &65379u16.to_be_bytes()).is_err());
        let dt = [0x20, 0x07, 0x12, 0x17, 0x32, 0x02, 0x85, 0x41];
        assert_eq!(
            one("DT", &dt).unwrap(),
            S7Value::Text("2020-07-12T17:32:02.854000".into())
        );
        assert!(one("DT", &[0x20, 0x13, 0x12, 0x17, 0x32, 0x02, 0x85, 0x41]).is_err());
        let mut d = vec![0x07, 0xE8, 2, 29, 5, 23, 59, 58];
        d.extend_from_slice(&123_456_789u32.to_be_bytes());
        assert_eq!(
            one("DTL", &d).unwrap(),
            S7Value::Text("2024-02-29T23:59:58.123456789".into())
        );
        d[3] = 30;
        assert!(one("DTL", &d).is_err());
    }

    #[test]
    fn out_of_block_is_an_error_per_tag() {
        let plan = S7Plan::new(vec![
            field("INT", 10, 0),
            field("INT", 14, 0),
            field("INT", 8, 0),
        ]);
        let out = plan.decode(&[0, 1, 0, 2], 10);
        assert_eq!(out[0], Ok(S7Value::Int(1)));
        assert!(matches!(out[1], Err(S7DecodeError::OutOfBlock { .. })));
        assert!(matches!(out[2], Err(S7DecodeError::OutOfBlock { .. })));
    }

    #[test]
    fn never_panics_on_any_short_input() {
        let types = [
            "BOOL",
            "BYTE",
            "WORD",
            "DWORD",
            "SINT",
            "INT",
            "DINT",
            "USINT",
            "UINT",
            "UDINT",
            "REAL",
            "LREAL",
            "CHAR",
            "STRING[3]",
            "WSTRING[3]",
            "S5TIME",
            "TIME",
            "DATE",
            "TOD",
            "DT",
            "DTL",
        ];
        let mut seed = 0x1234_5678u32;
        for ty in types {
            for len in 0..16 {
                for _ in 0..64 {
                    let data: Vec<u8> = (0..len)
                        .map(|_| {
                            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                            (seed >> 24) as u8
                        })
                        .collect();
                    let _ = decode_field(&field(ty, 0, 0), &data, 0);
                    let _ = decode_field(&field(ty, 3, 0), &data, 2);
                    let _ = decode_field(&field(ty, 1, 0), &data, 2);
                }
            }
        }
    }
}
