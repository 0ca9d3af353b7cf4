//! `app_metadata` / `user_metadata` objects and GoTrue's shallow merge (`null` deletes a key).

use serde_json::{Map, Value};

use super::ValidationError;

/// Metadata is stored inline in the user row and copied into every access token.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

pub type Metadata = Map<String, Value>;

/// Shallow merge: keys in `patch` overwrite, `null` values remove (spec §1.9).
pub fn merge(target: &mut Metadata, patch: Metadata) {
    for (key, value) in patch {
        if value.is_null() {
            target.remove(&key);
        } else {
            target.insert(key, value);
        }
    }
}

/// Refuses metadata whose JSON exceeds [`MAX_METADATA_BYTES`].
pub fn check_size(field: &'static str, metadata: &Metadata) -> Result<(), ValidationError> {
    let len = serde_json::to_string(metadata)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if len > MAX_METADATA_BYTES {
        return Err(ValidationError::new(
            field,
            format!("{field} must be at most {MAX_METADATA_BYTES} bytes of JSON"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_overwrites_shallowly_and_null_deletes() {
        let mut target = json!({"a": 1, "b": {"x": 1}, "c": 3})
            .as_object()
            .unwrap()
            .clone();
        let patch = json!({"b": {"y": 2}, "c": null, "d": 4})
            .as_object()
            .unwrap()
            .clone();
        merge(&mut target, patch);
        assert_eq!(
            Value::Object(target),
            json!({"a": 1, "b": {"y": 2}, "d": 4})
        );
    }

    #[test]
    fn size_is_capped() {
        let big = json!({"k": "x".repeat(MAX_METADATA_BYTES)})
            .as_object()
            .unwrap()
            .clone();
        assert!(check_size("data", &big).is_err());
    }
}
