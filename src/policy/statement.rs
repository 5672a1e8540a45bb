//! One statement of a policy: its elements (Sid, Effect, Principal, Action,
//! Resource, Condition), each checked as IAM checks it, with messages that
//! name the statement and the field.

use std::fmt;

use serde_json::{Map, Value};

use super::message::{list_of, policy_error, quoted, shown, type_name, unknown_element};
use super::DocumentKind;
use crate::error::{IamError, Result};

const STATEMENT_ELEMENTS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];
const PRINCIPAL_TYPES: &[&str] = &["AWS", "Service", "Federated", "CanonicalUser"];

/// One statement and where it sits, for messages.
pub(super) struct StatementRef<'a> {
    /// None when "Statement" holds a single object rather than an array.
    pub(super) index: Option<usize>,
    pub(super) body: &'a Map<String, Value>,
}

impl StatementRef<'_> {
    pub(super) fn sid(&self) -> Option<&str> {
        self.body.get("Sid").and_then(Value::as_str)
    }

    /// `Statement[1] (Sid "AllowS3")`, or `Statement` for a lone object.
    pub(super) fn label(&self) -> String {
        let mut label = match self.index {
            Some(i) => format!("Statement[{i}]"),
            None => "Statement".to_string(),
        };
        if let Some(sid) = self.sid().filter(|s| !s.is_empty()) {
            label.push_str(&format!(" (Sid {})", quoted(sid)));
        }
        label
    }

    pub(super) fn error(&self, message: impl fmt::Display) -> IamError {
        policy_error(format!("{}: {message}", self.label()))
    }
}

pub(super) fn check_statement(statement: &StatementRef, kind: DocumentKind) -> Result<()> {
    let body = statement.body;
    if let Some(key) = body
        .keys()
        .find(|k| !STATEMENT_ELEMENTS.contains(&k.as_str()))
    {
        return Err(statement.error(unknown_element(
            key,
            STATEMENT_ELEMENTS,
            "a statement may contain",
        )));
    }
    if let Some(sid) = body.get("Sid") {
        if !sid.is_string() {
            return Err(statement.error(format!("Sid must be a string, not {}", type_name(sid))));
        }
    }
    check_effect(statement)?;
    check_principal_block(statement, kind)?;

    let (field, actions) = one_of(statement, "Action", "NotAction")?.ok_or_else(|| {
        statement.error(
            "must contain Action or NotAction (IAM: \"Policy statement must contain actions.\")",
        )
    })?;
    for action in string_list(statement, field, actions, Some("action"))? {
        if let Err(problem) = check_action(action) {
            return Err(statement.error(format!("{field} {}: {problem}", quoted(action))));
        }
    }

    let resources = one_of(statement, "Resource", "NotResource")?;
    match (resources, kind) {
        (Some((field, _)), DocumentKind::Trust) => {
            return Err(statement.error(format!(
                "{field} is not allowed in a trust policy (IAM: \"Has prohibited field {field}\"); \
                 the resource is the role itself"
            )));
        }
        (None, DocumentKind::Trust) => {}
        (None, _) => {
            return Err(statement.error(
                "must contain Resource or NotResource (IAM: \"Policy statement must contain resources.\")",
            ));
        }
        (Some((field, value)), _) => {
            for resource in string_list(statement, field, value, Some("resource"))? {
                // IAM: "Resource X must be in ARN format or "*"."
                if resource != "*" && !resource.contains(':') {
                    return Err(statement.error(format!(
                        "{field} {} must be an ARN (arn:partition:service:region:account:resource) or \"*\"",
                        quoted(resource)
                    )));
                }
            }
        }
    }

    if let Some(condition) = body.get("Condition") {
        check_condition(statement, condition)?;
    }
    Ok(())
}

fn check_effect(statement: &StatementRef) -> Result<()> {
    match statement.body.get("Effect") {
        None => Err(statement.error("Effect is missing; it must be \"Allow\" or \"Deny\"")),
        Some(Value::String(effect)) if effect == "Allow" || effect == "Deny" => Ok(()),
        Some(other) => Err(statement.error(format!(
            "Effect must be \"Allow\" or \"Deny\", not {}",
            shown(other)
        ))),
    }
}

