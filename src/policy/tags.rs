//! A tags file (tags.json): a JSON object of tag keys to values, checked
//! against IAM's tag rules.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::message::{describe_char, input_error, quoted, shown};
use super::text::{decode_text, json_error_message, EMPTY_DOCUMENT};
use crate::error::Result;

const MAX_TAGS: usize = 50;
const TAG_KEY_MAX: usize = 128;
const TAG_VALUE_MAX: usize = 256;

/// Tags file (tags.json): a JSON object of string -> string. Returns pairs in file order.
/// IAM rules: at most 50 tags; key 1-128 chars, value 0-256 chars, characters [\p{L}\p{Z}\p{N}_.:/=+\-@]; keys may not start with "aws:" (case-insensitive).
pub fn check_tags(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let text = decode_text(bytes).map_err(|message| {
        if message == EMPTY_DOCUMENT {
            input_error(format!("{EMPTY_DOCUMENT}; write {{}} for no tags"))
        } else {
            input_error(message)
        }
    })?;
    // Parsed as a list of pairs, not a map, so that a repeated key is reported
    // instead of one of its values being dropped without a word.
    let TagPairs(pairs) =
        serde_json::from_str(text).map_err(|err| input_error(json_error_message(text, &err)))?;
    if pairs.len() > MAX_TAGS {
        return Err(input_error(format!(
            "{} tags; IAM allows at most {MAX_TAGS} on one entity",
            pairs.len()
        )));
    }
    pairs
        .into_iter()
        .map(|(key, value)| {
            check_tag_key(&key)?;
            let Value::String(value) = value else {
                return Err(input_error(format!(
                    "tag {}: the value must be a string, not {}",
                    quoted(&key),
                    shown(&value)
                )));
            };
            check_tag_value(&key, &value)?;
            Ok((key, value))
        })
        .collect()
}

/// IAM's tag pattern [\p{L}\p{Z}\p{N}_.:/=+\-@]. `is_alphabetic` is a slight
/// superset of \p{L} (it adds letter-like marks), so this never refuses a
/// character IAM takes; \p{Z} is exactly the whitespace that is not a control.
fn is_tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

const TAG_CHARACTERS: &str = "letters, digits, spaces and _ . : / = + - @";

fn check_tag_key(key: &str) -> Result<()> {
    let length = key.chars().count();
    if length == 0 {
        return Err(input_error(
            "a tag key cannot be empty; IAM requires 1 to 128 characters",
        ));
    }
    if length > TAG_KEY_MAX {
        return Err(input_error(format!(
            "tag key {} is {length} characters; IAM allows at most {TAG_KEY_MAX}",
            quoted(key)
        )));
    }
    if let Some(c) = key.chars().find(|&c| !is_tag_char(c)) {
        return Err(input_error(format!(
            "tag key {}: character {} is not allowed; IAM allows {TAG_CHARACTERS}",
            quoted(key),
            describe_char(c)
        )));
    }
    if key
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("aws:"))
    {
        return Err(input_error(format!(
            "tag key {}: the \"aws:\" prefix is reserved for AWS",
            quoted(key)
        )));
    }
    Ok(())
}

fn check_tag_value(key: &str, value: &str) -> Result<()> {
    let length = value.chars().count();
    if length > TAG_VALUE_MAX {
        return Err(input_error(format!(
            "tag {}: the value is {length} characters; IAM allows at most {TAG_VALUE_MAX}",
            quoted(key)
        )));
    }
    if let Some(c) = value.chars().find(|&c| !is_tag_char(c)) {
        return Err(input_error(format!(
            "tag {}: character {} in the value is not allowed; IAM allows {TAG_CHARACTERS}",
            quoted(key),
            describe_char(c)
        )));
    }
    Ok(())
}

