//! Modbus register decoding: 16-bit registers in, typed engineering values out.
//!
//! Every vendor packs values differently, so a tag states its data type
//! ([`Dtype`]), its byte [`Order`] and a linear scaling. A [`Plan`] is a
//! validated list of tags over one register block; it decodes one poll
//! ([`Plan::decode`]), many polls at once into columns ([`Plan::decode_many`]),
//! and encodes values back into registers ([`Plan::encode`]) for simulators and
//! tests. [`decode_array`] and [`encode_array`] handle whole blocks of one type
//! (waveform blocks) without per-value overhead.
//!
//! # Orders
//! The four order names are two independent switches that apply to every
//! type alike (16, 32 and 64-bit values and strings):
//!
//! | order  | registers (word order) | bytes inside each register |
//! |--------|------------------------|----------------------------|
//! | `ABCD` | as sent (big-endian)   | as sent (high byte first)  |
//! | `CDAB` | reversed               | as sent                    |
//! | `BADC` | as sent                | swapped                    |
//! | `DCBA` | reversed               | swapped                    |
//!
//! For single-register types (including `bit`, `int8` and `uint8`) only the
//! byte switch matters: the bit index and the high/low byte refer to the
//! register after the byte swap.
//!
//! # Scaling
//! A numeric tag decodes to `raw * scale + offset`. When `scale == 1` and
//! `offset == 0` integer types (and BCD) stay integers; any other scaling
//! gives a float. Floats are always floats. `bit` and `string` tags cannot be
//! scaled.

mod array;
mod error;
mod kernel;
mod plan;
mod types;

pub use array::{decode_array, encode_array, Numbers, RegisterBlock};
pub use error::{ArrayError, DecodeError, EncodeError, TagError, UnknownName};
pub use plan::{Column, EncodeValue, Plan, Value};
pub use types::{ByteHalf, Dtype, Order, TagParams, TagSpec};

#[cfg(test)]
mod tests;
