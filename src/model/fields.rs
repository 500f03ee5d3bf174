//! Reading a JSON body field by field, each error naming its field, and `key_part!`, which
//! makes a part of a key from one list of its fields: the part, its create and PATCH parsers,
//! and its serde form (the view, the stored attributes and the audit record all write it).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::FieldError;

/// A JSON object body, consumed field by field so each error names its field.
pub struct JsonFields(Map<String, Value>);

impl JsonFields {
    /// Anything but a JSON object is refused as a whole, under the name `body`.
    pub fn new(body: Value) -> Result<Self, FieldError> {
        match body {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(FieldError::invalid("body", "the body must be a JSON object")),
        }
    }

    /// Rejects server-set and unknown fields before any field is read.
    pub(crate) fn only(self, allowed: &[&str], read_only: &[&str]) -> Result<Self, FieldError> {
        if let Some(name) = self.0.keys().find(|k| read_only.contains(&k.as_str())) {
            return Err(FieldError::read_only(name.as_str()));
        }
        if let Some(name) = self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(FieldError::unknown(name.as_str()));
        }
        Ok(self)
    }

    /// The raw value of a field, taken out of the body.
    pub(crate) fn take(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name)
    }

    /// Absent and `null` both give `None`.
    pub(crate) fn optional<T: DeserializeOwned>(
        &mut self,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, FieldError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => decode(value, name, expected).map(Some),
        }
    }

    pub(crate) fn required<T: DeserializeOwned>(&mut self, name: &str, expected: &str) -> Result<T, FieldError> {
        self.optional(name, expected)?.ok_or_else(|| FieldError::missing(name))
    }

    /// For PATCH: absent keeps, `null` clears, a value sets.
    pub(crate) fn change<T: DeserializeOwned>(
        &mut self,
        name: &str,
        expected: &str,
    ) -> Result<Change<Option<T>>, FieldError> {
        match self.0.remove(name) {
            None => Ok(Change::Keep),
            Some(Value::Null) => Ok(Change::Set(None)),
            Some(value) => decode(value, name, expected).map(|v| Change::Set(Some(v))),
        }
    }

    /// A part's field in a create body: absent and `null` give its default, a value goes
    /// through the field's rule.
    pub(crate) fn created<T: Default>(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        rule: impl FnOnce(Value, DateTime<Utc>) -> Result<T, FieldError>,
    ) -> Result<T, FieldError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(T::default()),
            Some(value) => rule(value, now),
        }
    }

    /// A part's field in a PATCH body: absent keeps, `null` clears (or is refused, for a field
    /// that cannot be null), a value goes through the field's rule.
    pub(crate) fn patched<T: Nullable>(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        rule: impl FnOnce(Value, DateTime<Utc>) -> Result<T, FieldError>,
    ) -> Result<Change<T>, FieldError> {
        match self.0.remove(name) {
            None => Ok(Change::Keep),
            Some(Value::Null) => {
                T::null().map(Change::Set).ok_or_else(|| FieldError::invalid(name, format!("{name} cannot be null")))
            }
            Some(value) => rule(value, now).map(Change::Set),
        }
    }
}

/// A field's value as the type `expected` names, or an error saying so.
pub(crate) fn decode<T: DeserializeOwned>(value: Value, name: &str, expected: &str) -> Result<T, FieldError> {
    serde_json::from_value(value).map_err(|_| FieldError::invalid(name, format!("{name} must be {expected}")))
}

/// What `null` sets a field to in a PATCH: an optional field is cleared; a list or an object
/// (emptied with `[]` or `{}`) cannot be null.
pub trait Nullable: Sized {
    /// The cleared value, or `None` if the field cannot be null.
    fn null() -> Option<Self>;
}

impl<T> Nullable for Option<T> {
    fn null() -> Option<Self> {
        Some(None)
    }
}

impl<T> Nullable for Vec<T> {
    fn null() -> Option<Self> {
        None
    }
}

impl Nullable for Map<String, Value> {
    fn null() -> Option<Self> {
        None
    }
}

/// A PATCH field: left as it is, or set (to a value or to null).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub enum Change<T> {
    /// The field was absent: the stored value stays.
    #[default]
    Keep,
    /// The field was present: the stored value becomes this (`None` for a `null` that clears).
    Set(T),
}

