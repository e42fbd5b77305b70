//! Decoding untrusted JSON in one streaming pass, with its checks built in.
//!
//! [`decode`] runs the typed `Deserialize` of a model type over a
//! serde_json stream wrapped in a guarding deserializer that sees every
//! value as it passes, whatever type asked for it, so a field added to the
//! model is covered without being listed:
//! - every string is [`sanitize::escape`]d before the model gets it (text
//!   from a run file is data: it cannot reach a terminal as a control);
//! - every amount (integer or float) is summed, and decoding stops once
//!   the sum passes [`MAX_TOTAL_AMOUNT`], or at a float that is not finite
//!   (`1e308` would print as 309 digits); numbers under the keys in
//!   [`ADDRESS_KEYS`] are addresses, not amounts;
//! - every element, map entry and string charges its in-memory size to the
//!   command's [`Budget`] (an element twice its size: a Vec's capacity is
//!   under twice its length; and when a Vec doubles, its old buffer is
//!   checked as held for that moment), and decoding stops when the decoded
//!   form outgrows the bytes read (padding, amplification).
//!
//! No `serde_json::Value` of the whole file is built; memory is the decoded
//! model plus the reader's buffer.

use std::cell::Cell;
use std::fmt;
use std::mem::size_of;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::budget::{Budget, Exceeded};
use crate::sanitize;

/// Largest sum of all the amounts (samples, ns, counts, costs) in one file.
/// Every sum the report computes adds up a subset of them, so none can
/// overflow a u64; a real run is many orders of magnitude below (1000
/// episodes of 10 s of CPU time each is about 2^43 ns).
pub const MAX_TOTAL_AMOUNT: u128 = 1 << 62;

/// Keys whose numbers are addresses, not amounts (never summed).
pub const ADDRESS_KEYS: &[&str] = &[
    "addresses",
    "first",
    "last",
    // Issue 25's walker steps and PTE-lock waits (reaper_model::collision).
    "range_start",
    "range_end",
    "lock",
    "addr",
];

/// A `BTreeMap` entry's share of its node beyond the key and value
/// (parent pointer, index and length, amortised over a node's 11 slots).
const MAP_ENTRY_OVERHEAD: u64 = 16;
/// Slots a Vec holds per element once grown by doubling (its capacity is
/// under twice its length); a `BTreeMap` node is at least half full, so
/// the same factor covers a map entry.
const SLOTS_PER_ELEMENT: u64 = 2;

/// Why the guard stopped a decode (beyond the parser's own errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The amounts add up past [`MAX_TOTAL_AMOUNT`], or one is not finite.
    Amounts(String),
    /// The command's budget ran out.
    Budget(Exceeded),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Amounts(why) => f.write_str(why),
            Self::Budget(e) => e.fmt(f),
        }
    }
}

/// What one decode has seen so far; shared by every nested access.
struct Tally<'b> {
    budget: &'b Budget,
    amounts: Cell<u128>,
    /// Nesting depth of values under an address key.
    under_address: Cell<u32>,
    /// Whether the last string seen was an address key.
    last_was_address: Cell<bool>,
    /// Strings are charged unless they are a struct's field names (matched,
    /// never stored).
    charge_strings: Cell<bool>,
    stop: Cell<Option<Stop>>,
}

