//! How every check words its errors: IAM's error codes, and values quoted as
//! they appear in the file.

use serde_json::Value;

use crate::error::{ErrorKind, IamError};

/// IAM's error code for a policy it refuses; ours uses the same words.
const POLICY_ERROR: &str = "MalformedPolicyDocument";
/// IAM's error code for a bad parameter (tags, names).
const INPUT_ERROR: &str = "InvalidInput";

pub(super) fn policy_error(message: impl Into<String>) -> IamError {
    IamError::new(ErrorKind::InvalidInput, POLICY_ERROR, message)
}

pub(super) fn input_error(message: impl Into<String>) -> IamError {
    IamError::new(ErrorKind::InvalidInput, INPUT_ERROR, message)
}

pub(super) fn unknown_element(key: &str, known: &[&str], container: &str) -> String {
    let hint = known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(key))
        .map(|k| format!(" (did you mean \"{k}\"?)"))
        .unwrap_or_default();
    format!(
        "unknown element {}{hint}; {container} {}",
        quoted(key),
        list_of(known)
    )
}

/// "A, B and C".
pub(super) fn list_of(items: &[&str]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const SHOWN_MAX_CHARS: usize = 60;

/// A value as JSON, cut short if long, for quoting in a message.
pub(super) fn shown(value: &Value) -> String {
    let json = value.to_string();
    if json.chars().count() <= SHOWN_MAX_CHARS {
        return json;
    }
    let cut: String = json.chars().take(SHOWN_MAX_CHARS).collect();
    format!("{cut}...")
}

/// A string in JSON quotes, as it would appear in the file.
pub(super) fn quoted(s: &str) -> String {
    shown(&Value::from(s))
}

pub(super) fn describe_char(c: char) -> String {
    match c {
        '\u{FEFF}' => "U+FEFF (byte-order mark)".to_string(),
        c if c.is_control() || c.is_whitespace() => format!("U+{:04X}", c as u32),
        c => format!("U+{:04X} '{c}'", c as u32),
    }
}