impl<T> Change<T> {
    pub(crate) fn try_map<U>(self, f: impl FnOnce(T) -> Result<U, FieldError>) -> Result<Change<U>, FieldError> {
        match self {
            Change::Keep => Ok(Change::Keep),
            Change::Set(v) => f(v).map(Change::Set),
        }
    }

    /// Whether the body named the field at all.
    pub fn is_set(&self) -> bool {
        matches!(self, Change::Set(_))
    }
}

/// A whole number however JSON spells it: `60`, `60.0` and `6e1` are one value, as JSON
/// Schema's `integer` (openapi.yaml) reads them.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    reason = "the cast runs only on a whole f64 within 0..=2^64, and `as` saturates at 2^64"
)]
pub(crate) fn whole(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let f = value.as_f64()?;
        (f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f)).then_some(f as u64)
    })
}

/// Text of at most `max_chars` characters without control characters, empty only if
/// `empty_ok` (white space alone counts as empty).
pub(crate) fn bounded_text(text: String, field: &str, max_chars: usize, empty_ok: bool) -> Result<String, FieldError> {
    let chars = text.chars().count();
    if (!empty_ok && text.trim().is_empty()) || chars > max_chars || text.chars().any(char::is_control) {
        let range = if empty_ok { "up to" } else { "1 to" };
        return Err(FieldError::invalid(
            field,
            format!("{field} must be {range} {max_chars} characters, without control characters"),
        ));
    }
    Ok(text)
}

/// A whole number from 1 to `max` under `parent.name` of an object, taken out of it; absent
/// and `null` give `None`.
pub(crate) fn whole_number(
    map: &mut Map<String, Value>,
    parent: &str,
    name: &str,
    max: u64,
) -> Result<Option<u64>, FieldError> {
    let field = format!("{parent}.{name}");
    match map.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match whole(&v) {
            Some(n) if (1..=max).contains(&n) => Ok(Some(n)),
            _ => Err(FieldError::invalid(&field, format!("{field} must be a whole number from 1 to {max}"))),
        },
    }
}

/// A nested object of a body (`rateLimit`, `ratelimits[2]`), its server-set and unknown fields
/// refused by their full names.
pub(crate) fn object(
    value: Value,
    field: &str,
    allowed: &[&str],
    read_only: &[&str],
) -> Result<Map<String, Value>, FieldError> {
    let Value::Object(map) = value else {
        return Err(FieldError::invalid(field, format!("{field} must be an object")));
    };
    if let Some(name) = map.keys().find(|k| read_only.contains(&k.as_str())) {
        return Err(FieldError::read_only(format!("{field}.{name}")));
    }
    if let Some(name) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(FieldError::unknown(format!("{field}.{name}")));
    }
    Ok(map)
}

/// How many names the lists hold together, for `concat`'s length.
pub const fn total(lists: &[&[&str]]) -> usize {
    let (mut n, mut i) = (0, 0);
    while i < lists.len() {
        n += lists[i].len();
        i += 1;
    }
    n
}

