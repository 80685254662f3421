//! Data types, orders and validated tag definitions.

use super::error::{TagError, UnknownName};

/// The value type a tag reads from its registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// One bit (`bit` index 0..=15, 0 = least significant) of a register.
    Bit,
    /// The high or low byte of a register, signed.
    Int8,
    /// The high or low byte of a register, unsigned.
    Uint8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Uint64,
    /// IEEE 754 half precision in one register.
    Float16,
    Float32,
    Float64,
    /// `length` registers of text, two bytes per register (ASCII/UTF-8).
    String,
    /// Four packed BCD digits in one register (0..=9999).
    Bcd16,
    /// Eight packed BCD digits in two registers (0..=99999999).
    Bcd32,
}

impl Dtype {
    /// Every dtype, in documentation order.
    pub const ALL: [Dtype; 15] = [
        Dtype::Bit,
        Dtype::Int8,
        Dtype::Uint8,
        Dtype::Int16,
        Dtype::Uint16,
        Dtype::Int32,
        Dtype::Uint32,
        Dtype::Int64,
        Dtype::Uint64,
        Dtype::Float16,
        Dtype::Float32,
        Dtype::Float64,
        Dtype::String,
        Dtype::Bcd16,
        Dtype::Bcd32,
    ];

    /// The spelling used in Python and configuration files.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bit => "bit",
            Dtype::Int8 => "int8",
            Dtype::Uint8 => "uint8",
            Dtype::Int16 => "int16",
            Dtype::Uint16 => "uint16",
            Dtype::Int32 => "int32",
            Dtype::Uint32 => "uint32",
            Dtype::Int64 => "int64",
            Dtype::Uint64 => "uint64",
            Dtype::Float16 => "float16",
            Dtype::Float32 => "float32",
            Dtype::Float64 => "float64",
            Dtype::String => "string",
            Dtype::Bcd16 => "bcd16",
            Dtype::Bcd32 => "bcd32",
        }
    }

    /// Parses an exact (lower-case) dtype name.
    pub fn parse(name: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .iter()
            .copied()
            .find(|d| d.name() == name)
            .ok_or_else(|| UnknownName {
                kind: "dtype",
                name: name.to_owned(),
                expected: Self::ALL.map(Dtype::name).join(", "),
            })
    }

    /// Registers one value occupies; `None` for `string` (its tag's `length`).
    pub fn width(self) -> Option<usize> {
        match self {
            Dtype::Bit
            | Dtype::Int8
            | Dtype::Uint8
            | Dtype::Int16
            | Dtype::Uint16
            | Dtype::Float16
            | Dtype::Bcd16 => Some(1),
            Dtype::Int32 | Dtype::Uint32 | Dtype::Float32 | Dtype::Bcd32 => Some(2),
            Dtype::Int64 | Dtype::Uint64 | Dtype::Float64 => Some(4),
            Dtype::String => None,
        }
    }

    /// True for types that decode to numbers and may be scaled.
    pub fn is_numeric(self) -> bool {
        !matches!(self, Dtype::Bit | Dtype::String)
    }

    /// True for the float types (always decoded as floats).
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::Float16 | Dtype::Float32 | Dtype::Float64)
    }
}

/// Word order and byte order, two independent switches (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Order {
    /// Registers of a multi-register value come least significant first.
    pub word_swap: bool,
    /// The two bytes inside every register are swapped.
    pub byte_swap: bool,
}

impl Order {
    pub const ABCD: Order = Order {
        word_swap: false,
        byte_swap: false,
    };
    pub const CDAB: Order = Order {
        word_swap: true,
        byte_swap: false,
    };
    pub const BADC: Order = Order {
        word_swap: false,
        byte_swap: true,
    };
    pub const DCBA: Order = Order {
        word_swap: true,
        byte_swap: true,
    };
    pub const ALL: [Order; 4] = [Order::ABCD, Order::CDAB, Order::BADC, Order::DCBA];

    pub fn name(self) -> &'static str {
        match (self.word_swap, self.byte_swap) {
            (false, false) => "ABCD",
            (true, false) => "CDAB",
            (false, true) => "BADC",
            (true, true) => "DCBA",
        }
    }

    /// Parses an exact (upper-case) order name.
    pub fn parse(name: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .iter()
            .copied()
            .find(|o| o.name() == name)
            .ok_or_else(|| UnknownName {
                kind: "order",
                name: name.to_owned(),
                expected: "ABCD, CDAB, BADC, DCBA".to_owned(),
            })
    }
}

/// Which byte of the register an `int8`/`uint8` tag reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ByteHalf {
    /// Bits 15..8 (the byte sent first with order ABCD); the default.
    #[default]
    High,
    /// Bits 7..0.
    Low,
}

impl ByteHalf {
    pub fn name(self) -> &'static str {
        match self {
            ByteHalf::High => "high",
            ByteHalf::Low => "low",
        }
    }

    pub fn parse(name: &str) -> Result<Self, UnknownName> {
        match name {
            "high" => Ok(ByteHalf::High),
            "low" => Ok(ByteHalf::Low),
            _ => Err(UnknownName {
                kind: "byte",
                name: name.to_owned(),
                expected: "high, low".to_owned(),
            }),
        }
    }
}

/// The optional parts of a tag definition, as given by the user.
#[derive(Clone, Debug, Default)]
pub struct TagParams<'a> {
    /// Default `ABCD`.
    pub order: Option<&'a str>,
    /// Default 1.
    pub scale: Option<f64>,
    /// Default 0.
    pub offset: Option<f64>,
    /// Required for `bit`, forbidden otherwise.
    pub bit: Option<i64>,
    /// Registers of a `string` (required there, forbidden otherwise).
    pub length: Option<i64>,
    /// `high` or `low` for `int8`/`uint8` (default `high`), forbidden otherwise.
    pub byte: Option<&'a str>,
    /// Engineering unit, carried as metadata.
    pub unit: Option<&'a str>,
}

