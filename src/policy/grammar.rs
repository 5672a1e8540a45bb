//! A policy document's top level: Version, Id, and Statement as one object or
//! an array of them, with Sids unique across statements.

use serde_json::Value;

use super::message::{policy_error, quoted, shown, type_name, unknown_element};
use super::statement::{check_statement, StatementRef};
use super::DocumentKind;
use crate::error::Result;

pub(super) const VERSION_2012: &str = "2012-10-17";
pub(super) const VERSION_2008: &str = "2008-10-17";

const TOP_LEVEL_ELEMENTS: &[&str] = &["Version", "Id", "Statement"];

pub(super) fn check_document(doc: &Value, kind: DocumentKind) -> Result<()> {
    let Value::Object(top) = doc else {
        return Err(policy_error(format!(
            "a policy document must be a JSON object {{\"Version\": ..., \"Statement\": [...]}}, not {}",
            type_name(doc)
        )));
    };
    if let Some(key) = top
        .keys()
        .find(|k| !TOP_LEVEL_ELEMENTS.contains(&k.as_str()))
    {
        return Err(policy_error(unknown_element(
            key,
            TOP_LEVEL_ELEMENTS,
            "a policy may contain",
        )));
    }
    check_version(top.get("Version"), kind)?;
    if let Some(id) = top.get("Id") {
        if !id.is_string() {
            return Err(policy_error(format!(
                "Id must be a string, not {}",
                type_name(id)
            )));
        }
    }

    let statements = statements(top.get("Statement"))?;
    // IAM: "Statement IDs (SID) in a single policy must be unique." Empty Sids
    // say nothing, so they may repeat.
    let mut sids_seen: Vec<(&str, String)> = Vec::new();
    for statement in &statements {
        check_statement(statement, kind)?;
        if let Some(sid) = statement.sid().filter(|s| !s.is_empty()) {
            if let Some((_, first)) = sids_seen.iter().find(|(seen, _)| *seen == sid) {
                return Err(statement.error(format!(
                    "Sid {} is also used by {first}; IAM requires statement IDs to be unique within a policy",
                    quoted(sid)
                )));
            }
            sids_seen.push((sid, statement.label()));
        }
    }
    Ok(())
}

fn check_version(version: Option<&Value>, kind: DocumentKind) -> Result<()> {
    match (version, kind) {
        // CreatePolicy/CreatePolicyVersion refuse anything older:
        // "Policy document must be version 2012-10-17 or greater."
        (None, DocumentKind::Managed) => Err(policy_error(format!(
            "Version is missing; IAM requires \"Version\": \"{VERSION_2012}\" in a managed policy"
        ))),
        (Some(Value::String(v)), DocumentKind::Managed) if v != VERSION_2012 => {
            Err(policy_error(format!(
                "Version must be \"{VERSION_2012}\" in a managed policy, not {}",
                quoted(v)
            )))
        }
        (None, _) => Ok(()),
        (Some(Value::String(v)), _) if v == VERSION_2012 || v == VERSION_2008 => Ok(()),
        (Some(other), _) => Err(policy_error(format!(
            "Version must be \"{VERSION_2012}\" (or the older \"{VERSION_2008}\"), not {}",
            shown(other)
        ))),
    }
}

