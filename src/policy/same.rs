//! Whether two documents mean the same, so that a save that changes nothing
//! makes no API call.

use serde_json::{Map, Value};

/// The fields where a lone string means the same as a one-element array.
const LIST_FIELDS: &[&str] = &["Action", "NotAction", "Resource", "NotResource"];

/// Two documents mean the same thing (so a save that changes nothing makes no API call):
/// equal as JSON values after parsing; additionally treat a single-string Action/NotAction/Resource/NotResource
/// as equal to a one-element array of it, and ignore key order of objects.
pub fn same_policy(a: &Value, b: &Value) -> bool {
    // serde_json's Map compares as a map (IndexMap's equality ignores insertion
    // order), so key order never matters, at any depth.
    a == b || with_lists_widened(a) == with_lists_widened(b)
}

/// A copy of `doc` where every statement's single-string Action/NotAction/
/// Resource/NotResource is a one-element array.
fn with_lists_widened(doc: &Value) -> Value {
    let mut doc = doc.clone();
    let widen = |statement: &mut Map<String, Value>| {
        for field in LIST_FIELDS {
            if let Some(value) = statement.get_mut(*field) {
                if value.is_string() {
                    *value = Value::Array(vec![value.take()]);
                }
            }
        }
    };
    match doc.get_mut("Statement") {
        Some(Value::Object(statement)) => widen(statement),
        Some(Value::Array(statements)) => statements
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(widen),
        _ => {}
    }
    doc
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::policy::testing::document;
    use crate::policy::{check_policy, DocumentKind};

    #[test]
    fn same_policy_treats_lone_strings_as_one_element_lists() {
        let a = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::x"}]});
        let b = json!({"Statement": [{"NotResource": ["arn:aws:s3:::x"], "Action": ["s3:*"], "Effect": "Allow"}], "Version": "2012-10-17"});
        assert!(same_policy(&a, &b));
        let lone = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}});
        let listed = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": ["*"]}});
        assert!(same_policy(&lone, &listed));
    }

    #[test]
    fn same_policy_sees_real_differences() {
        let a = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]});
        let b = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]});
        let c = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "s3:*"], "Resource": "*"}]});
        let d = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]});
        assert!(!same_policy(&a, &b));
        assert!(!same_policy(&a, &c));
        assert!(!same_policy(&a, &d));
    }

    /// The same value with every object's keys in another (seeded) order.
    fn reordered(value: &Value, seed: u64) -> Value {
        use std::hash::{Hash, Hasher};
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by_key(|(key, _)| {
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    (seed, key).hash(&mut hasher);
                    hasher.finish()
                });
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), reordered(v, seed)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| reordered(v, seed)).collect()),
            other => other.clone(),
        }
    }

    proptest! {
        #[test]
        fn same_policy_is_reflexive_and_ignores_key_order(
            (doc, _text) in document(false, true),
            seed in any::<u64>(),
        ) {
            prop_assert!(same_policy(&doc, &doc));
            let shuffled = reordered(&doc, seed);
            prop_assert!(same_policy(&doc, &shuffled));
            prop_assert!(same_policy(&shuffled, &doc));
            // The shuffled text is still a valid document.
            prop_assert!(check_policy(shuffled.to_string().as_bytes(), DocumentKind::Managed).is_ok());
            // Lone strings written as one-element lists mean the same.
            let widened = with_lists_widened(&shuffled);
            prop_assert!(same_policy(&doc, &widened));
            prop_assert!(same_policy(&widened, &doc));
        }

        #[test]
        fn same_policy_notices_a_changed_effect((doc, _text) in document(false, true)) {
            let mut changed = doc.clone();
            let statement = match &mut changed["Statement"] {
                Value::Array(items) => &mut items[0],
                lone => lone,
            };
            let flipped = if statement["Effect"] == "Allow" { "Deny" } else { "Allow" };
            statement["Effect"] = json!(flipped);
            prop_assert!(!same_policy(&doc, &changed));
        }
    }
}