/// How one value is laid out in registers: everything of a tag but its name,
/// address and unit. Built only through validation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Layout {
    pub dtype: Dtype,
    pub order: Order,
    pub scale: f64,
    pub offset: f64,
    pub bit: u8,
    pub byte: ByteHalf,
    pub width: usize,
}

impl Layout {
    /// Scaling changes the value (so integers become floats).
    #[inline]
    pub fn is_scaled(&self) -> bool {
        self.scale != 1.0 || self.offset != 0.0
    }
}

/// A validated tag: a named value at a register address.
#[derive(Clone, Debug, PartialEq)]
pub struct TagSpec {
    name: String,
    address: u16,
    unit: Option<String>,
    length: Option<u16>,
    pub(crate) layout: Layout,
}

impl TagSpec {
    /// Validates a tag definition; every error names the tag.
    pub fn new(
        name: &str,
        address: i64,
        dtype: &str,
        params: TagParams<'_>,
    ) -> Result<Self, TagError> {
        if name.is_empty() {
            return Err(TagError::EmptyName { address });
        }
        let tag = || name.to_owned();
        let unknown = |source| TagError::Unknown { tag: tag(), source };
        let dtype = Dtype::parse(dtype).map_err(unknown)?;
        let order = match params.order {
            Some(o) => Order::parse(o).map_err(unknown)?,
            None => Order::ABCD,
        };
        let address = u16::try_from(address).map_err(|_| TagError::Address {
            tag: tag(),
            address,
        })?;
        let misplaced = |field, applies| TagError::Misplaced {
            tag: tag(),
            field,
            applies,
            dtype: dtype.name(),
        };

        let bit = match (dtype, params.bit) {
            (Dtype::Bit, None) => return Err(TagError::BitMissing { tag: tag() }),
            (Dtype::Bit, Some(b)) => u8::try_from(b)
                .ok()
                .filter(|&b| b < 16)
                .ok_or(TagError::BitRange { tag: tag(), bit: b })?,
            (_, Some(_)) => return Err(misplaced("bit", "dtype 'bit'")),
            (_, None) => 0,
        };
        let length = match (dtype, params.length) {
            (Dtype::String, None) => return Err(TagError::LengthMissing { tag: tag() }),
            (Dtype::String, Some(n)) => Some(u16::try_from(n).ok().filter(|&n| n >= 1).ok_or(
                TagError::LengthRange {
                    tag: tag(),
                    length: n,
                },
            )?),
            (_, Some(_)) => return Err(misplaced("length", "dtype 'string'")),
            (_, None) => None,
        };
        let byte = match (dtype, params.byte) {
            (Dtype::Int8 | Dtype::Uint8, Some(b)) => ByteHalf::parse(b).map_err(unknown)?,
            (Dtype::Int8 | Dtype::Uint8, None) => ByteHalf::High,
            (_, Some(_)) => return Err(misplaced("byte", "dtypes 'int8' and 'uint8'")),
            (_, None) => ByteHalf::High,
        };

        let scale = params.scale.unwrap_or(1.0);
        let offset = params.offset.unwrap_or(0.0);
        if !scale.is_finite() || scale == 0.0 {
            return Err(TagError::Scale { tag: tag(), scale });
        }
        if !offset.is_finite() {
            return Err(TagError::Offset { tag: tag(), offset });
        }
        if !dtype.is_numeric() && (scale != 1.0 || offset != 0.0) {
            return Err(TagError::NotScalable {
                tag: tag(),
                dtype: dtype.name(),
            });
        }

        let width = match length {
            Some(n) => usize::from(n),
            None => dtype.width().unwrap_or(1),
        };
        if usize::from(address) + width > 65536 {
            return Err(TagError::PastEnd {
                tag: tag(),
                dtype: dtype.name(),
                address,
                width,
            });
        }
        Ok(TagSpec {
            name: name.to_owned(),
            address,
            unit: params.unit.map(str::to_owned),
            length,
            layout: Layout {
                dtype,
                order,
                scale,
                offset,
                bit,
                byte,
                width,
            },
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn address(&self) -> u16 {
        self.address
    }
    pub fn dtype(&self) -> Dtype {
        self.layout.dtype
    }
    pub fn order(&self) -> Order {
        self.layout.order
    }
    pub fn scale(&self) -> f64 {
        self.layout.scale
    }
    pub fn offset(&self) -> f64 {
        self.layout.offset
    }
    /// The bit index of a `bit` tag.
    pub fn bit(&self) -> Option<u8> {
        (self.layout.dtype == Dtype::Bit).then_some(self.layout.bit)
    }
    /// The register count of a `string` tag.
    pub fn length(&self) -> Option<u16> {
        self.length
    }
    /// The byte an `int8`/`uint8` tag reads.
    pub fn byte(&self) -> Option<ByteHalf> {
        matches!(self.layout.dtype, Dtype::Int8 | Dtype::Uint8).then_some(self.layout.byte)
    }
    pub fn unit(&self) -> Option<&str> {
        self.unit.as_deref()
    }
    /// Registers the tag occupies.
    pub fn width(&self) -> usize {
        self.layout.width
    }
    /// One past the last register address the tag occupies.
    pub fn end(&self) -> usize {
        usize::from(self.address) + self.layout.width
    }
    /// True when scale/offset turn the value into a float.
    pub fn is_scaled(&self) -> bool {
        self.layout.is_scaled()
    }
}
