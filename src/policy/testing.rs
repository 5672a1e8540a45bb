//! What the tests of every check share: assertions on a refusal's kind, code
//! and words, and documents drawn from IAM's grammar for the proptests.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::grammar::{VERSION_2008, VERSION_2012};
use super::{check_policy, DocumentKind};
use crate::error::ErrorKind;
use crate::iam::Kind;

pub(super) const ROLE_INLINE: DocumentKind = DocumentKind::Inline {
    kind: Kind::Role,
    others_size: 0,
};
pub(super) const USER_INLINE: DocumentKind = DocumentKind::Inline {
    kind: Kind::User,
    others_size: 0,
};

pub(super) fn ok(doc: &str, kind: DocumentKind) -> Value {
    match check_policy(doc.as_bytes(), kind) {
        Ok(value) => value,
        Err(err) => panic!("expected {doc} to pass as {kind:?}, got: {}", err.message),
    }
}

/// The error message, after checking the error's kind and code.
pub(super) fn refused(doc: &str, kind: DocumentKind) -> String {
    refused_bytes(doc.as_bytes(), kind)
}

pub(super) fn refused_bytes(bytes: &[u8], kind: DocumentKind) -> String {
    match check_policy(bytes, kind) {
        Ok(_) => panic!(
            "expected {:?} to be refused as {kind:?}",
            String::from_utf8_lossy(bytes)
        ),
        Err(err) => {
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert_eq!(err.code, "MalformedPolicyDocument");
            err.message
        }
    }
}

pub(super) fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "message {message:?} should mention {part:?}"
        );
    }
}

/// A managed policy with one statement whose body is `statement`.
pub(super) fn with_statement(statement: Value) -> String {
    json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
}

pub(super) fn trust_with_statement(statement: Value) -> String {
    json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
}

fn string_or_list(item: BoxedStrategy<String>) -> BoxedStrategy<Value> {
    prop_oneof![
        item.clone().prop_map(Value::String),
        prop::collection::vec(item, 1..4).prop_map(|items| json!(items)),
    ]
    .boxed()
}

fn action() -> BoxedStrategy<String> {
    prop_oneof![
        1 => Just("*".to_string()),
        8 => "[a-z][a-z0-9-]{0,11}:[A-Za-z*][A-Za-z0-9*]{0,15}",
    ]
    .boxed()
}

fn resource() -> BoxedStrategy<String> {
    prop_oneof![
        Just("*".to_string()),
        "arn:aws:s3:::[a-z0-9.-]{1,20}(/\\*)?",
        "arn:aws:iam::[0-9]{12}:(user|role|group)/[A-Za-z0-9+=,.@_-]{1,20}",
        "arn:aws:ec2:[a-z]{2}-[a-z]{4,7}-[1-3]:[0-9]{12}:instance/\\*",
    ]
    .boxed()
}

fn condition() -> impl Strategy<Value = Value> {
    let operator = prop::sample::select(vec![
        "StringEquals",
        "StringLike",
        "StringNotEqualsIfExists",
        "Bool",
        "IpAddress",
        "NumericLessThan",
        "DateGreaterThan",
        "ArnLike",
        "Null",
        "ForAnyValue:StringLike",
        "ForAllValues:StringEquals",
    ]);
    let scalar = prop_oneof![
        "[A-Za-z0-9 ./*:-]{0,12}".prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
    ];
    let value = prop_oneof![
        scalar.clone(),
        prop::collection::vec(scalar, 0..3).prop_map(Value::Array),
    ];
    let keys = prop::collection::btree_map("(aws|s3|ec2):[A-Za-z]{1,12}", value, 1..3);
    prop::collection::btree_map(operator, keys, 1..3).prop_map(|operators| {
        Value::Object(
            operators
                .into_iter()
                .map(|(op, keys)| (op.to_string(), Value::Object(keys.into_iter().collect())))
                .collect(),
        )
    })
}

fn principal() -> impl Strategy<Value = Value> {
    let id = prop_oneof![
        "arn:aws:iam::[0-9]{12}:(root|role/[A-Za-z0-9_-]{1,16})",
        "[0-9]{12}",
    ]
    .boxed();
    let service = "[a-z]{2,12}\\.amazonaws\\.com".boxed();
    prop_oneof![
        Just(json!("*")),
        string_or_list(id).prop_map(|ids| json!({"AWS": ids})),
        string_or_list(service).prop_map(|s| json!({"Service": s})),
        Just(json!({"Federated": "cognito-identity.amazonaws.com"})),
    ]
}

/// One statement from IAM's grammar; `trust` swaps Resource for Principal.
fn statement(trust: bool) -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::sample::select(vec!["Allow", "Deny"]),
        any::<bool>(),
        string_or_list(action()),
        any::<bool>(),
        string_or_list(resource()),
        prop::option::of("[A-Za-z]{0,8}"),
        prop::option::of(condition()),
        principal(),
    )
        .prop_map(
            move |(
                effect,
                not_action,
                actions,
                not_resource,
                resources,
                sid,
                condition,
                principal,
            )| {
                let mut body = Map::new();
                if let Some(sid) = sid {
                    body.insert("Sid".into(), Value::String(sid));
                }
                body.insert("Effect".into(), json!(effect));
                let action_field = if not_action { "NotAction" } else { "Action" };
                body.insert(action_field.into(), actions);
                if trust {
                    body.insert("Principal".into(), principal);
                } else {
                    let field = if not_resource {
                        "NotResource"
                    } else {
                        "Resource"
                    };
                    body.insert(field.into(), resources);
                }
                if let Some(condition) = condition {
                    body.insert("Condition".into(), condition);
                }
                body
            },
        )
}

/// A whole document: 1..5 statements, a lone statement sometimes written as
/// an object, Version optional unless `needs_version`, compact or pretty.
pub(super) fn document(trust: bool, needs_version: bool) -> impl Strategy<Value = (Value, String)> {
    (
        prop::collection::vec(statement(trust), 1..=5),
        prop::option::of(prop::sample::select(vec![VERSION_2012, VERSION_2008])),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(move |(statements, version, lone_object, pretty)| {
            let mut top = Map::new();
            match version {
                _ if needs_version => {
                    top.insert("Version".into(), json!(VERSION_2012));
                }
                Some(version) => {
                    top.insert("Version".into(), json!(version));
                }
                None => {}
            }
            let mut statements: Vec<Value> = statements
                .into_iter()
                .enumerate()
                .map(|(i, mut body)| {
                    // Sids must be unique; a digit suffix keeps letter-only ones apart.
                    if let Some(Value::String(sid)) = body.get_mut("Sid") {
                        if !sid.is_empty() {
                            sid.push_str(&i.to_string());
                        }
                    }
                    Value::Object(body)
                })
                .collect();
            let statement = if lone_object && statements.len() == 1 {
                statements.remove(0)
            } else {
                Value::Array(statements)
            };
            top.insert("Statement".into(), statement);
            let doc = Value::Object(top);
            let text = if pretty {
                serde_json::to_string_pretty(&doc).unwrap()
            } else {
                doc.to_string()
            };
            (doc, text)
        })
}

/// SAML metadata IAM would take (well-formed, over 1,000 characters).
pub fn saml_metadata() -> String {
    let cert = "A".repeat(1200);
    format!(
        r#"<?xml version="1.0"?><EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.com"><IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><KeyDescriptor><X509Data><X509Certificate>{cert}</X509Certificate></X509Data></KeyDescriptor></IDPSSODescriptor></EntityDescriptor>"#
    )
}
