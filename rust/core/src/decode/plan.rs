//! A validated plan of tags over one register block.

use std::collections::{HashMap, TryReserveError};

use half::f16;

use super::error::{DecodeError, EncodeError, TagError};
use super::kernel::{
    bcd_decode, bcd_encode, byte_of, column_into, empty_column, join, split, swap, take, Strided,
};
use super::types::{ByteHalf, Dtype, Layout, TagSpec};

/// One decoded value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    /// Only unscaled `uint64` values use this (they may exceed `i64`).
    UInt(u64),
    Float(f64),
    Str(String),
}

/// A value to encode, as the caller has it.
#[derive(Clone, Debug, PartialEq)]
pub enum EncodeValue {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
}

impl std::fmt::Display for EncodeValue {
    /// Python-like spelling, for error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeValue::Bool(true) => f.write_str("True"),
            EncodeValue::Bool(false) => f.write_str("False"),
            EncodeValue::Int(i) => write!(f, "{i}"),
            EncodeValue::Float(x) => write!(f, "{x:?}"),
            EncodeValue::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// One tag's values over many frames (or one block of same-typed values):
/// the dtype's native type when unscaled, `F64` when scaled.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    Bool(Vec<bool>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    F16(Vec<f16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Str(Vec<String>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Bool(v) => v.len(),
            Column::I8(v) => v.len(),
            Column::U8(v) => v.len(),
            Column::I16(v) => v.len(),
            Column::U16(v) => v.len(),
            Column::I32(v) => v.len(),
            Column::U32(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::U64(v) => v.len(),
            Column::F16(v) => v.len(),
            Column::F32(v) => v.len(),
            Column::F64(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reserves room for `additional` more values.
    pub fn reserve(&mut self, additional: usize) {
        macro_rules! all {
            ($($v:ident),*) => {
                match self {
                    $(Column::$v(a) => a.reserve(additional),)*
                }
            };
        }
        all!(Bool, I8, U8, I16, U16, I32, U32, I64, U64, F16, F32, F64, Str)
    }

    /// [`Column::reserve`] that reports running out of memory instead of aborting.
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
        macro_rules! all {
            ($($v:ident),*) => {
                match self {
                    $(Column::$v(a) => a.try_reserve(additional),)*
                }
            };
        }
        all!(Bool, I8, U8, I16, U16, I32, U32, I64, U64, F16, F32, F64, Str)
    }
}

/// A validated list of tags and the register span they need.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    tags: Vec<TagSpec>,
    start: u16,
    count: usize,
    /// Tag indices by address, then end: the order "first tag that does not fit" uses.
    by_address: Vec<usize>,
}

impl Plan {
    /// Checks the tags as a set (names unique); each tag is already valid.
    /// An empty plan is allowed: it spans no registers and decodes to nothing.
    pub fn new(tags: Vec<TagSpec>) -> Result<Self, TagError> {
        let mut seen: HashMap<&str, u16> = HashMap::with_capacity(tags.len());
        for t in &tags {
            if let Some(first) = seen.insert(t.name(), t.address()) {
                return Err(TagError::Duplicate {
                    tag: t.name().to_owned(),
                    first,
                    second: t.address(),
                });
            }
        }
        let start = tags.iter().map(TagSpec::address).min().unwrap_or(0);
        let end = tags.iter().map(TagSpec::end).max().unwrap_or(0);
        let mut by_address: Vec<usize> = (0..tags.len()).collect();
        by_address.sort_by_key(|&i| (tags[i].address(), tags[i].end()));
        Ok(Plan {
            tags,
            start,
            count: end.saturating_sub(usize::from(start)),
            by_address,
        })
    }

    pub fn tags(&self) -> &[TagSpec] {
        &self.tags
    }
    /// Address of the first register the plan reads.
    pub fn start(&self) -> u16 {
        self.start
    }
    /// Number of registers from `start` the plan reads.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Where `start` lies in a block of `len` registers whose first register
    /// has address `base` (default `start`), after checking every tag fits.
    fn locate(&self, len: usize, base: Option<i64>) -> Result<usize, DecodeError> {
        let base = base.unwrap_or(i64::from(self.start));
        // A Modbus address: anything else is a caller's mistake, and keeps `start - base`
        // below in range.
        if !(0..=i64::from(u16::MAX)).contains(&base) {
            return Err(DecodeError::BadBase { base });
        }
        if self.tags.is_empty() {
            return Ok(0);
        }
        let shift = i64::from(self.start) - base;
        if shift < 0 {
            let t = &self.tags[self.by_address[0]];
            return Err(DecodeError::BeforeBase {
                tag: t.name().to_owned(),
                address: t.address(),
                base,
            });
        }
        let shift = shift as usize; // at most 65535
        if shift + self.count <= len {
            return Ok(shift);
        }
        // Only on failure: find the first tag (by address) that does not fit.
        for &i in &self.by_address {
            let t = &self.tags[i];
            let need = shift + usize::from(t.address() - self.start) + t.width();
            if need > len {
                return Err(DecodeError::TooShort {
                    tag: t.name().to_owned(),
                    dtype: t.dtype().name(),
                    address: t.address(),
                    base,
                    need,
                    got: len,
                });
            }
        }
        Ok(shift) // unreachable: some tag ends at start + count
    }

