//! Local checks of documents and names before any IAM call.
//!
//! A write is checked here before it costs an API call, so that a mistake comes
//! back at once with a message a person can act on (line and column for JSON
//! errors, statement and field for grammar errors). The rule throughout: as strict
//! as IAM, never stricter. A document IAM would accept must pass; where IAM's
//! exact behaviour is unknown, the check leans towards letting IAM decide.
//!
//! A policy passes through `text` (bytes to text, IAM's character set), then
//! serde_json, `grammar` (the top level) and `statement` (each statement's
//! elements), then `limits` (its size); `same` tells whether a save changes
//! anything. `tags`, `names`, `role_settings` and `account` check the other
//! files; `message` holds the wording all of them share.

mod account;
mod grammar;
mod limits;
mod message;
mod names;
mod role_settings;
mod same;
mod statement;
mod tags;
#[cfg(test)]
mod testing;
mod text;

use serde_json::Value;

use crate::error::Result;
use crate::iam::Kind;

pub use account::{check_alias, check_password_policy};
pub use limits::policy_size;
pub(crate) use names::is_name_char;
pub use names::{check_name, NameRule};
pub use role_settings::{check_role_settings, RoleSettings};
pub use same::same_policy;
pub use tags::check_tags;

/// What kind of document a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// Managed policy (policies/X.json): 6,144 characters, whitespace not counted.
    Managed,
    /// Inline policy of a user/group/role. `others_size` = non-whitespace characters of the
    /// entity's OTHER inline policies (IAM's limit is the aggregate: user 2,048, group 5,120, role 10,240).
    Inline { kind: Kind, others_size: usize },
    /// A role's trust policy (AssumeRolePolicyDocument). Principal required.
    Trust,
}

impl DocumentKind {
    fn describe(self) -> &'static str {
        match self {
            DocumentKind::Managed => "a managed policy",
            DocumentKind::Inline { .. } => "an inline policy",
            DocumentKind::Trust => "a trust policy",
        }
    }
}

/// Parses and checks a policy document as IAM would, before any API call.
/// Returns the parsed JSON (key order preserved). Errors are InvalidInput with a clear message:
/// JSON syntax errors say "line L, column C: <serde message>"; grammar errors name the statement
/// (index and Sid if any) and the field.
///
/// A managed policy must say `"Version": "2012-10-17"`: CreatePolicy and
/// CreatePolicyVersion refuse a missing or older version ("Policy document must be
/// version 2012-10-17 or greater."). Inline and trust policies may omit it.
pub fn check_policy(bytes: &[u8], kind: DocumentKind) -> Result<Value> {
    let text = text::decode_text(bytes).map_err(message::policy_error)?;
    text::check_policy_characters(text)?;
    let doc: Value = serde_json::from_str(text)
        .map_err(|err| message::policy_error(text::json_error_message(text, &err)))?;
    grammar::check_document(&doc, kind)?;
    limits::check_size(text, kind)?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::testing::{ok, ROLE_INLINE, USER_INLINE};
    use super::*;

    #[test]
    fn parsed_document_keeps_key_order() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Resource":"*","Effect":"Allow","Action":"s3:*"}]}"#;
        let value = ok(doc, DocumentKind::Managed);
        let keys: Vec<&String> = value["Statement"][0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Resource", "Effect", "Action"]);
    }

    /// Any JSON, biased towards the policy vocabulary so deep paths are reached.
    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let words = prop::sample::select(vec![
            "Version",
            "2012-10-17",
            "Id",
            "Statement",
            "Sid",
            "Effect",
            "Allow",
            "Deny",
            "Principal",
            "NotPrincipal",
            "AWS",
            "Service",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Condition",
            "StringEquals",
            "*",
            "s3:*",
            "arn:aws:s3:::b",
            "aws:x",
        ]);
        let key = prop_oneof![words.clone().prop_map(String::from), any::<String>()];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
                .map(Value::Number)),
            words.prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 96, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    const ALL_KINDS: [DocumentKind; 5] = [
        DocumentKind::Managed,
        DocumentKind::Trust,
        USER_INLINE,
        DocumentKind::Inline {
            kind: Kind::Group,
            others_size: 5_000,
        },
        ROLE_INLINE,
    ];

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            for kind in ALL_KINDS {
                let _ = check_policy(&bytes, kind);
            }
            let _ = check_tags(&bytes);
        }

        #[test]
        fn never_panics_on_arbitrary_strings(
            text in prop_oneof![any::<String>(), "[{}\\[\\]\":,.0-9a-zA-Z \\n\\té\u{7f}\u{4e2d}-]{0,200}"]
        ) {
            for kind in ALL_KINDS {
                let _ = check_policy(text.as_bytes(), kind);
            }
            let _ = check_tags(text.as_bytes());
            let _ = check_name(&text, NameRule::POLICY);
            let _ = policy_size(&text);
        }

        #[test]
        fn never_panics_on_arbitrary_json(value in arbitrary_json(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_string_pretty(&value).unwrap() } else { value.to_string() };
            for kind in ALL_KINDS {
                let _ = check_policy(text.as_bytes(), kind);
            }
            let _ = check_tags(text.as_bytes());
            prop_assert!(same_policy(&value, &value));
        }

    }
}
