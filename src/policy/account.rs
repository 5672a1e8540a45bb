//! The account's files: password-policy.json and alias, checked against
//! IAM's limits before UpdateAccountPasswordPolicy or CreateAccountAlias.

use super::message::{input_error, quoted};
use super::text::{decode_text, json_error_message};
use crate::error::Result;
use crate::model::PasswordPolicy;

/// `(field, lowest, highest)`: IAM's ranges for the numeric settings.
const RANGES: [(&str, i32, i32); 3] = [
    ("MinimumPasswordLength", 6, 128),
    ("MaxPasswordAge", 1, 1095),
    ("PasswordReusePrevention", 1, 24),
];

/// password-policy.json: IAM's PasswordPolicy fields (ExpirePasswords is
/// IAM's own and ignored); unknown fields and out-of-range numbers refused.
pub fn check_password_policy(bytes: &[u8]) -> Result<PasswordPolicy> {
    let text = decode_text(bytes).map_err(input_error)?;
    let policy: PasswordPolicy =
        serde_json::from_str(text).map_err(|err| input_error(json_error_message(text, &err)))?;
    let values = [
        policy.minimum_password_length,
        policy.max_password_age,
        policy.password_reuse_prevention,
    ];
    for ((field, low, high), value) in RANGES.into_iter().zip(values) {
        if let Some(v) = value.filter(|v| !(low..=high).contains(v)) {
            return Err(input_error(format!(
                "{field} {v}: IAM takes {low} to {high}"
            )));
        }
    }
    Ok(policy)
}

/// account/alias: one line, 3-63 lowercase letters, digits and single
/// hyphens, starting and ending with a letter or digit (IAM's pattern).
pub fn check_alias(bytes: &[u8]) -> Result<String> {
    let text = decode_text(bytes)
        .map_err(|_| input_error("write the alias on one line; rm the file to remove the alias"))?;
    let alias = text.strip_suffix('\n').unwrap_or(text);
    let ok_chars = alias
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = !alias.starts_with('-') && !alias.ends_with('-') && !alias.contains("--");
    if !(3..=63).contains(&alias.len()) || !ok_chars || !ok_ends {
        return Err(input_error(format!(
            "account alias {}: IAM takes 3 to 63 lowercase letters, digits and single hyphens, not starting or ending with a hyphen",
            quoted(alias)
        )));
    }
    Ok(alias.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::assert_mentions;

    #[test]
    fn a_password_policy_as_iam_shows_it_passes() {
        let p = check_password_policy(
            br#"{"MinimumPasswordLength": 14, "RequireSymbols": true, "ExpirePasswords": true,
                 "MaxPasswordAge": 90, "HardExpiry": false}"#,
        )
        .unwrap();
        assert_eq!(p.minimum_password_length, Some(14));
        assert!(p.require_symbols && !p.require_numbers);
        assert_eq!(p.max_password_age, Some(90));
    }

    #[test]
    fn bad_password_policies_are_refused() {
        for (bad, words) in [
            (
                &br#"{"MinimumPasswordLength": 5}"#[..],
                &["MinimumPasswordLength 5", "6 to 128"][..],
            ),
            (br#"{"MaxPasswordAge": 2000}"#, &["1 to 1095"]),
            (br#"{"PasswordReusePrevention": 0}"#, &["1 to 24"]),
            (
                br#"{"RequireSymbol": true}"#,
                &["unknown field", "RequireSymbols"],
            ),
            (br#"{"RequireSymbols": "yes"}"#, &["line 1"]),
            (b"", &["empty"]),
        ] {
            assert_mentions(&check_password_policy(bad).unwrap_err().message, words);
        }
    }

    #[test]
    fn aliases_follow_iams_pattern() {
        assert_eq!(check_alias(b"acme-prod\n").unwrap(), "acme-prod");
        for bad in [
            &b"ab"[..],
            b"Acme",
            b"-acme",
            b"acme-",
            b"ac--me",
            b"acme prod",
            b"a\nb\n",
        ] {
            assert_mentions(&check_alias(bad).unwrap_err().message, &["3 to 63"]);
        }
    }
}