/// Principal belongs in trust policies (required there) and nowhere else.
fn check_principal_block(statement: &StatementRef, kind: DocumentKind) -> Result<()> {
    let principal = one_of(statement, "Principal", "NotPrincipal")?;
    match (principal, kind) {
        (None, DocumentKind::Trust) => Err(statement.error(
            "must contain Principal (or NotPrincipal): a trust policy says who may assume the role",
        )),
        (Some((field, value)), DocumentKind::Trust) => check_principal(statement, field, value),
        (None, _) => Ok(()),
        (Some((field, _)), _) => Err(statement.error(format!(
            "{field} is not allowed in {} (IAM: \"Policy document should not specify a principal.\"); \
             only a role's trust policy names principals",
            kind.describe()
        ))),
    }
}

fn check_principal(statement: &StatementRef, field: &str, value: &Value) -> Result<()> {
    match value {
        Value::String(s) if s == "*" => Ok(()),
        Value::Object(types) => {
            for (principal_type, ids) in types {
                if !PRINCIPAL_TYPES.contains(&principal_type.as_str()) {
                    return Err(statement.error(format!(
                        "{field} has unknown principal type {}; use {}",
                        quoted(principal_type),
                        list_of(PRINCIPAL_TYPES)
                    )));
                }
                string_list(statement, &format!("{field}.{principal_type}"), ids, None)?;
            }
            Ok(())
        }
        other => Err(statement.error(format!(
            "{field} must be \"*\" or an object such as {{\"AWS\": \"arn:aws:iam::123456789012:root\"}}, not {}",
            shown(other)
        ))),
    }
}

/// IAM's action rules: "*", or one "vendor:action" where the vendor is
/// letters, digits, '-' and '.' (or "*"); the action part may use wildcards.
fn check_action(action: &str) -> std::result::Result<(), String> {
    if action == "*" {
        return Ok(());
    }
    let Some((vendor, rest)) = action.split_once(':') else {
        return Err(
            "has no service prefix; write \"service:action\" such as \"s3:GetObject\", or \"*\" \
             (IAM: \"Actions/Conditions must be prefaced by a vendor\")"
                .to_string(),
        );
    };
    if rest.contains(':') {
        return Err(
            "has more than one ':' (IAM: \"Actions/Condition can contain only one colon.\")"
                .to_string(),
        );
    }
    let vendor_ok = vendor == "*"
        || vendor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !vendor_ok {
        return Err(format!(
            "service prefix {} is not valid; it may use only letters, digits, '-' and '.'",
            quoted(vendor)
        ));
    }
    Ok(())
}

/// Condition: { operator: { key: value | [values] } }, values being strings,
/// numbers or booleans. Operator and key names are left for IAM to judge.
fn check_condition(statement: &StatementRef, condition: &Value) -> Result<()> {
    let Value::Object(operators) = condition else {
        return Err(statement.error(format!(
            "Condition must be an object such as {{\"StringEquals\": {{\"aws:RequestedRegion\": \"eu-west-1\"}}}}, not {}",
            type_name(condition)
        )));
    };
    for (operator, keys) in operators {
        let Value::Object(keys) = keys else {
            return Err(statement.error(format!(
                "Condition {} must be an object of condition keys to values, not {}",
                quoted(operator),
                type_name(keys)
            )));
        };
        for (key, value) in keys {
            let is_scalar =
                |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
            let acceptable = match value {
                Value::Array(items) => items.iter().all(is_scalar),
                other => is_scalar(other),
            };
            if !acceptable {
                return Err(statement.error(format!(
                    "Condition {} key {}: a value must be a string, number or boolean, or an array of those, not {}",
                    quoted(operator),
                    quoted(key),
                    shown(value)
                )));
            }
        }
    }
    Ok(())
}

/// At most one of two exclusive fields; returns which one is there.
fn one_of<'a>(
    statement: &StatementRef<'a>,
    field: &'static str,
    not_field: &'static str,
) -> Result<Option<(&'static str, &'a Value)>> {
    match (statement.body.get(field), statement.body.get(not_field)) {
        (Some(_), Some(_)) => Err(statement.error(format!(
            "has both {field} and {not_field}; use only one of them"
        ))),
        (Some(value), None) => Ok(Some((field, value))),
        (None, Some(value)) => Ok(Some((not_field, value))),
        (None, None) => Ok(None),
    }
}