    /// Decodes one block, handing each tag's index and value to `sink` in
    /// plan order. `regs[0]` has address `base` (default `start`).
    pub fn decode_each(
        &self,
        regs: &[u16],
        base: Option<i64>,
        mut sink: impl FnMut(usize, Value),
    ) -> Result<(), DecodeError> {
        let shift = self.locate(regs.len(), base)?;
        let block = &regs[shift..];
        for (i, t) in self.tags.iter().enumerate() {
            let at = usize::from(t.address() - self.start);
            let value = decode_value(&t.layout, &block[at..at + t.width()]).map_err(|raw| {
                DecodeError::InvalidBcd {
                    tag: t.name().to_owned(),
                    raw,
                    frame: String::new(),
                }
            })?;
            sink(i, value);
        }
        Ok(())
    }

    /// Decodes one block into a vector of values in plan order.
    pub fn decode(&self, regs: &[u16], base: Option<i64>) -> Result<Vec<Value>, DecodeError> {
        let mut out = Vec::with_capacity(self.tags.len());
        self.decode_each(regs, base, |_, v| out.push(v))?;
        Ok(out)
    }

    /// Decodes a row-major matrix of frames (`frames.len() / columns` rows of
    /// `columns` registers each, one poll per row) into one column per tag.
    pub fn decode_many(
        &self,
        frames: &[u16],
        columns: usize,
        base: Option<i64>,
    ) -> Result<Vec<Column>, DecodeError> {
        let shift = self.locate(columns, base)?;
        let total_rows = frames.len().checked_div(columns).unwrap_or(0);
        let mut out: Vec<Column> = self
            .tags
            .iter()
            .map(|t| {
                let mut c = empty_column(&t.layout);
                c.try_reserve(total_rows)
                    .map_err(|_| DecodeError::OutOfMemory { rows: total_rows })?;
                Ok(c)
            })
            .collect::<Result<_, DecodeError>>()?;
        // Rows are taken in blocks that stay in cache while every tag reads
        // them; one pass per tag over a large matrix would stream it from
        // memory once per tag.
        const BLOCK_BYTES: usize = 128 * 1024;
        let rows_per_block = (BLOCK_BYTES / 2 / columns.max(1)).max(1);
        let whole = &frames[..total_rows * columns];
        for (b, block) in whole.chunks((rows_per_block * columns).max(1)).enumerate() {
            for (t, column) in self.tags.iter().zip(out.iter_mut()) {
                let rows = Strided {
                    frames: block,
                    stride: columns,
                    column: shift + usize::from(t.address() - self.start),
                };
                if let Column::Str(strings) = column {
                    strings.extend(rows.slices(t.width()).map(decode_string_of(&t.layout)));
                    continue;
                }
                column_into(&t.layout, &rows, column).map_err(|(row, raw)| {
                    DecodeError::InvalidBcd {
                        tag: t.name().to_owned(),
                        raw,
                        frame: format!(" in frame {}", b * rows_per_block + row),
                    }
                })?;
            }
        }
        Ok(out)
    }

    /// Encodes one value per tag (in plan order) into `count` registers from
    /// `start`; registers no tag covers are 0. Bits and bytes that share a
    /// register are merged; for other overlapping tags the later one wins.
    pub fn encode(&self, values: &[Option<EncodeValue>]) -> Result<Vec<u16>, EncodeError> {
        let mut regs = vec![0u16; self.count];
        for (i, t) in self.tags.iter().enumerate() {
            let value =
                values
                    .get(i)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| EncodeError::Missing {
                        tag: t.name().to_owned(),
                    })?;
            let at = usize::from(t.address() - self.start);
            encode_value(t, value, &mut regs[at..at + t.width()])?;
        }
        Ok(regs)
    }
}