impl Tally<'_> {
    fn fail<E: de::Error>(&self, stop: Stop) -> E {
        let e = E::custom(&stop);
        self.stop.set(Some(stop));
        e
    }

    fn memory<E: de::Error>(&self, bytes: u64) -> Result<(), E> {
        self.budget
            .charge_memory(bytes)
            .map_err(|e| self.fail(Stop::Budget(e)))
    }

    fn transient<E: de::Error>(&self, bytes: u64) -> Result<(), E> {
        self.budget
            .check_transient(bytes)
            .map_err(|e| self.fail(Stop::Budget(e)))
    }

    fn amount<E: de::Error>(&self, amount: u128) -> Result<(), E> {
        if self.under_address.get() > 0 {
            return Ok(());
        }
        let total = self.amounts.get().saturating_add(amount);
        self.amounts.set(total);
        if total > MAX_TOTAL_AMOUNT {
            return Err(self.fail(Stop::Amounts(format!(
                "its counts and durations add up to more than {MAX_TOTAL_AMOUNT} (2^62), beyond any real run"
            ))));
        }
        Ok(())
    }

    fn float<E: de::Error>(&self, v: f64) -> Result<(), E> {
        if !v.is_finite() || v.abs() > MAX_TOTAL_AMOUNT as f64 {
            return Err(self.fail(Stop::Amounts(format!(
                "a number ({v:e}) beyond any real measurement (limit {MAX_TOTAL_AMOUNT}, 2^62)"
            ))));
        }
        self.amount(v.abs().ceil() as u128)
    }

    fn string<E: de::Error>(&self, s: &str) -> Result<(), E> {
        self.last_was_address.set(ADDRESS_KEYS.contains(&s));
        if self.charge_strings.get() {
            self.memory(s.len() as u64)?;
        }
        Ok(())
    }
}

/// Decodes a `T` from `de` through the guard, charging `budget`. On an
/// error, the guard's own reason (if it stopped the decode) comes with it.
pub fn decode<'de, T, D>(de: D, budget: &Budget) -> Result<T, (D::Error, Option<Stop>)>
where
    T: de::Deserialize<'de>,
    D: Deserializer<'de>,
{
    let tally = Tally {
        budget,
        amounts: Cell::new(0),
        under_address: Cell::new(0),
        last_was_address: Cell::new(false),
        charge_strings: Cell::new(true),
        stop: Cell::new(None),
    };
    T::deserialize(Guarded { de, tally: &tally }).map_err(|e| (e, tally.stop.take()))
}

/// The guarding deserializer around `de`.
struct Guarded<'a, 'b, D> {
    de: D,
    tally: &'a Tally<'b>,
}

/// What a visitor was asked to decode: a struct's map holds fields stored
/// inline (their size is the struct's), a map's entries are allocated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Struct,
    Other,
}

struct Visit<'a, 'b, V> {
    inner: V,
    tally: &'a Tally<'b>,
    shape: Shape,
}

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
            self.de.$method($($arg,)* Visit { inner: visitor, tally: self.tally, shape: Shape::Other })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guarded<'_, '_, D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visit = Visit {
            inner: visitor,
            tally: self.tally,
            shape: Shape::Struct,
        };
        self.de.deserialize_struct(name, fields, visit)
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