/// A string or an array of strings. With `required_noun`, an empty array is
/// refused, as IAM refuses a statement with no actions or no resources.
fn string_list<'a>(
    statement: &StatementRef,
    field: &str,
    value: &'a Value,
    required_noun: Option<&str>,
) -> Result<Vec<&'a str>> {
    match value {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) => {
            if items.is_empty() {
                if let Some(noun) = required_noun {
                    return Err(statement.error(format!(
                        "{field} is an empty array; IAM requires at least one {noun}"
                    )));
                }
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    item.as_str().ok_or_else(|| {
                        statement.error(format!(
                            "{field}[{i}] must be a string, not {}",
                            type_name(item)
                        ))
                    })
                })
                .collect()
        }
        other => Err(statement.error(format!(
            "{field} must be a string or an array of strings, not {}",
            type_name(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::testing::{
        assert_mentions, ok, refused, trust_with_statement, with_statement, ROLE_INLINE,
        USER_INLINE,
    };

    #[test]
    fn aws_cli_role_profile_trust_policy_passes() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
        let value = ok(doc, DocumentKind::Trust);
        assert_eq!(value["Statement"][0]["Action"], "sts:AssumeRole");
    }

    #[test]
    fn ec2_service_trust_policy_passes() {
        let doc = r#"{
          "Version": "2012-10-17",
          "Statement": [
            {
              "Effect": "Allow",
              "Principal": { "Service": "ec2.amazonaws.com" },
              "Action": "sts:AssumeRole"
            }
          ]
        }"#;
        ok(doc, DocumentKind::Trust);
    }

    #[test]
    fn web_identity_trust_policy_with_condition_passes() {
        let doc = r#"{
          "Version": "2012-10-17",
          "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
              "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
              "StringLike": {"token.actions.githubusercontent.com:sub": "repo:octo-org/*"}
            }
          }]
        }"#;
        ok(doc, DocumentKind::Trust);
    }

    #[test]
    fn trust_policy_with_everyone_and_several_principals_passes() {
        ok(
            &trust_with_statement(
                json!({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}),
            ),
            DocumentKind::Trust,
        );
        ok(
            &trust_with_statement(json!({
                "Effect": "Allow",
                "Principal": {
                    "AWS": ["arn:aws:iam::111122223333:root", "444455556666"],
                    "Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"],
                    "CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
                },
                "Action": ["sts:AssumeRole", "sts:TagSession"]
            })),
            DocumentKind::Trust,
        );
    }

    #[test]
    fn policy_with_condition_blocks_passes() {
        let doc = r#"{
          "Version": "2012-10-17",
          "Statement": [
            {
              "Sid": "AllowS3InMyRegion",
              "Effect": "Allow",
              "Action": ["s3:Get*", "s3:List*"],
              "Resource": ["arn:aws:s3:::example-bucket", "arn:aws:s3:::example-bucket/*"],
              "Condition": {
                "StringEquals": {"aws:RequestedRegion": "eu-west-1"},
                "IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]},
                "ForAnyValue:StringLike": {"aws:TagKeys": ["team*", "cost*"]},
                "NumericLessThanEquals": {"s3:max-keys": 10}
              }
            },
            {
              "Sid": "DenyInsecureTransport",
              "Effect": "Deny",
              "Action": "s3:*",
              "Resource": "*",
              "Condition": {"Bool": {"aws:SecureTransport": "false"}}
            },
            {
              "Effect": "Deny",
              "Action": "*",
              "Resource": "*",
              "Condition": {"Bool": {"aws:MultiFactorAuthPresent": false}}
            }
          ]
        }"#;
        ok(doc, DocumentKind::Managed);
        ok(doc, ROLE_INLINE);
    }

    #[test]
    fn not_action_with_resource_passes() {
        let doc = r#"{
          "Version": "2012-10-17",
          "Statement": [{
            "Effect": "Allow",
            "NotAction": ["iam:*", "organizations:*", "account:*"],
            "Resource": "*"
          }]
        }"#;
        ok(doc, DocumentKind::Managed);
    }

    #[test]
    fn not_resource_passes() {
        ok(
            &with_statement(
                json!({"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::keep", "arn:aws:s3:::keep/*"]}),
            ),
            DocumentKind::Managed,
        );
    }

    #[test]
    fn effect_must_be_allow_or_deny_and_message_names_the_statement() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "First", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Sid": "AllowS3", "Effect": "allow", "Action": "s3:*", "Resource": "*"}
        ]})
        .to_string();
        assert_eq!(
            refused(&doc, DocumentKind::Managed),
            r#"Statement[1] (Sid "AllowS3"): Effect must be "Allow" or "Deny", not "allow""#
        );
        let missing = with_statement(json!({"Action": "s3:*", "Resource": "*"}));
        assert_eq!(
            refused(&missing, DocumentKind::Managed),
            r#"Statement[0]: Effect is missing; it must be "Allow" or "Deny""#
        );
        let not_string = with_statement(json!({"Effect": true, "Action": "s3:*", "Resource": "*"}));
        assert_mentions(&refused(&not_string, DocumentKind::Managed), &["not true"]);
    }

    #[test]
    fn unknown_statement_element_is_refused_with_a_hint() {
        let message = refused(
            &with_statement(json!({"Effect": "Allow", "Actions": "s3:*", "Resource": "*"})),
            DocumentKind::Managed,
        );
        assert_mentions(
            &message,
            &["Statement[0]", "unknown element \"Actions\"", "Condition"],
        );
        let message = refused(
            &with_statement(json!({"effect": "Allow", "Action": "s3:*", "Resource": "*"})),
            DocumentKind::Managed,
        );
        assert_mentions(&message, &["did you mean \"Effect\"?"]);
    }

    #[test]
    fn action_or_not_action_exactly_once() {
        let neither = with_statement(json!({"Effect": "Allow", "Resource": "*"}));
        assert_mentions(
            &refused(&neither, DocumentKind::Managed),
            &["must contain Action or NotAction"],
        );
        let both = with_statement(
            json!({"Effect": "Allow", "Action": "s3:*", "NotAction": "iam:*", "Resource": "*"}),
        );
        assert_mentions(
            &refused(&both, DocumentKind::Managed),
            &["both Action and NotAction"],
        );
    }

    #[test]
    fn action_value_shape_is_checked() {
        let cases = [
            (
                json!([]),
                "Action is an empty array; IAM requires at least one action",
            ),
            (
                json!(5),
                "Action must be a string or an array of strings, not a number",
            ),
            (
                json!(["s3:Get*", {"x": 1}]),
                "Action[1] must be a string, not an object",
            ),
        ];
        for (action, expected) in cases {
            let doc = with_statement(json!({"Effect": "Allow", "Action": action, "Resource": "*"}));
            assert_mentions(&refused(&doc, DocumentKind::Managed), &[expected]);
        }
    }

    #[test]
    fn action_needs_a_vendor_prefix() {
        for (action, expected) in [
            ("GetObject", "has no service prefix"),
            ("", "has no service prefix"),
            ("s3:Get:Object", "more than one ':'"),
            ("s3 :GetObject", "service prefix \"s3 \" is not valid"),
        ] {
            let doc = with_statement(
                json!({"Effect": "Allow", "Action": ["s3:ListBucket", action], "Resource": "*"}),
            );
            let message = refused(&doc, DocumentKind::Managed);
            assert_mentions(&message, &[&format!("Action {}", quoted(action)), expected]);
            let doc =
                with_statement(json!({"Effect": "Allow", "NotAction": action, "Resource": "*"}));
            assert_mentions(
                &refused(&doc, DocumentKind::Managed),
                &["NotAction", expected],
            );
        }
        for action in [
            "*",
            "iam:*",
            "s3:Get*",
            "ec2:*Instances",
            "*:*",
            "aws-portal:View*",
            "execute-api:Invoke",
        ] {
            ok(
                &with_statement(json!({"Effect": "Allow", "Action": action, "Resource": "*"})),
                DocumentKind::Managed,
            );
        }
    }

    #[test]
    fn identity_policies_need_resource_or_not_resource() {
        let missing = with_statement(json!({"Effect": "Allow", "Action": "s3:*"}));
        assert_mentions(
            &refused(&missing, DocumentKind::Managed),
            &["must contain Resource or NotResource"],
        );
        assert_mentions(
            &refused(&missing, USER_INLINE),
            &["must contain Resource or NotResource"],
        );
        let both = with_statement(
            json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "NotResource": "*"}),
        );
        assert_mentions(
            &refused(&both, DocumentKind::Managed),
            &["both Resource and NotResource"],
        );
        let empty = with_statement(json!({"Effect": "Allow", "Action": "s3:*", "Resource": []}));
        assert_mentions(
            &refused(&empty, DocumentKind::Managed),
            &["Resource is an empty array"],
        );
    }

    #[test]
    fn resource_must_look_like_an_arn() {
        for resource in ["my-bucket/*", "", "1234abcd-12ab-34cd-56ef-1234567890ab"] {
            let doc = with_statement(
                json!({"Effect": "Allow", "Action": "s3:*", "Resource": ["*", resource]}),
            );
            let message = refused(&doc, DocumentKind::Managed);
            assert_mentions(
                &message,
                &[&format!("Resource {}", quoted(resource)), "must be an ARN"],
            );
        }
    }

    #[test]
    fn principal_is_refused_outside_trust_policies() {
        for field in ["Principal", "NotPrincipal"] {
            let doc = with_statement(
                json!({"Effect": "Allow", field: {"AWS": "*"}, "Action": "s3:*", "Resource": "*"}),
            );
            let message = refused(&doc, DocumentKind::Managed);
            assert_mentions(
                &message,
                &[
                    field,
                    "not allowed in a managed policy",
                    "should not specify a principal",
                ],
            );
            let message = refused(&doc, ROLE_INLINE);
            assert_mentions(&message, &["not allowed in an inline policy"]);
        }
    }

    #[test]
    fn trust_policy_rules() {
        let missing = trust_with_statement(json!({"Effect": "Allow", "Action": "sts:AssumeRole"}));
        assert_mentions(
            &refused(&missing, DocumentKind::Trust),
            &["must contain Principal"],
        );

        let with_resource = trust_with_statement(
            json!({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole", "Resource": "*"}),
        );
        assert_mentions(
            &refused(&with_resource, DocumentKind::Trust),
            &["Has prohibited field Resource"],
        );
        let with_not_resource = trust_with_statement(
            json!({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole", "NotResource": "*"}),
        );
        assert_mentions(
            &refused(&with_not_resource, DocumentKind::Trust),
            &["NotResource is not allowed in a trust policy"],
        );

        let both = trust_with_statement(
            json!({"Effect": "Allow", "Principal": "*", "NotPrincipal": "*", "Action": "sts:AssumeRole"}),
        );
        assert_mentions(
            &refused(&both, DocumentKind::Trust),
            &["both Principal and NotPrincipal"],
        );

        let bad_type = trust_with_statement(
            json!({"Effect": "Allow", "Principal": {"Aws": "*"}, "Action": "sts:AssumeRole"}),
        );
        assert_mentions(
            &refused(&bad_type, DocumentKind::Trust),
            &[
                "unknown principal type \"Aws\"",
                "AWS, Service, Federated and CanonicalUser",
            ],
        );

        let bad_value = trust_with_statement(
            json!({"Effect": "Allow", "Principal": {"AWS": [1]}, "Action": "sts:AssumeRole"}),
        );
        assert_mentions(
            &refused(&bad_value, DocumentKind::Trust),
            &["Principal.AWS[0] must be a string"],
        );

        let bad_string = trust_with_statement(
            json!({"Effect": "Allow", "Principal": "arn:aws:iam::123456789012:root", "Action": "sts:AssumeRole"}),
        );
        assert_mentions(
            &refused(&bad_string, DocumentKind::Trust),
            &["Principal must be \"*\" or an object"],
        );

        let no_action = trust_with_statement(json!({"Effect": "Allow", "Principal": "*"}));
        assert_mentions(
            &refused(&no_action, DocumentKind::Trust),
            &["must contain Action or NotAction"],
        );
    }

    #[test]
    fn condition_shape_is_checked() {
        let cases = [
            (json!("x"), "Condition must be an object"),
            (
                json!({"StringEquals": "x"}),
                "Condition \"StringEquals\" must be an object of condition keys",
            ),
            (
                json!({"StringEquals": {"aws:x": null}}),
                "Condition \"StringEquals\" key \"aws:x\"",
            ),
            (
                json!({"StringEquals": {"aws:x": {"a": "b"}}}),
                "not {\"a\":\"b\"}",
            ),
            (
                json!({"StringEquals": {"aws:x": ["a", ["b"]]}}),
                "or an array of those",
            ),
        ];
        for (condition, expected) in cases {
            let doc = with_statement(
                json!({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition}),
            );
            assert_mentions(
                &refused(&doc, DocumentKind::Managed),
                &["Statement[0]", expected],
            );
        }
        let fine = json!({
            "StringEquals": {"aws:x": ["a", 1, true], "aws:y": 2.5},
            "Null": {"aws:TokenIssueTime": "true"},
            "ForAllValues:StringEquals": {"aws:TagKeys": []}
        });
        ok(
            &with_statement(
                json!({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": fine}),
            ),
            DocumentKind::Managed,
        );
    }
}