/// Decodes one value from exactly its registers; `Err(raw)` for bad BCD.
#[inline]
fn decode_value(l: &Layout, regs: &[u16]) -> Result<Value, u64> {
    let o = l.order;
    let r0 = || swap(regs.first().copied().unwrap_or(0), o);
    // Integers as i64 (or u64 for uint64), floats as f64, before scaling.
    enum Raw {
        I(i64),
        U(u64),
        F(f64),
    }
    let raw = match l.dtype {
        Dtype::Bit => return Ok(Value::Bool((r0() >> l.bit) & 1 == 1)),
        Dtype::String => return Ok(Value::Str(decode_string_of(l)(regs))),
        Dtype::Int8 => Raw::I(i64::from(byte_of(r0(), l.byte) as i8)),
        Dtype::Uint8 => Raw::I(i64::from(byte_of(r0(), l.byte))),
        Dtype::Int16 => Raw::I(i64::from(r0() as i16)),
        Dtype::Uint16 => Raw::I(i64::from(r0())),
        Dtype::Int32 => Raw::I(i64::from(join(take::<2>(regs), o) as u32 as i32)),
        Dtype::Uint32 => Raw::I(join(take::<2>(regs), o) as i64),
        Dtype::Int64 => Raw::I(join(take::<4>(regs), o) as i64),
        Dtype::Uint64 => Raw::U(join(take::<4>(regs), o)),
        Dtype::Float16 => Raw::F(f64::from(f16::from_bits(r0()))),
        Dtype::Float32 => Raw::F(f64::from(f32::from_bits(join(take::<2>(regs), o) as u32))),
        Dtype::Float64 => Raw::F(f64::from_bits(join(take::<4>(regs), o))),
        Dtype::Bcd16 => {
            let raw = u64::from(r0());
            Raw::I(bcd_decode(raw, 4).ok_or(raw)? as i64)
        }
        Dtype::Bcd32 => {
            let raw = join(take::<2>(regs), o);
            Raw::I(bcd_decode(raw, 8).ok_or(raw)? as i64)
        }
    };
    Ok(match raw {
        _ if l.is_scaled() => {
            let x = match raw {
                Raw::I(v) => v as f64,
                Raw::U(v) => v as f64,
                Raw::F(v) => v,
            };
            Value::Float(x * l.scale + l.offset)
        }
        Raw::I(v) => Value::Int(v),
        Raw::U(v) => Value::UInt(v),
        Raw::F(v) => Value::Float(v),
    })
}

/// Decodes a string's registers: word order reverses the registers, byte
/// order swaps each register's bytes; trailing NUL and spaces are trimmed and
/// invalid UTF-8 becomes U+FFFD (a garbled name should not fail a whole poll).
fn decode_string_of(l: &Layout) -> impl Fn(&[u16]) -> String + '_ {
    move |regs| {
        let mut bytes = Vec::with_capacity(2 * regs.len());
        let mut push = |r: u16| bytes.extend_from_slice(&swap(r, l.order).to_be_bytes());
        if l.order.word_swap {
            regs.iter().rev().copied().for_each(&mut push);
        } else {
            regs.iter().copied().for_each(&mut push);
        }
        let end = bytes
            .iter()
            .rposition(|&b| b != 0 && b != b' ')
            .map_or(0, |p| p + 1);
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    }
}

