//! A role's settings.json: the description and maximum session duration
//! that UpdateRole sets, checked against IAM's limits.

use serde_json::Value;

use super::message::{describe_char, input_error, quoted, shown, unknown_element};
use super::text::{decode_text, json_error_message};
use crate::error::Result;

const DESCRIPTION_MAX: usize = 1000;
/// IAM's MaxSessionDuration range, in seconds: one to twelve hours.
pub const SESSION_MIN: i64 = 3600;
pub const SESSION_MAX: i64 = 43200;
const KEYS: [&str; 2] = ["Description", "MaxSessionDuration"];

/// What a settings.json asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSettings {
    pub description: String,
    pub max_session_duration: i32,
}

/// IAM's description pattern: tab, newline, carriage return, printable
/// ASCII and Latin-1.
fn is_description_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a1}'..='\u{ff}')
}

/// `{"Description": "...", "MaxSessionDuration": 3600}`. A missing
/// Description is an empty one; MaxSessionDuration is required.
pub fn check_role_settings(bytes: &[u8]) -> Result<RoleSettings> {
    let text = decode_text(bytes).map_err(input_error)?;
    let value: Value =
        serde_json::from_str(text).map_err(|err| input_error(json_error_message(text, &err)))?;
    let Value::Object(fields) = value else {
        return Err(input_error(format!(
            "settings.json must be a JSON object with {} and {}, not {}",
            KEYS[0],
            KEYS[1],
            shown(&value)
        )));
    };
    if let Some(key) = fields.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(input_error(unknown_element(
            key,
            &KEYS,
            "settings.json has",
        )));
    }
    let description = match fields.get("Description") {
        None => String::new(),
        Some(Value::String(d)) => d.clone(),
        Some(other) => {
            return Err(input_error(format!(
                "Description must be a string, not {}",
                shown(other)
            )))
        }
    };
    if description.chars().count() > DESCRIPTION_MAX {
        return Err(input_error(format!(
            "Description is {} characters; IAM allows at most {DESCRIPTION_MAX}",
            description.chars().count()
        )));
    }
    if let Some(c) = description.chars().find(|&c| !is_description_char(c)) {
        return Err(input_error(format!(
            "Description: character {} is not allowed; IAM takes printable ASCII, Latin-1, tab and newlines",
            describe_char(c)
        )));
    }
    let seconds = match fields.get("MaxSessionDuration") {
        Some(Value::Number(n)) => n.as_i64(),
        None => {
            return Err(input_error(format!(
                "settings.json needs MaxSessionDuration (seconds, {SESSION_MIN} to {SESSION_MAX})"
            )))
        }
        Some(_) => None,
    };
    let Some(seconds) = seconds.filter(|s| (SESSION_MIN..=SESSION_MAX).contains(s)) else {
        let shown_value = fields
            .get("MaxSessionDuration")
            .map(shown)
            .unwrap_or_default();
        return Err(input_error(format!(
            "MaxSessionDuration {}: IAM takes a whole number of seconds from {SESSION_MIN} (1 hour) to {SESSION_MAX} (12 hours)",
            quoted(&shown_value)
        )));
    };
    Ok(RoleSettings {
        description,
        max_session_duration: seconds as i32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::assert_mentions;

    #[test]
    fn settings_within_iam_limits_pass() {
        let s = check_role_settings(br#"{"Description": "Deploys", "MaxSessionDuration": 7200}"#)
            .unwrap();
        assert_eq!(s.description, "Deploys");
        assert_eq!(s.max_session_duration, 7200);
        let s = check_role_settings(br#"{"MaxSessionDuration": 43200}"#).unwrap();
        assert_eq!(s.description, "");
    }

    #[test]
    fn out_of_range_and_malformed_settings_are_refused() {
        for (bad, words) in [
            (
                &br#"{"MaxSessionDuration": 3599}"#[..],
                &["3600", "43200"][..],
            ),
            (br#"{"MaxSessionDuration": 43201}"#, &["43200"]),
            (br#"{"MaxSessionDuration": 3600.5}"#, &["whole number"]),
            (br#"{"MaxSessionDuration": "3600"}"#, &["whole number"]),
            (br#"{"Description": "x"}"#, &["needs MaxSessionDuration"]),
            (
                br#"{"MaxSessionDuration": 3600, "Path": "/"}"#,
                &["unknown element", "Path"],
            ),
            (
                br#"{"maxsessionduration": 3600}"#,
                &["did you mean", "MaxSessionDuration"],
            ),
            (
                br#"{"MaxSessionDuration": 3600, "Description": 5}"#,
                &["must be a string"],
            ),
            (br#"[1]"#, &["JSON object"]),
            (b"{", &["line 1"]),
        ] {
            let err = check_role_settings(bad).unwrap_err();
            assert_mentions(&err.message, words);
        }
        let long = format!(
            r#"{{"MaxSessionDuration": 3600, "Description": "{}"}}"#,
            "a".repeat(1001)
        );
        assert_mentions(
            &check_role_settings(long.as_bytes()).unwrap_err().message,
            &["1001"],
        );
        let emoji = r#"{"MaxSessionDuration": 3600, "Description": "ok 🚀"}"#;
        assert_mentions(
            &check_role_settings(emoji.as_bytes()).unwrap_err().message,
            &["not allowed"],
        );
    }
}