macro_rules! forward_integer {
    ($($method:ident($ty:ty) as $wide:ty;)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.tally.amount(<$wide>::from(v).unsigned_abs().into())?;
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Visit<'_, '_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_integer! {
        visit_i8(i8) as i64;
        visit_i16(i16) as i64;
        visit_i32(i32) as i64;
        visit_i64(i64) as i64;
        visit_i128(i128) as i128;
        visit_u8(u8) as i64;
        visit_u16(u16) as i64;
        visit_u32(u32) as i64;
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.tally.amount(v.into())?;
        self.inner.visit_u64(v)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        self.tally.amount(v)?;
        self.inner.visit_u128(v)
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<Self::Value, E> {
        self.tally.float(v.into())?;
        self.inner.visit_f32(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.tally.float(v)?;
        self.inner.visit_f64(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.inner.visit_bool(v)
    }

    fn visit_char<E: de::Error>(self, v: char) -> Result<Self::Value, E> {
        match sanitize::escape(v.encode_utf8(&mut [0; 4])) {
            std::borrow::Cow::Borrowed(_) => self.inner.visit_char(v),
            std::borrow::Cow::Owned(s) => self.inner.visit_string(s),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.tally.string(v)?;
        match sanitize::escape(v) {
            std::borrow::Cow::Borrowed(v) => self.inner.visit_str(v),
            std::borrow::Cow::Owned(s) => self.inner.visit_string(s),
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.tally.string(v)?;
        match sanitize::escape(v) {
            std::borrow::Cow::Borrowed(v) => self.inner.visit_borrowed_str(v),
            std::borrow::Cow::Owned(s) => self.inner.visit_string(s),
        }
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.tally.string(&v)?;
        match sanitize::escape(&v) {
            std::borrow::Cow::Borrowed(_) => self.inner.visit_string(v),
            std::borrow::Cow::Owned(s) => self.inner.visit_string(s),
        }
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        self.tally.memory(v.len() as u64)?;
        self.inner.visit_bytes(v)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        self.tally.memory(v.len() as u64)?;
        self.inner.visit_borrowed_bytes(v)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        self.tally.memory(v.len() as u64)?;
        self.inner.visit_byte_buf(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Guarded {
            de,
            tally: self.tally,
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Guarded {
            de,
            tally: self.tally,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_seq(Seq {
            seq,
            tally: self.tally,
            len: 0,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(Map {
            map,
            tally: self.tally,
            shape: self.shape,
            value_is_address: false,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(Enum {
            data,
            tally: self.tally,
        })
    }
}

/// A seed whose deserializer is guarded.
struct Seed<'a, 'b, S> {
    seed: S,
    tally: &'a Tally<'b>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, '_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.seed.deserialize(Guarded {
            de,
            tally: self.tally,
        })
    }
}

struct Seq<'a, 'b, A> {
    seq: A,
    tally: &'a Tally<'b>,
    /// Elements so far.
    len: u64,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<'_, '_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        let element = self.seq.next_element_seed(Seed {
            seed,
            tally: self.tally,
        })?;
        if element.is_some() {
            let slot = size_of::<T::Value>() as u64;
            self.len += 1;
            self.tally.memory(SLOTS_PER_ELEMENT * slot)?;
            // A Vec doubles when its length reaches a power of two: for a
            // moment its old buffer is held beside the new one.
            if self.len.is_power_of_two() {
                self.tally.transient(self.len * slot)?;
            }
        }
        Ok(element)
    }

    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

struct Map<'a, 'b, A> {
    map: A,
    tally: &'a Tally<'b>,
    shape: Shape,
    value_is_address: bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<'_, '_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let charged = self
            .tally
            .charge_strings
            .replace(self.shape != Shape::Struct);
        self.tally.last_was_address.set(false);
        let key = self.map.next_key_seed(Seed {
            seed,
            tally: self.tally,
        });
        self.tally.charge_strings.set(charged);
        self.value_is_address = self.tally.last_was_address.get();
        let key = key?;
        if key.is_some() && self.shape != Shape::Struct {
            self.tally
                .memory(SLOTS_PER_ELEMENT * size_of::<K::Value>() as u64 + MAP_ENTRY_OVERHEAD)?;
        }
        Ok(key)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let under = self.tally.under_address.get();
        if self.value_is_address {
            self.tally.under_address.set(under + 1);
        }
        let value = self.map.next_value_seed(Seed {
            seed,
            tally: self.tally,
        });
        self.tally.under_address.set(under);
        let value = value?;
        if self.shape != Shape::Struct {
            self.tally
                .memory(SLOTS_PER_ELEMENT * size_of::<V::Value>() as u64)?;
        }
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

struct Enum<'a, 'b, A> {
    data: A,
    tally: &'a Tally<'b>,
}

impl<'a, 'b, 'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<'a, 'b, A> {
    type Error = A::Error;
    type Variant = Variant<'a, 'b, A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Self::Error> {
        let (value, variant) = self.data.variant_seed(Seed {
            seed,
            tally: self.tally,
        })?;
        Ok((
            value,
            Variant {
                variant,
                tally: self.tally,
            },
        ))
    }
}

struct Variant<'a, 'b, A> {
    variant: A,
    tally: &'a Tally<'b>,
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<'_, '_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.variant.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.variant.newtype_variant_seed(Seed {
            seed,
            tally: self.tally,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.variant.tuple_variant(
            len,
            Visit {
                inner: visitor,
                tally: self.tally,
                shape: Shape::Other,
            },
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.variant.struct_variant(
            fields,
            Visit {
                inner: visitor,
                tally: self.tally,
                shape: Shape::Struct,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::super::budget::MaxInput;
    use super::*;

    fn decode_str<T: de::DeserializeOwned>(text: &str, budget: &Budget) -> Result<T, String> {
        let mut de = serde_json::Deserializer::from_reader(text.as_bytes());
        let value = decode(&mut de, budget).map_err(|(e, stop)| match stop {
            Some(stop) => format!("stop: {stop}"),
            None => e.to_string(),
        })?;
        de.end().map_err(|e| e.to_string())?;
        Ok(value)
    }

    fn roomy() -> Budget {
        let budget = Budget::new(MaxInput::default());
        budget.charge_bytes(1 << 20).unwrap();
        budget
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        name: String,
        samples: u64,
        #[serde(default)]
        first: u64,
        #[serde(default)]
        tags: BTreeMap<String, u64>,
        #[serde(default)]
        cost: f64,
    }

    #[test]
    fn strings_are_escaped_wherever_they_are() {
        let s: Sample = decode_str(
            r#"{"name": "evil\u001b[2J\n::error::x", "samples": 1, "tags": {"a\rb": 2}}"#,
            &roomy(),
        )
        .unwrap();
        assert_eq!(s.name, "evil\\x1b[2J\\n::error::x");
        assert_eq!(s.tags.keys().next().unwrap(), "a\\rb");
    }

    #[test]
    fn amounts_are_bounded_but_addresses_are_not_amounts() {
        let ok: Sample = decode_str(
            r#"{"name": "x", "samples": 1, "first": 18446744073709551615}"#,
            &roomy(),
        )
        .unwrap();
        assert_eq!(ok.first, u64::MAX);
        let err = decode_str::<Sample>(
            r#"{"name": "x", "samples": 1, "tags": {"a": 4611686018427387904, "b": 1}}"#,
            &roomy(),
        )
        .unwrap_err();
        assert!(err.starts_with("stop: its counts"), "{err}");
        let err = decode_str::<Sample>(r#"{"name": "x", "samples": 1, "cost": 1e308}"#, &roomy())
            .unwrap_err();
        assert!(err.contains("beyond any real measurement"), "{err}");
        let err = decode_str::<Sample>(r#"{"name": "x", "samples": 1, "cost": -1e19}"#, &roomy())
            .unwrap_err();
        assert!(err.contains("beyond any real measurement"), "{err}");
    }

    #[test]
    fn amplifying_input_is_stopped_while_it_decodes() {
        // 3 bytes of JSON per 24-byte String: 8×.
        let budget = Budget::new(MaxInput::default());
        let n = 2_000_000;
        let text = format!("[{}\"\"]", "\"\",".repeat(n));
        budget.charge_bytes(text.len() as u64).unwrap();
        let err = decode_str::<Vec<String>>(&text, &budget).unwrap_err();
        assert!(err.starts_with("stop: its decoded form"), "{err}");
        // The same bytes as a plain number list decode within the budget.
        let budget = Budget::new(MaxInput::default());
        let text = format!("[{}0]", "1000000,".repeat(n / 3));
        budget.charge_bytes(text.len() as u64).unwrap();
        let v: Vec<u64> = decode_str(&text, &budget).unwrap();
        assert_eq!(v.len(), n / 3 + 1);
    }

    #[test]
    fn unknown_fields_cost_nothing_and_enums_still_decode() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        enum Tagged {
            One { symbol: String },
        }
        let t: Tagged = decode_str(
            r#"{"kind": "one", "symbol": "s\u0007", "pad": [0, 0, "x"]}"#,
            &roomy(),
        )
        .unwrap();
        assert_eq!(
            t,
            Tagged::One {
                symbol: "s\\x07".to_owned()
            }
        );
    }
}
