//! A key's labels: the company's own words about it, stored and shown, never interpreted.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::FieldError;
use super::fields::{bounded_text, decode, key_part};

// Caps on what a key carries: every view, list page and audit record repeats these fields, so
// they bound the item (DynamoDB's 400 KB) and a page (Lambda's 6 MB answer).
/// Characters of `description`.
pub const MAX_DESCRIPTION_CHARS: usize = 255;
/// Entries of `tags`.
pub const MAX_TAGS: usize = 50;
/// Characters of one tag.
pub const MAX_TAG_CHARS: usize = 128;
/// Bytes of `metadata` written as JSON.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Levels of nesting inside metadata: DynamoDB stores 32, and the attribute itself is one.
pub const MAX_METADATA_DEPTH: usize = 30;

key_part! {
    /// What the company says about a key, for its people: changed by PATCH, never read by verify.
    pub struct Labels, changed by LabelsChange {
        /// Free text for people, up to 255 characters.
        description: Option<String> = "description" by description,
        /// The company's labels, up to 50; `[]` empties them, `null` is refused in a PATCH.
        tags: Vec<String> = "tags" by tags,
        /// The company's own JSON, up to 4 KiB; `{}` empties it, `null` is refused in a PATCH.
        metadata: Map<String, Value> = "metadata" by metadata,
    }
}

fn description(value: Value, _: DateTime<Utc>) -> Result<Option<String>, FieldError> {
    let text: String = decode(value, "description", "a string")?;
    bounded_text(text, "description", MAX_DESCRIPTION_CHARS, true).map(Some)
}

fn tags(value: Value, _: DateTime<Utc>) -> Result<Vec<String>, FieldError> {
    let tags: Vec<String> = decode(value, "tags", "an array of strings")?;
    if tags.len() > MAX_TAGS {
        return Err(FieldError::too_many("tags", MAX_TAGS));
    }
    tags.into_iter().enumerate().map(|(i, t)| bounded_text(t, &format!("tags[{i}]"), MAX_TAG_CHARS, false)).collect()
}

fn metadata(value: Value, _: DateTime<Utc>) -> Result<Map<String, Value>, FieldError> {
    free_json(value, "metadata")
}

/// The company's own JSON under `field` (a key's `metadata`, an identity's `meta`): an object of
/// at most `MAX_METADATA_BYTES` that DynamoDB can keep.
pub(crate) fn free_json(value: Value, field: &str) -> Result<Map<String, Value>, FieldError> {
    let map: Map<String, Value> = decode(value, field, "a JSON object")?;
    let size = serde_json::to_vec(&map).map_or(usize::MAX, |b| b.len());
    if size > MAX_METADATA_BYTES {
        return Err(FieldError::invalid(field, format!("{field} must be at most {MAX_METADATA_BYTES} bytes of JSON")));
    }
    if map.contains_key("") {
        return Err(FieldError::invalid(field, format!("{field} keys cannot be empty")));
    }
    map.values().try_for_each(|v| storable(v, 1, field)).map_err(|problem| FieldError::invalid(field, problem))?;
    Ok(map)
}

/// What DynamoDB can keep: no empty object keys, numbers of magnitude 1e-130 to 1e125 (or 0),
/// bounded nesting. Anything else would fail at write time, as a 503 instead of this 400.
fn storable(value: &Value, depth: usize, field: &str) -> Result<(), String> {
    if depth > MAX_METADATA_DEPTH {
        return Err(format!("{field} nests at most {MAX_METADATA_DEPTH} levels"));
    }
    match value {
        Value::Object(map) if map.contains_key("") => Err(format!("{field} keys cannot be empty")),
        Value::Object(map) => map.values().try_for_each(|v| storable(v, depth + 1, field)),
        Value::Array(list) => list.iter().try_for_each(|v| storable(v, depth + 1, field)),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f == 0.0 || (1e-130..1e125).contains(&f.abs()) => Ok(()),
            _ => Err(format!("{field} numbers must be 0 or of magnitude 1e-130 to 1e125")),
        },
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fields::{JsonFields, assert_round_trip};
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    /// A value of every label as a body gives it (and as the view shows it).
    fn every_label() -> Value {
        json!({ "description": "billing", "tags": ["a", "b"], "metadata": { "plan": "gold", "seats": 3 } })
    }

    fn fields(body: Value) -> JsonFields {
        JsonFields::new(body).unwrap()
    }

    #[test]
    fn every_label_goes_through_body_view_record_and_patch_unchanged() {
        // The view and the stored attributes are the labels' serde form: the body itself.
        assert_round_trip::<Labels>(&every_label(), &every_label(), now());
    }

    #[test]
    fn null_clears_an_optional_label_and_is_refused_for_a_list_or_an_object() {
        let labels = Labels::parse(&mut fields(every_label()), now()).unwrap();
        for name in Labels::FIELDS {
            match LabelsChange::parse(&mut fields(json!({ *name: null })), now()) {
                Ok(change) => {
                    let mut cleared = labels.clone();
                    change.apply(&mut cleared);
                    assert_eq!(serde_json::to_value(&cleared).unwrap()[name], Value::Null, "{name}");
                }
                Err(error) => assert_eq!(error.field, *name),
            }
        }
        let absent = LabelsChange::parse(&mut fields(json!({})), now()).unwrap();
        assert_eq!(absent, LabelsChange::default(), "an absent label is kept");
    }
}
