//! Whole blocks of one type (waveform blocks): no per-value dispatch.

use half::f16;

use super::error::ArrayError;
use super::kernel::{bcd_encode, column_into, empty_column, split, swap, Packed, Rows, Wire};
use super::plan::Column;
use super::types::{ByteHalf, Dtype, Layout, Order};

/// Registers to decode: register values, or wire bytes (big-endian per register).
#[derive(Clone, Copy, Debug)]
pub enum RegisterBlock<'a> {
    Values(&'a [u16]),
    Wire(&'a [u8]),
}

/// Numbers to encode, in whichever primitive type the caller holds them.
#[derive(Clone, Copy, Debug)]
pub enum Numbers<'a> {
    I64(&'a [i64]),
    U64(&'a [u64]),
    F64(&'a [f64]),
}

/// Decodes consecutive values of one dtype. Unscaled (scale 1, offset 0) the
/// column has the dtype's native type (`bcd16` -> u16, `bcd32` -> u32);
/// scaled it is f64 `raw * scale + offset`. `int8`/`uint8` give two values
/// per register, in wire order (high byte first; swapped by BADC/DCBA).
/// `bit` and `string` have no array form.
pub fn decode_array(
    block: RegisterBlock<'_>,
    dtype: Dtype,
    order: Order,
    scale: f64,
    offset: f64,
) -> Result<Column, ArrayError> {
    if !scale.is_finite() || scale == 0.0 {
        return Err(ArrayError::Scale { scale });
    }
    if !offset.is_finite() {
        return Err(ArrayError::Offset { offset });
    }
    let width = match dtype {
        Dtype::Bit | Dtype::String => {
            return Err(ArrayError::NotArrayDtype {
                dtype: dtype.name(),
            })
        }
        d => d.width().unwrap_or(1),
    };
    let got = match block {
        RegisterBlock::Values(r) => r.len(),
        RegisterBlock::Wire(b) if b.len() % 2 == 1 => {
            return Err(ArrayError::OddBytes { got: b.len() })
        }
        RegisterBlock::Wire(b) => b.len() / 2,
    };
    if got % width != 0 {
        return Err(ArrayError::Ragged {
            dtype: dtype.name(),
            width,
            got,
        });
    }
    let layout = Layout {
        dtype,
        order,
        scale,
        offset,
        bit: 0,
        byte: ByteHalf::High,
        width,
    };
    let values = got / width;
    match block {
        RegisterBlock::Values(regs) => decode_rows(&layout, &Packed(regs), values),
        RegisterBlock::Wire(bytes) => decode_rows(&layout, &Wire(bytes), values),
    }
}

/// An empty column for `layout` with room for `values`, or OutOfMemory instead of an abort.
fn reserved_column(layout: &Layout, values: usize) -> Result<Column, ArrayError> {
    let mut out = empty_column(layout);
    out.try_reserve(values)
        .map_err(|_| ArrayError::OutOfMemory { values })?;
    Ok(out)
}

fn decode_rows<R: Rows>(layout: &Layout, rows: &R, values: usize) -> Result<Column, ArrayError> {
    let decode = |layout: &Layout| {
        let mut out = reserved_column(layout, values)?;
        column_into(layout, rows, &mut out)
            .map_err(|(index, raw)| ArrayError::InvalidBcd { index, raw })?;
        Ok::<_, ArrayError>(out)
    };
    if !matches!(layout.dtype, Dtype::Int8 | Dtype::Uint8) {
        return decode(layout);
    }
    // Both bytes of every register: decode the high then the low half and interleave.
    let high = decode(layout)?;
    let low = decode(&Layout {
        byte: ByteHalf::Low,
        ..*layout
    })?;
    fn interleave<T: Copy>(a: Vec<T>, b: Vec<T>) -> Result<Vec<T>, ArrayError> {
        let values = 2 * a.len();
        let mut out = Vec::new();
        out.try_reserve_exact(values)
            .map_err(|_| ArrayError::OutOfMemory { values })?;
        for (x, y) in a.into_iter().zip(b) {
            out.push(x);
            out.push(y);
        }
        Ok(out)
    }
    Ok(match (high, low) {
        (Column::I8(a), Column::I8(b)) => Column::I8(interleave(a, b)?),
        (Column::U8(a), Column::U8(b)) => Column::U8(interleave(a, b)?),
        (Column::F64(a), Column::F64(b)) => Column::F64(interleave(a, b)?),
        (other, _) => other, // not reached: both halves share the dtype and scaling
    })
}

/// Encodes values as consecutive registers of one dtype (the inverse of an
/// unscaled [`decode_array`]). Integers must fit the dtype; floats given for
/// an integer dtype must be whole numbers; finite values that overflow
/// float16/float32 are errors, NaN and infinity pass through.
pub fn encode_array(
    values: Numbers<'_>,
    dtype: Dtype,
    order: Order,
) -> Result<Vec<u16>, ArrayError> {
    let width = match dtype {
        Dtype::Bit | Dtype::String => {
            return Err(ArrayError::NotArrayDtype {
                dtype: dtype.name(),
            })
        }
        d => d.width().unwrap_or(1),
    };
    let n = match values {
        Numbers::I64(v) => v.len(),
        Numbers::U64(v) => v.len(),
        Numbers::F64(v) => v.len(),
    };
    let per_reg = if matches!(dtype, Dtype::Int8 | Dtype::Uint8) {
        2
    } else {
        1
    };
    if per_reg == 2 && n % 2 == 1 {
        return Err(ArrayError::OddCount { got: n });
    }
    let registers = n * width / per_reg;
    let mut out = Vec::new();
    out.try_reserve_exact(registers)
        .map_err(|_| ArrayError::OutOfMemory { values: registers })?;
    let fail = |index: usize, reason: &'static str| ArrayError::Unrepresentable {
        index,
        value: match values {
            Numbers::I64(v) => v[index].to_string(),
            Numbers::U64(v) => v[index].to_string(),
            // `{:?}` keeps 1e300 short; Display would spell out all 301 digits.
            Numbers::F64(v) => format!("{:?}", v[index]),
        },
        dtype: dtype.name(),
        reason,
    };
    let int_at = |i: usize, min: i128, max: i128| -> Result<i128, ArrayError> {
        let v = match values {
            Numbers::I64(v) => i128::from(v[i]),
            Numbers::U64(v) => i128::from(v[i]),
            Numbers::F64(v) => {
                let f = v[i];
                if !(f.is_finite() && f.fract() == 0.0 && f.abs() < 1e38) {
                    return Err(fail(i, "not a whole number"));
                }
                f as i128
            }
        };
        if v < min || v > max {
            return Err(fail(i, "out of range"));
        }
        Ok(v)
    };
    let float_at = |i: usize| match values {
        Numbers::I64(v) => v[i] as f64,
        Numbers::U64(v) => v[i] as f64,
        Numbers::F64(v) => v[i],
    };
    let mut i = 0;
    while i < n {
        match dtype {
            Dtype::Int8 | Dtype::Uint8 => {
                let (min, max) = if dtype == Dtype::Int8 {
                    (-128, 127)
                } else {
                    (0, 255)
                };
                let hi = int_at(i, min, max)? as u8;
                let lo = int_at(i + 1, min, max)? as u8;
                out.push(swap(u16::from_be_bytes([hi, lo]), order));
                i += 1; // the pair's second value
            }
            Dtype::Int16 => out.push(swap(
                int_at(i, i16::MIN.into(), i16::MAX.into())? as i16 as u16,
                order,
            )),
            Dtype::Uint16 => out.push(swap(int_at(i, 0, u16::MAX.into())? as u16, order)),
            Dtype::Int32 => out.extend(split::<2>(
                int_at(i, i32::MIN.into(), i32::MAX.into())? as i32 as u32 as u64,
                order,
            )),
            Dtype::Uint32 => out.extend(split::<2>(int_at(i, 0, u32::MAX.into())? as u64, order)),
            Dtype::Int64 => out.extend(split::<4>(
                int_at(i, i64::MIN.into(), i64::MAX.into())? as i64 as u64,
                order,
            )),
            Dtype::Uint64 => out.extend(split::<4>(int_at(i, 0, u64::MAX.into())? as u64, order)),
            Dtype::Bcd16 => out.push(swap(
                bcd_encode(int_at(i, 0, 9_999)? as u64, 4) as u16,
                order,
            )),
            Dtype::Bcd32 => out.extend(split::<2>(
                bcd_encode(int_at(i, 0, 99_999_999)? as u64, 8),
                order,
            )),
            Dtype::Float16 => {
                let x = float_at(i);
                let h = f16::from_f64(x);
                if x.is_finite() && !h.is_finite() {
                    return Err(fail(i, "overflows float16"));
                }
                out.push(swap(h.to_bits(), order));
            }
            Dtype::Float32 => {
                let x = float_at(i);
                let f = x as f32;
                if x.is_finite() && !f.is_finite() {
                    return Err(fail(i, "overflows float32"));
                }
                out.extend(split::<2>(u64::from(f.to_bits()), order));
            }
            Dtype::Float64 => out.extend(split::<4>(float_at(i).to_bits(), order)),
            Dtype::Bit | Dtype::String => {}
        }
        i += 1;
    }
    Ok(out)
}