fn statements(value: Option<&Value>) -> Result<Vec<StatementRef<'_>>> {
    match value {
        None => Err(policy_error(
            "Statement is missing; a policy needs \"Statement\": [ { \"Effect\": ..., \"Action\": ..., ... } ]",
        )),
        Some(Value::Object(body)) => Ok(vec![StatementRef { index: None, body }]),
        Some(Value::Array(items)) if items.is_empty() => Err(policy_error(
            "Statement is an empty array; IAM requires at least one statement",
        )),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(body) => Ok(StatementRef {
                    index: Some(i),
                    body,
                }),
                other => Err(policy_error(format!(
                    "Statement[{i}] must be an object, not {}",
                    type_name(other)
                ))),
            })
            .collect(),
        Some(other) => Err(policy_error(format!(
            "Statement must be an object or an array of objects, not {}",
            type_name(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::policy::check_policy;
    use crate::policy::testing::{
        assert_mentions, document, ok, refused, with_statement, ROLE_INLINE, USER_INLINE,
    };

    #[test]
    fn statement_object_not_in_an_array_passes() {
        let doc = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"arn:aws:s3:::*"}}"#;
        ok(doc, DocumentKind::Managed);
        ok(doc, USER_INLINE);
    }

    #[test]
    fn id_and_any_sid_text_pass() {
        ok(
            &json!({"Version": "2012-10-17", "Id": "my policy 1", "Statement": [
                {"Sid": "Any text, even with spaces", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}
            ]})
            .to_string(),
            DocumentKind::Managed,
        );
    }

    #[test]
    fn top_level_must_be_an_object() {
        let message = refused("[1, 2]", DocumentKind::Managed);
        assert_mentions(&message, &["must be a JSON object", "not an array"]);
    }

    #[test]
    fn unknown_top_level_element_is_refused() {
        let message = refused(
            r#"{"Version":"2012-10-17","Statment":[],"Statement":[]}"#,
            DocumentKind::Managed,
        );
        assert_mentions(
            &message,
            &["unknown element \"Statment\"", "Version, Id and Statement"],
        );
        let message = refused(
            r#"{"version":"2012-10-17","Statement":[]}"#,
            DocumentKind::Managed,
        );
        assert_mentions(&message, &["did you mean \"Version\"?"]);
    }

    #[test]
    fn managed_policy_needs_version_2012() {
        let statement = json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*"});
        let without = json!({"Statement": [statement]}).to_string();
        assert_mentions(
            &refused(&without, DocumentKind::Managed),
            &["Version is missing", "2012-10-17", "managed policy"],
        );
        let old = json!({"Version": "2008-10-17", "Statement": [statement]}).to_string();
        assert_mentions(
            &refused(&old, DocumentKind::Managed),
            &["\"2012-10-17\" in a managed policy", "not \"2008-10-17\""],
        );
        // Inline and trust policies take either version, or none.
        for kind in [USER_INLINE, ROLE_INLINE] {
            ok(&without, kind);
            ok(&old, kind);
        }
        let trust = json!({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"});
        ok(
            &json!({"Statement": trust}).to_string(),
            DocumentKind::Trust,
        );
        ok(
            &json!({"Version": "2008-10-17", "Statement": trust}).to_string(),
            DocumentKind::Trust,
        );
    }

    #[test]
    fn unknown_version_is_refused() {
        for version in [json!("2012-10-18"), json!(2012), json!(null)] {
            let doc = json!({"Version": version, "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}).to_string();
            let message = refused(&doc, ROLE_INLINE);
            assert_mentions(
                &message,
                &["Version must be \"2012-10-17\"", &shown(&version)],
            );
        }
    }

    #[test]
    fn id_must_be_a_string() {
        let doc = json!({"Version": "2012-10-17", "Id": 7, "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}).to_string();
        assert_mentions(
            &refused(&doc, DocumentKind::Managed),
            &["Id must be a string, not a number"],
        );
    }

    #[test]
    fn statement_shape_is_checked() {
        let cases = [
            (json!({"Version": "2012-10-17"}), "Statement is missing"),
            (
                json!({"Version": "2012-10-17", "Statement": []}),
                "Statement is an empty array",
            ),
            (
                json!({"Version": "2012-10-17", "Statement": "x"}),
                "Statement must be an object or an array of objects, not a string",
            ),
            (
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}, 5]}),
                "Statement[1] must be an object, not a number",
            ),
        ];
        for (doc, expected) in cases {
            assert_mentions(
                &refused(&doc.to_string(), DocumentKind::Managed),
                &[expected],
            );
        }
    }

    #[test]
    fn lone_statement_object_is_labelled_without_index() {
        let doc = json!({"Version": "2012-10-17", "Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}}).to_string();
        assert!(refused(&doc, DocumentKind::Managed).starts_with("Statement: Effect"));
    }

    #[test]
    fn sid_must_be_a_string_and_unique() {
        let message = refused(
            &with_statement(
                json!({"Sid": 1, "Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
            ),
            DocumentKind::Managed,
        );
        assert_mentions(&message, &["Sid must be a string, not a number"]);

        let statement =
            json!({"Sid": "Same", "Effect": "Allow", "Action": "s3:*", "Resource": "*"});
        let doc = json!({"Version": "2012-10-17", "Statement": [statement, statement]}).to_string();
        assert_mentions(
            &refused(&doc, DocumentKind::Managed),
            &[
                "Statement[1] (Sid \"Same\")",
                "also used by Statement[0]",
                "unique",
            ],
        );
        // Empty Sids don't identify anything, so they may repeat.
        let statement = json!({"Sid": "", "Effect": "Allow", "Action": "s3:*", "Resource": "*"});
        ok(
            &json!({"Version": "2012-10-17", "Statement": [statement, statement]}).to_string(),
            DocumentKind::Managed,
        );
    }

    proptest! {
        #[test]
        fn grammar_documents_pass_as_managed_and_inline((doc, text) in document(false, true)) {
            let parsed = check_policy(text.as_bytes(), DocumentKind::Managed)
                .map_err(|e| TestCaseError::fail(format!("{}\n{text}", e.message)))?;
            prop_assert_eq!(&parsed, &doc);
            check_policy(text.as_bytes(), ROLE_INLINE)
                .map_err(|e| TestCaseError::fail(format!("{}\n{text}", e.message)))?;
        }

        #[test]
        fn grammar_documents_without_version_pass_as_inline((_doc, text) in document(false, false)) {
            check_policy(text.as_bytes(), ROLE_INLINE)
                .map_err(|e| TestCaseError::fail(format!("{}\n{text}", e.message)))?;
        }

        #[test]
        fn grammar_documents_with_principal_pass_as_trust((_doc, text) in document(true, false)) {
            check_policy(text.as_bytes(), DocumentKind::Trust)
                .map_err(|e| TestCaseError::fail(format!("{}\n{text}", e.message)))?;
            // And the same document is no identity policy.
            prop_assert!(check_policy(text.as_bytes(), ROLE_INLINE).is_err());
        }
    }
}
