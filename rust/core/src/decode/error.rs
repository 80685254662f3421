//! The error enums of register decoding; each message names the tag at fault.

/// A dtype, order or byte-half name that is not one of the known spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?} (expected one of: {expected})")]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
    pub expected: String,
}

/// A tag definition, or a plan of tags, is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TagError {
    #[error("tag {tag:?}: {source}")]
    Unknown {
        tag: String,
        #[source]
        source: UnknownName,
    },
    #[error("a tag name must not be empty (tag at address {address})")]
    EmptyName { address: i64 },
    #[error("tag {tag:?}: address {address} is outside 0..=65535")]
    Address { tag: String, address: i64 },
    #[error(
        "tag {tag:?}: {dtype} at address {address} spans {width} registers and runs past address 65535"
    )]
    PastEnd {
        tag: String,
        dtype: &'static str,
        address: u16,
        width: usize,
    },
    #[error("tag {tag:?}: bit index {bit} is outside 0..=15")]
    BitRange { tag: String, bit: i64 },
    #[error("tag {tag:?}: dtype 'bit' needs a bit index (bit=0..15)")]
    BitMissing { tag: String },
    #[error("tag {tag:?}: dtype 'string' needs length (number of registers, at least 1)")]
    LengthMissing { tag: String },
    #[error("tag {tag:?}: string length {length} is outside 1..=65536 registers")]
    LengthRange { tag: String, length: i64 },
    #[error("tag {tag:?}: `{field}` applies only to {applies}, not to dtype {dtype:?}")]
    Misplaced {
        tag: String,
        field: &'static str,
        applies: &'static str,
        dtype: &'static str,
    },
    #[error("tag {tag:?}: scale must be finite and non-zero, got {scale}")]
    Scale { tag: String, scale: f64 },
    #[error("tag {tag:?}: offset must be finite, got {offset}")]
    Offset { tag: String, offset: f64 },
    #[error("tag {tag:?}: dtype {dtype:?} cannot be scaled (scale must be 1 and offset 0)")]
    NotScalable { tag: String, dtype: &'static str },
    #[error("duplicate tag name {tag:?} (addresses {first} and {second})")]
    Duplicate {
        tag: String,
        first: u16,
        second: u16,
    },
}

/// A register block cannot be decoded as the plan says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "register block too short for tag {tag:?} ({dtype} at address {address}): \
         needs {need} registers from base {base}, got {got}"
    )]
    TooShort {
        tag: String,
        dtype: &'static str,
        address: u16,
        base: i64,
        need: usize,
        got: usize,
    },
    #[error("base address {base} is outside 0..=65535")]
    BadBase { base: i64 },
    #[error("tag {tag:?} at address {address} lies before the block's base address {base}")]
    BeforeBase {
        tag: String,
        address: u16,
        base: i64,
    },
    #[error("tag {tag:?}: invalid BCD {raw:#x}{frame}: a nibble is not a decimal digit")]
    InvalidBcd {
        tag: String,
        raw: u64,
        frame: String,
    },
    /// The decoded columns do not fit in memory (bindings: MemoryError).
    #[error("cannot allocate {rows} decoded rows per tag: out of memory")]
    OutOfMemory { rows: usize },
}

/// A value cannot be encoded for its tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot encode tag {tag:?}: no value given")]
    Missing { tag: String },
    #[error("cannot encode tag {tag:?} ({dtype}): {reason}")]
    Unrepresentable {
        tag: String,
        dtype: &'static str,
        reason: String,
    },
}

/// A block of same-typed values cannot be decoded or encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArrayError {
    #[error("dtype {dtype:?} has no array form (decode it with a plan tag)")]
    NotArrayDtype { dtype: &'static str },
    #[error("{got} registers do not make whole {dtype} values ({width} registers each)")]
    Ragged {
        dtype: &'static str,
        width: usize,
        got: usize,
    },
    #[error("wire bytes must come in pairs (one register each), got {got} bytes")]
    OddBytes { got: usize },
    #[error("scale must be finite and non-zero, got {scale}")]
    Scale { scale: f64 },
    #[error("offset must be finite, got {offset}")]
    Offset { offset: f64 },
    #[error("invalid BCD {raw:#x} at index {index}: a nibble is not a decimal digit")]
    InvalidBcd { index: usize, raw: u64 },
    #[error("value {value} at index {index} cannot be encoded as {dtype}: {reason}")]
    Unrepresentable {
        index: usize,
        value: String,
        dtype: &'static str,
        reason: &'static str,
    },
    #[error("{got} 8-bit values do not fill whole registers (two per register)")]
    OddCount { got: usize },
    /// The result does not fit in memory (bindings: MemoryError).
    #[error("cannot allocate {values} values: out of memory")]
    OutOfMemory { values: usize },
}