/// A JSON object read as its key/value pairs in file order; a repeated key is an
/// error, reported by serde_json at the line and column where it repeats.
struct TagPairs(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for TagPairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;

        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = TagPairs;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of tags, such as {\"Team\": \"web\"}")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TagPairs, A::Error> {
                let mut pairs = Vec::new();
                let mut keys = HashSet::new();
                // The key is checked before its value is read, so that the error's
                // position points at the repeated key.
                while let Some(key) = map.next_key::<String>()? {
                    if !keys.insert(key.clone()) {
                        return Err(de::Error::custom(format!(
                            "tag key {} appears twice",
                            quoted(&key)
                        )));
                    }
                    let value = map.next_value::<Value>()?;
                    pairs.push((key, value));
                }
                Ok(TagPairs(pairs))
            }
        }

        deserializer.deserialize_map(PairsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map};

    use super::*;
    use crate::error::ErrorKind;
    use crate::policy::testing::assert_mentions;

    fn tags_refused(text: &str) -> String {
        match check_tags(text.as_bytes()) {
            Ok(tags) => panic!("expected {text:?} to be refused, got {tags:?}"),
            Err(err) => {
                assert_eq!(err.kind, ErrorKind::InvalidInput);
                err.message
            }
        }
    }

    #[test]
    fn tags_keep_file_order() {
        let tags = check_tags(
            br#"{"Zeta": "1", "Alpha": "", "Cost Center": "12345", "k:/=+-@_.": "v:/=+-@_. x"}"#,
        )
        .unwrap();
        let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["Zeta", "Alpha", "Cost Center", "k:/=+-@_."]);
        assert_eq!(tags[1].1, "");
        assert_eq!(check_tags(b"{}").unwrap(), vec![]);
    }

    #[test]
    fn tags_accept_letters_and_digits_of_any_script() {
        let tags = check_tags(
            "{\"Équipe\": \"Ünïcödé 東京 ٣\", \"部署\": \"開発\u{3000}チーム\"}".as_bytes(),
        )
        .unwrap();
        assert_eq!(tags.len(), 2);
    }

    #[test]
    fn tag_count_is_limited_to_50() {
        let tags = |n: usize| {
            let map: Map<String, Value> = (0..n).map(|i| (format!("k{i}"), json!("v"))).collect();
            Value::Object(map).to_string()
        };
        assert_eq!(check_tags(tags(50).as_bytes()).unwrap().len(), 50);
        assert_mentions(&tags_refused(&tags(51)), &["51 tags", "at most 50"]);
    }

    #[test]
    fn tag_key_and_value_lengths() {
        let key = |n: usize| "k".repeat(n);
        check_tags(json!({key(128): "v".repeat(256)}).to_string().as_bytes()).unwrap();
        assert_mentions(
            &tags_refused(&json!({key(129): "v"}).to_string()),
            &["129 characters", "at most 128"],
        );
        assert_mentions(
            &tags_refused(&json!({"k": "v".repeat(257)}).to_string()),
            &["257 characters", "at most 256"],
        );
        assert_mentions(&tags_refused(r#"{"": "v"}"#), &["tag key cannot be empty"]);
        // Length is in characters, not bytes.
        check_tags(
            json!({"é".repeat(128): "é".repeat(256)})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    }

    #[test]
    fn tag_characters_are_checked() {
        assert_mentions(
            &tags_refused(r#"{"a#b": "v"}"#),
            &["tag key \"a#b\"", "'#'", "letters, digits, spaces"],
        );
        assert_mentions(
            &tags_refused(r#"{"k": "a,b"}"#),
            &["tag \"k\"", "','", "in the value"],
        );
        assert_mentions(&tags_refused(r#"{"k": "tab\there"}"#), &["U+0009"]);
        assert_mentions(&tags_refused(r#"{"k": "smile 😀"}"#), &["U+1F600"]);
    }

    #[test]
    fn tag_keys_may_not_use_the_aws_prefix() {
        for key in ["aws:createdBy", "AWS:x", "Aws:"] {
            assert_mentions(
                &tags_refused(&json!({key: "v"}).to_string()),
                &["\"aws:\" prefix is reserved"],
            );
        }
        check_tags(br#"{"awsome": "v", "my:aws:key": "aws:value"}"#).unwrap();
    }

    #[test]
    fn tags_file_shape_is_checked() {
        assert_mentions(
            &tags_refused(r#"{"k": 5}"#),
            &["tag \"k\"", "must be a string, not 5"],
        );
        assert_mentions(
            &tags_refused(r#"["k", "v"]"#),
            &["line 1, column 1", "a JSON object of tags"],
        );
        assert_mentions(
            &tags_refused("{\n  \"k\": \"1\",\n  \"k\": \"2\"\n}"),
            &["line 3, column 5: tag key \"k\" appears twice"],
        );
        assert_mentions(&tags_refused("{\"k\": \"v\",}"), &["line 1, column 11"]);
        assert_mentions(&tags_refused(""), &["empty document", "{}"]);
        assert_mentions(&tags_refused("{\"k\": \"\0\"}"), &["NUL"]);
        let err = check_tags(b"\xc3\x28").unwrap_err();
        assert_eq!(err.code, "InvalidInput");
        assert_mentions(&err.message, &["not UTF-8"]);
    }
}