fn encode_value(t: &TagSpec, value: &EncodeValue, regs: &mut [u16]) -> Result<(), EncodeError> {
    let l = &t.layout;
    let o = l.order;
    let fail = |reason: String| EncodeError::Unrepresentable {
        tag: t.name().to_owned(),
        dtype: l.dtype.name(),
        reason,
    };
    // The raw integer for integer and BCD types, range-checked.
    let int = |min: i128, max: i128| -> Result<i128, EncodeError> {
        let raw = if l.is_scaled() {
            let x = number(value).ok_or_else(|| fail(format!("{value} is not a number")))?;
            let r = ((x - l.offset) / l.scale).round();
            if !r.is_finite() {
                return Err(fail(format!("{x} scales to a non-finite raw value")));
            }
            if r < min as f64 || r > max as f64 {
                return Err(fail(format!(
                    "{x} scales to raw {r}, outside {min}..={max}"
                )));
            }
            r as i128
        } else {
            match value {
                EncodeValue::Int(i) => *i,
                EncodeValue::Bool(b) => i128::from(*b),
                EncodeValue::Float(f) if f.is_finite() && f.fract() == 0.0 => {
                    if *f < min as f64 || *f > max as f64 {
                        return Err(fail(format!("{value} is outside {min}..={max}")));
                    }
                    *f as i128
                }
                _ => return Err(fail(format!("{value} is not an integer"))),
            }
        };
        if raw < min || raw > max {
            return Err(fail(format!("{raw} is outside {min}..={max}")));
        }
        Ok(raw)
    };
    let float = || -> Result<f64, EncodeError> {
        let x = number(value).ok_or_else(|| fail(format!("{value} is not a number")))?;
        Ok((x - l.offset) / l.scale)
    };
    let write1 = |regs: &mut [u16], v: u16| regs[0] = swap(v, o);
    match l.dtype {
        Dtype::Bit => {
            let on = match value {
                EncodeValue::Bool(b) => *b,
                EncodeValue::Int(0) => false,
                EncodeValue::Int(1) => true,
                _ => return Err(fail(format!("{value} is not a bool (or 0/1)"))),
            };
            let reg = swap(regs[0], o) & !(1 << l.bit) | (u16::from(on) << l.bit);
            write1(regs, reg);
        }
        Dtype::Int8 | Dtype::Uint8 => {
            let raw = if l.dtype == Dtype::Int8 {
                int(-128, 127)? as i8 as u8
            } else {
                int(0, 255)? as u8
            };
            let reg = swap(regs[0], o);
            let reg = match l.byte {
                ByteHalf::High => (reg & 0x00FF) | (u16::from(raw) << 8),
                ByteHalf::Low => (reg & 0xFF00) | u16::from(raw),
            };
            write1(regs, reg);
        }
        Dtype::Int16 => write1(regs, int(i16::MIN.into(), i16::MAX.into())? as i16 as u16),
        Dtype::Uint16 => write1(regs, int(0, u16::MAX.into())? as u16),
        Dtype::Int32 => put(
            regs,
            split::<2>(
                int(i32::MIN.into(), i32::MAX.into())? as i32 as u32 as u64,
                o,
            ),
        ),
        Dtype::Uint32 => put(regs, split::<2>(int(0, u32::MAX.into())? as u64, o)),
        Dtype::Int64 => put(
            regs,
            split::<4>(int(i64::MIN.into(), i64::MAX.into())? as i64 as u64, o),
        ),
        Dtype::Uint64 => put(regs, split::<4>(int(0, u64::MAX.into())? as u64, o)),
        Dtype::Bcd16 => write1(regs, bcd_encode(int(0, 9_999)? as u64, 4) as u16),
        Dtype::Bcd32 => put(
            regs,
            split::<2>(bcd_encode(int(0, 99_999_999)? as u64, 8), o),
        ),
        Dtype::Float16 => {
            let x = float()?;
            let h = f16::from_f64(x);
            if x.is_finite() && !h.is_finite() {
                return Err(fail(format!("{x} overflows float16")));
            }
            write1(regs, h.to_bits());
        }
        Dtype::Float32 => {
            let x = float()?;
            let f = x as f32;
            if x.is_finite() && !f.is_finite() {
                return Err(fail(format!("{x} overflows float32")));
            }
            put(regs, split::<2>(u64::from(f.to_bits()), o));
        }
        Dtype::Float64 => put(regs, split::<4>(float()?.to_bits(), o)),
        Dtype::String => {
            let EncodeValue::Str(s) = value else {
                return Err(fail(format!("{value} is not a string")));
            };
            let bytes = s.as_bytes();
            if bytes.len() > 2 * regs.len() {
                return Err(fail(format!(
                    "{} UTF-8 bytes do not fit {} registers",
                    bytes.len(),
                    regs.len()
                )));
            }
            let n = regs.len();
            for k in 0..n {
                let hi = bytes.get(2 * k).copied().unwrap_or(0);
                let lo = bytes.get(2 * k + 1).copied().unwrap_or(0);
                let at = if o.word_swap { n - 1 - k } else { k };
                regs[at] = swap(u16::from_be_bytes([hi, lo]), o);
            }
        }
    }
    Ok(())
}

fn put<const N: usize>(regs: &mut [u16], words: [u16; N]) {
    for (r, w) in regs.iter_mut().zip(words) {
        *r = w;
    }
}

fn number(value: &EncodeValue) -> Option<f64> {
    match value {
        EncodeValue::Float(f) => Some(*f),
        EncodeValue::Int(i) => Some(*i as f64),
        EncodeValue::Bool(b) => Some(f64::from(u8::from(*b))),
        EncodeValue::Str(_) => None,
    }
}
