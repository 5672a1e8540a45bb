//! Local checks of documents and names before any IAM call.
//!
//! A write is checked here before it costs an API call, so that a mistake comes
//! back at once with a message a person can act on (line and column for JSON
//! errors, statement and field for grammar errors). The rule throughout: as strict
//! as IAM, never stricter. A document IAM would accept must pass; where IAM's
//! exact behaviour is unknown, the check leans towards letting IAM decide.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{ErrorKind, IamError, Result};
use crate::iam::Kind;

/// IAM's error code for a policy it refuses; ours uses the same words.
const POLICY_ERROR: &str = "MalformedPolicyDocument";
/// IAM's error code for a bad parameter (tags, names).
const INPUT_ERROR: &str = "InvalidInput";

const MANAGED_POLICY_LIMIT: usize = 6_144;
/// Trust policies default to 2,048 characters, but the quota can be raised to
/// 4,096; only the ceiling is refused here, so an account with a raised quota works.
const TRUST_POLICY_CEILING: usize = 4_096;
const USER_INLINE_LIMIT: usize = 2_048;
const GROUP_INLINE_LIMIT: usize = 5_120;
const ROLE_INLINE_LIMIT: usize = 10_240;

const MAX_TAGS: usize = 50;
const TAG_KEY_MAX: usize = 128;
const TAG_VALUE_MAX: usize = 256;

const VERSION_2012: &str = "2012-10-17";
const VERSION_2008: &str = "2008-10-17";

const TOP_LEVEL_ELEMENTS: &[&str] = &["Version", "Id", "Statement"];
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
/// The fields where a lone string means the same as a one-element array.
const LIST_FIELDS: &[&str] = &["Action", "NotAction", "Resource", "NotResource"];

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

/// Which IAM name rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    User,
    Group,
    Role,
    Policy,
}

impl NameKind {
    fn max_len(self) -> usize {
        match self {
            NameKind::User | NameKind::Role => 64,
            NameKind::Group | NameKind::Policy => 128,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            NameKind::User => "user",
            NameKind::Group => "group",
            NameKind::Role => "role",
            NameKind::Policy => "policy",
        }
    }
}

// ---------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------

/// Parses and checks a policy document as IAM would, before any API call.
/// Returns the parsed JSON (key order preserved). Errors are InvalidInput with a clear message:
/// JSON syntax errors say "line L, column C: <serde message>"; grammar errors name the statement
/// (index and Sid if any) and the field.
///
/// A managed policy must say `"Version": "2012-10-17"`: CreatePolicy and
/// CreatePolicyVersion refuse a missing or older version ("Policy document must be
/// version 2012-10-17 or greater."). Inline and trust policies may omit it.
pub fn check_policy(bytes: &[u8], kind: DocumentKind) -> Result<Value> {
    let text = decode_text(bytes).map_err(policy_error)?;
    check_policy_characters(text)?;
    let doc: Value =
        serde_json::from_str(text).map_err(|err| policy_error(json_error_message(text, &err)))?;
    check_document(&doc, kind)?;
    check_size(text, kind)?;
    Ok(doc)
}

/// Non-whitespace character count, as IAM counts document size.
///
/// Unicode whitespace is left out, which is at least as much as IAM leaves out,
/// so the count is never higher than IAM's.
pub fn policy_size(doc_text: &str) -> usize {
    doc_text.chars().filter(|c| !c.is_whitespace()).count()
}

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

fn policy_error(message: impl Into<String>) -> IamError {
    IamError::new(ErrorKind::InvalidInput, POLICY_ERROR, message)
}

/// IAM's parameter pattern for policy documents: tab, line feed, carriage
/// return and U+0020..U+00FF, applied to the raw text.
fn is_policy_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FF}')
}

fn check_policy_characters(text: &str) -> Result<()> {
    match text.char_indices().find(|&(_, c)| !is_policy_char(c)) {
        None => Ok(()),
        Some((offset, c)) => {
            let (line, column) = position(text.as_bytes(), offset);
            Err(policy_error(format!(
                "line {line}, column {column}: character {} is not allowed; IAM accepts only \
                 tab, line feed, carriage return and U+0020 to U+00FF (Latin-1) in a policy document",
                describe_char(c)
            )))
        }
    }
}