/// The lists' names one after another, so a body's field list is built from its parts' lists
/// at compile time.
pub const fn concat<const N: usize>(lists: &[&[&'static str]]) -> [&'static str; N] {
    let mut all = [""; N];
    let (mut n, mut i) = (0, 0);
    while i < lists.len() {
        let mut j = 0;
        while j < lists[i].len() {
            all[n] = lists[i][j];
            n += 1;
            j += 1;
        }
        i += 1;
    }
    all
}

/// What the shared round-trip test needs of a part; `key_part!` implements it.
#[cfg(test)]
pub(crate) trait PartForTests:
    Default + PartialEq + std::fmt::Debug + Clone + Serialize + DeserializeOwned
{
    /// The fields' JSON names.
    const NAMES: &'static [&'static str];
    /// The part as a create body gives it.
    fn from_body(body: Value, now: DateTime<Utc>) -> Result<Self, FieldError>;
    /// `self` after a PATCH body of the part.
    fn patched(self, body: Value, now: DateTime<Utc>) -> Result<Self, FieldError>;
}

/// Every field of a part goes through a create body, its serde form (the stored attributes,
/// `stored`, which reads back as it was) and a PATCH unchanged, and a PATCH of one field
/// changes only it.
#[cfg(test)]
pub(crate) fn assert_round_trip<P: PartForTests>(body: &Value, stored: &Value, now: DateTime<Utc>) {
    use std::collections::BTreeSet;
    let named: BTreeSet<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(named, P::NAMES.iter().copied().collect(), "the body names each field");
    let part = P::from_body(body.clone(), now).unwrap();
    assert_ne!(part, P::default());
    assert_eq!(&serde_json::to_value(&part).unwrap(), stored);
    assert_eq!(serde_json::from_value::<P>(stored.clone()).unwrap(), part);
    assert_eq!(P::default().patched(body.clone(), now).unwrap(), part);
    let untouched = serde_json::to_value(P::default()).unwrap();
    for name in P::NAMES {
        let one = P::default().patched(serde_json::json!({ *name: body[name] }), now).unwrap();
        let shown = serde_json::to_value(&one).unwrap();
        for other in P::NAMES {
            let expected = if other == name { &stored[other] } else { &untouched[other] };
            assert_eq!(&shown[other], expected, "a PATCH of {name} shows {other}");
        }
    }
}

/// A part of a key: fields that change together, each written once with its JSON name and its
/// rule (`fn(Value, now) -> Result<T, FieldError>`, for a value that is not `null`). It makes:
///
/// - the part, whose serde form (the JSON names given) is what the key's item stores and, but
///   for a field the view shows its own way (`serialize_entries`), what the view shows and the
///   audit records diff;
/// - `FIELDS`, the names a body may give, and `parse`, which reads them from a create body
///   (absent and `null` give a field's default);
/// - the PATCH group (`Change` per field), with `parse` (absent keeps, `null` clears or is
///   refused, as [`Nullable`] says) and `apply`.
macro_rules! key_part {
    (
        $(#[$meta:meta])*
        pub struct $part:ident, changed by $patch:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident: $ty:ty = $name:literal by $rule:expr,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
        pub struct $part {
            $(
                $(#[$field_meta])*
                #[serde(rename = $name)]
                pub $field: $ty,
            )+
        }

        impl $part {
            /// The fields' JSON names, as bodies, views, items and audit records write them.
            pub const FIELDS: &'static [&'static str] = &[$($name),+];

            /// The part as a create body gives it.
            pub(crate) fn parse(
                fields: &mut $crate::model::fields::JsonFields,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Self, $crate::model::FieldError> {
                Ok(Self { $($field: fields.created($name, now, $rule)?,)+ })
            }

            /// Writes each field into `map` under its JSON name, in order, as the serde form
            /// does; `own_way` writes a field another way instead when it returns `true` (a
            /// view that shows a field with more than the part holds).
            pub fn serialize_entries<M: serde::ser::SerializeMap>(
                &self,
                map: &mut M,
                mut own_way: impl FnMut(&str, &mut M) -> Result<bool, M::Error>,
            ) -> Result<(), M::Error> {
                $(
                    if !own_way($name, map)? {
                        map.serialize_entry($name, &self.$field)?;
                    }
                )+
                Ok(())
            }
        }

        #[doc = concat!("A PATCH of [`", stringify!($part), "`]: only the fields the body names change.")]
        #[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
        pub struct $patch {
            $(
                #[doc = concat!("`", $name, "`: absent keeps it.")]
                #[serde(rename = $name)]
                pub $field: $crate::model::fields::Change<$ty>,
            )+
        }

        impl $patch {
            /// The fields a PATCH body names of this part.
            pub(crate) fn parse(
                fields: &mut $crate::model::fields::JsonFields,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Self, $crate::model::FieldError> {
                Ok(Self { $($field: fields.patched($name, now, $rule)?,)+ })
            }

            /// Sets the fields the PATCH names on `part`.
            pub fn apply(&self, part: &mut $part) {
                $(
                    if let $crate::model::fields::Change::Set(value) = &self.$field {
                        part.$field = value.clone();
                    }
                )+
            }
        }

        #[cfg(test)]
        impl $crate::model::fields::PartForTests for $part {
            const NAMES: &'static [&'static str] = Self::FIELDS;

            fn from_body(
                body: serde_json::Value,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Self, $crate::model::FieldError> {
                Self::parse(&mut $crate::model::fields::JsonFields::new(body)?, now)
            }

            fn patched(
                mut self,
                body: serde_json::Value,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Self, $crate::model::FieldError> {
                $patch::parse(&mut $crate::model::fields::JsonFields::new(body)?, now)?.apply(&mut self);
                Ok(self)
            }
        }
    };
}

pub(crate) use key_part;