fn check_document(doc: &Value, kind: DocumentKind) -> Result<()> {
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

/// One statement and where it sits, for messages.
struct StatementRef<'a> {
    /// None when "Statement" holds a single object rather than an array.
    index: Option<usize>,
    body: &'a Map<String, Value>,
}

impl StatementRef<'_> {
    fn sid(&self) -> Option<&str> {
        self.body.get("Sid").and_then(Value::as_str)
    }

    /// `Statement[1] (Sid "AllowS3")`, or `Statement` for a lone object.
    fn label(&self) -> String {
        let mut label = match self.index {
            Some(i) => format!("Statement[{i}]"),
            None => "Statement".to_string(),
        };
        if let Some(sid) = self.sid().filter(|s| !s.is_empty()) {
            label.push_str(&format!(" (Sid {})", quoted(sid)));
        }
        label
    }

    fn error(&self, message: impl fmt::Display) -> IamError {
        policy_error(format!("{}: {message}", self.label()))
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

fn check_statement(statement: &StatementRef, kind: DocumentKind) -> Result<()> {
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

fn check_size(text: &str, kind: DocumentKind) -> Result<()> {
    let size = policy_size(text);
    let too_big = |limit: usize, what: &str| {
        policy_error(format!(
            "policy is {} characters (whitespace not counted); IAM allows {} for {what}",
            thousands(size),
            thousands(limit)
        ))
    };
    match kind {
        DocumentKind::Managed if size > MANAGED_POLICY_LIMIT => {
            Err(too_big(MANAGED_POLICY_LIMIT, "a managed policy"))
        }
        DocumentKind::Trust if size > TRUST_POLICY_CEILING => Err(too_big(
            TRUST_POLICY_CEILING,
            "a role trust policy (2,048 unless the account's quota was raised)",
        )),
        DocumentKind::Inline { kind, others_size } => {
            let (limit, owner) = match kind {
                Kind::User => (USER_INLINE_LIMIT, "user"),
                Kind::Group => (GROUP_INLINE_LIMIT, "group"),
                Kind::Role => (ROLE_INLINE_LIMIT, "role"),
            };
            let total = size.saturating_add(others_size);
            if total <= limit {
                Ok(())
            } else if others_size == 0 {
                Err(too_big(
                    limit,
                    &format!("all of a {owner}'s inline policies together"),
                ))
            } else {
                Err(policy_error(format!(
                    "policy is {} characters (whitespace not counted) and the {owner}'s other inline \
                     policies are {}, {} in all; IAM allows {} for all of a {owner}'s inline policies together",
                    thousands(size),
                    thousands(others_size),
                    thousands(total),
                    thousands(limit)
                )))
            }
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------

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

fn input_error(message: impl Into<String>) -> IamError {
    IamError::new(ErrorKind::InvalidInput, INPUT_ERROR, message)
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

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/// IAM name rules for new entities and policies: [\w+=,.@-]+ (\w = ASCII letters, digits, underscore),
/// lengths: user 64, group 128, role 64, policy 128. Returns InvalidInput naming the rule.
pub fn check_name(name: &str, kind: NameKind) -> Result<()> {
    let noun = kind.noun();
    if name.is_empty() {
        return Err(input_error(format!("a {noun} name cannot be empty")));
    }
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if let Some(c) = name.chars().find(|&c| !is_name_char(c)) {
        return Err(input_error(format!(
            "{noun} name {}: character {} is not allowed; IAM names use only ASCII letters, digits and _ + = , . @ -",
            quoted(name),
            describe_char(c)
        )));
    }
    // Only ASCII is left, so bytes are characters.
    if name.len() > kind.max_len() {
        return Err(input_error(format!(
            "{noun} name {} is {} characters; IAM allows at most {} for a {noun} name",
            quoted(name),
            name.len(),
            kind.max_len()
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Text, positions and messages
// ---------------------------------------------------------------------------

const EMPTY_DOCUMENT: &str = "empty document";

/// The bytes as text, refusing binary data and empty documents.
fn decode_text(bytes: &[u8]) -> std::result::Result<&str, String> {
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let offset = err.valid_up_to();
        let (line, column) = position(bytes, offset);
        format!(
            "line {line}, column {column}: not UTF-8 text (byte 0x{:02X}); is this a binary file?",
            bytes[offset]
        )
    })?;
    if let Some(offset) = text.find('\0') {
        let (line, column) = position(bytes, offset);
        return Err(format!(
            "line {line}, column {column}: NUL byte; binary data is not a JSON document"
        ));
    }
    if text.chars().all(char::is_whitespace) {
        return Err(EMPTY_DOCUMENT.to_string());
    }
    Ok(text)
}

/// 1-based line and column (in characters, as an editor counts) of a byte offset.
fn position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    (line, char_count(&before[line_start..]) + 1)
}

/// Characters that start within these bytes (UTF-8 continuation bytes don't).
fn char_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
}

/// "line L, column C: <serde message>", the column counted in characters
/// (serde_json counts bytes, which an editor would not show for Latin-1 text).
fn json_error_message(text: &str, err: &serde_json::Error) -> String {
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    if err.line() == 0 {
        return message.to_string();
    }
    let line_text = text
        .as_bytes()
        .split(|&b| b == b'\n')
        .nth(err.line() - 1)
        .unwrap_or_default();
    // serde_json says column 0 before the first character of a line; editors start at 1.
    let column = char_count(&line_text[..err.column().min(line_text.len())]).max(1);
    format!("line {}, column {column}: {message}", err.line())
}

fn unknown_element(key: &str, known: &[&str], container: &str) -> String {
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
fn list_of(items: &[&str]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

fn type_name(value: &Value) -> &'static str {
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
fn shown(value: &Value) -> String {
    let json = value.to_string();
    if json.chars().count() <= SHOWN_MAX_CHARS {
        return json;
    }
    let cut: String = json.chars().take(SHOWN_MAX_CHARS).collect();
    format!("{cut}...")
}

/// A string in JSON quotes, as it would appear in the file.
fn quoted(s: &str) -> String {
    shown(&Value::from(s))
}

fn describe_char(c: char) -> String {
    match c {
        '\u{FEFF}' => "U+FEFF (byte-order mark)".to_string(),
        c if c.is_control() || c.is_whitespace() => format!("U+{:04X}", c as u32),
        c => format!("U+{:04X} '{c}'", c as u32),
    }
}

/// 6144 -> "6,144".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const ROLE_INLINE: DocumentKind = DocumentKind::Inline {
        kind: Kind::Role,
        others_size: 0,
    };
    const USER_INLINE: DocumentKind = DocumentKind::Inline {
        kind: Kind::User,
        others_size: 0,
    };

    fn ok(doc: &str, kind: DocumentKind) -> Value {
        match check_policy(doc.as_bytes(), kind) {
            Ok(value) => value,
            Err(err) => panic!("expected {doc} to pass as {kind:?}, got: {}", err.message),
        }
    }

    /// The error message, after checking the error's kind and code.
    fn refused(doc: &str, kind: DocumentKind) -> String {
        refused_bytes(doc.as_bytes(), kind)
    }

    fn refused_bytes(bytes: &[u8], kind: DocumentKind) -> String {
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

    fn assert_mentions(message: &str, parts: &[&str]) {
        for part in parts {
            assert!(
                message.contains(part),
                "message {message:?} should mention {part:?}"
            );
        }
    }

    /// A managed policy with one statement whose body is `statement`.
    fn with_statement(statement: Value) -> String {
        json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
    }

    fn trust_with_statement(statement: Value) -> String {
        json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
    }

    // ---- valid documents -------------------------------------------------

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
    fn statement_object_not_in_an_array_passes() {
        let doc = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"arn:aws:s3:::*"}}"#;
        ok(doc, DocumentKind::Managed);
        ok(doc, USER_INLINE);
    }

    #[test]
    fn parsed_document_keeps_key_order() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Resource":"*","Effect":"Allow","Action":"s3:*"}]}"#;
        let value = ok(doc, DocumentKind::Managed);
        let keys: Vec<&String> = value["Statement"][0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Resource", "Effect", "Action"]);
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
    fn latin1_text_passes_and_counts_as_characters() {
        let doc = with_statement(
            json!({"Sid": "Café", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
        );
        ok(&doc, DocumentKind::Managed);
        assert_eq!(policy_size("é é"), 2);
    }

    #[test]
    fn escaped_characters_beyond_latin1_pass_since_the_rule_is_on_raw_text() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"x","Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/\u4e2d"}]}"#;
        ok(doc, DocumentKind::Managed);
    }

    #[test]
    fn tabs_and_crlf_pass() {
        let doc = "{\r\n\t\"Version\": \"2012-10-17\",\r\n\t\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"}\r\n}\r\n";
        ok(doc, DocumentKind::Managed);
    }

    // ---- text ------------------------------------------------------------

    #[test]
    fn empty_and_whitespace_only_are_refused() {
        for doc in ["", "   ", "\n\t\r\n"] {
            assert_eq!(refused(doc, DocumentKind::Managed), "empty document");
        }
    }

    #[test]
    fn binary_is_refused() {
        let message = refused_bytes(b"{\"Version\"\0}", DocumentKind::Managed);
        assert_mentions(&message, &["line 1, column 11", "NUL", "binary"]);
        let message = refused_bytes(b"{\n  \"a\": \"\xff\xfe\"}", DocumentKind::Managed);
        assert_mentions(&message, &["line 2, column 9", "not UTF-8", "0xFF"]);
    }

    #[test]
    fn characters_beyond_latin1_are_refused_with_position() {
        let doc = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": {\"Sid\": \"é中\"}\n}";
        let message = refused(doc, DocumentKind::Managed);
        assert_mentions(
            &message,
            &["line 3, column 26", "U+4E2D", "U+0020 to U+00FF"],
        );
    }

    #[test]
    fn byte_order_mark_is_refused() {
        let doc = "\u{FEFF}{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}";
        let message = refused(doc, DocumentKind::Managed);
        assert_mentions(&message, &["line 1, column 1", "byte-order mark"]);
    }

    #[test]
    fn control_characters_other_than_tab_lf_cr_are_refused() {
        let message = refused("{\u{0B}}", DocumentKind::Managed);
        assert_mentions(&message, &["U+000B", "line 1, column 2"]);
    }

    // ---- JSON syntax -----------------------------------------------------

    #[test]
    fn json_error_reports_line_and_column_in_a_multi_line_document() {
        let doc = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\" \"Action\": \"*\"}\n  ]\n}\n";
        let message = refused(doc, DocumentKind::Managed);
        assert_eq!(message, "line 4, column 24: expected `,` or `}`");
    }

    #[test]
    fn json_error_column_counts_characters_not_bytes() {
        // "é" is two bytes in UTF-8 but one column in an editor.
        let doc = "{\"Sid\": \"é\" x}";
        let message = refused(doc, DocumentKind::Managed);
        assert!(message.starts_with("line 1, column 13: "), "{message}");
    }

    #[test]
    fn json_errors_at_end_and_trailing_text_are_reported() {
        let message = refused("{\n\"Version\": \"2012-10-17\",\n", DocumentKind::Managed);
        assert_mentions(&message, &["line 3, column 1: EOF while parsing"]);
        let message = refused("{} {}", DocumentKind::Managed);
        assert_mentions(&message, &["line 1, column 4: trailing characters"]);
    }

    // ---- top level -------------------------------------------------------

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

    // ---- statements ------------------------------------------------------

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
    fn lone_statement_object_is_labelled_without_index() {
        let doc = json!({"Version": "2012-10-17", "Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}}).to_string();
        assert!(refused(&doc, DocumentKind::Managed).starts_with("Statement: Effect"));
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

    // ---- size ------------------------------------------------------------

    /// A one-statement document of exactly `size` non-whitespace characters,
    /// padded with `spaces` spaces that don't count.
    fn document_of_size(size: usize, spaces: usize, trust: bool) -> String {
        let head = if trust {
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Sid":""#
        } else {
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Sid":""#
        };
        let tail = "\"}}";
        let fill = size - policy_size(head) - policy_size(tail);
        let doc = format!("{head}{}{tail}{}", "x".repeat(fill), " ".repeat(spaces));
        assert_eq!(policy_size(&doc), size);
        doc
    }

    #[test]
    fn policy_size_leaves_out_whitespace() {
        assert_eq!(policy_size(""), 0);
        assert_eq!(policy_size(" {\n\t\"a\" : 1 }\r\n"), 7);
    }

    #[test]
    fn managed_policy_limit() {
        ok(
            &document_of_size(6_144, 3_000, false),
            DocumentKind::Managed,
        );
        assert_eq!(
            refused(&document_of_size(7_001, 0, false), DocumentKind::Managed),
            "policy is 7,001 characters (whitespace not counted); IAM allows 6,144 for a managed policy"
        );
    }

    #[test]
    fn inline_limit_is_the_entity_aggregate() {
        for (kind, limit) in [
            (Kind::User, 2_048),
            (Kind::Group, 5_120),
            (Kind::Role, 10_240),
        ] {
            let alone = DocumentKind::Inline {
                kind,
                others_size: 0,
            };
            ok(&document_of_size(limit, 100, false), alone);
            let message = refused(&document_of_size(limit + 1, 0, false), alone);
            assert_mentions(
                &message,
                &[
                    &thousands(limit + 1),
                    &thousands(limit),
                    kind.api().to_lowercase().as_str(),
                ],
            );

            let with_others = DocumentKind::Inline {
                kind,
                others_size: 1_000,
            };
            ok(&document_of_size(limit - 1_000, 0, false), with_others);
            let message = refused(&document_of_size(limit - 999, 0, false), with_others);
            assert_mentions(
                &message,
                &[
                    "other inline policies are 1,000",
                    &format!("{} in all", thousands(limit + 1)),
                ],
            );
        }
        // An absurd size from the caller does not overflow.
        refused(
            &document_of_size(200, 0, false),
            DocumentKind::Inline {
                kind: Kind::User,
                others_size: usize::MAX,
            },
        );
    }

    #[test]
    fn trust_policy_refused_only_above_the_raised_quota() {
        ok(&document_of_size(4_096, 50, true), DocumentKind::Trust);
        let message = refused(&document_of_size(4_097, 0, true), DocumentKind::Trust);
        assert_mentions(&message, &["4,097", "4,096", "trust policy"]);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(6_144), "6,144");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    // ---- same_policy -----------------------------------------------------

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

    // ---- tags ------------------------------------------------------------

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

    // ---- names -----------------------------------------------------------

    #[test]
    fn name_lengths_by_kind() {
        for (kind, max) in [
            (NameKind::User, 64),
            (NameKind::Group, 128),
            (NameKind::Role, 64),
            (NameKind::Policy, 128),
        ] {
            check_name(&"a".repeat(max), kind).unwrap();
            let err = check_name(&"a".repeat(max + 1), kind).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert_mentions(
                &err.message,
                &[
                    &format!("{} characters", max + 1),
                    &format!("at most {max}"),
                    kind.noun(),
                ],
            );
        }
    }

    #[test]
    fn name_characters() {
        check_name("Alice_Smith+ops=1,x.y@example-2", NameKind::User).unwrap();
        for bad in [
            "has space",
            "slash/name",
            "émile",
            "tab\t",
            "colon:",
            "star*",
        ] {
            let err = check_name(bad, NameKind::Role).unwrap_err();
            assert_mentions(
                &err.message,
                &["is not allowed", "ASCII letters, digits and _ + = , . @ -"],
            );
        }
        assert_mentions(
            &check_name("", NameKind::Group).unwrap_err().message,
            &["group name cannot be empty"],
        );
    }

    // ---- property tests --------------------------------------------------

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
    fn document(trust: bool, needs_version: bool) -> impl Strategy<Value = (Value, String)> {
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
            let _ = check_name(&text, NameKind::Policy);
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
