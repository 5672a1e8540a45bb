//! Turning what IAM returns into the bytes a file shows.

use std::time::SystemTime;

use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::model::{
    AccessKey, AccessKeyLastUsed, Entity, InstanceProfile, Kind, LoginProfile, MfaDevice,
    PasswordPolicy, Tag,
};

/// Parses a policy document that IAM may return URL-encoded (RFC 3986) or plain.
pub fn decode_policy(raw: &str) -> Value {
    if let Ok(value) = serde_json::from_str::<Value>(raw) {
        return value;
    }
    let decoded = percent_decode_str(raw).decode_utf8_lossy();
    serde_json::from_str(&decoded).unwrap_or_else(|_| Value::String(decoded.into_owned()))
}

/// Two-space pretty JSON with a trailing newline, keys in the order given.
pub fn render(value: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).expect("a Value always serializes");
    out.push(b'\n');
    out
}

/// A raw policy document as file content.
pub fn render_policy(raw: &str) -> Vec<u8> {
    render(&decode_policy(raw))
}

pub fn timestamp(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

fn tag_list(tags: &[Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| serde_json::json!({"Key": t.key, "Value": t.value}))
            .collect(),
    )
}

/// user.json, group.json or role.json: the fields of GetUser/GetGroup/GetRole
/// in the order IAM returns them.
pub fn render_entity(e: &Entity) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("Path".into(), e.path.clone().into());
    m.insert(format!("{}Name", e.kind.api()), e.name.clone().into());
    m.insert(format!("{}Id", e.kind.api()), e.id.clone().into());
    m.insert("Arn".into(), e.arn.clone().into());
    m.insert("CreateDate".into(), timestamp(e.create_date).into());
    if let Some(doc) = &e.trust_policy {
        m.insert("AssumeRolePolicyDocument".into(), decode_policy(doc));
    }
    if let Some(d) = &e.description {
        m.insert("Description".into(), d.clone().into());
    }
    if let Some(d) = e.max_session_duration {
        m.insert("MaxSessionDuration".into(), d.into());
    }
    if let Some(t) = e.password_last_used {
        m.insert("PasswordLastUsed".into(), timestamp(t).into());
    }
    if let Some(b) = &e.permissions_boundary {
        m.insert(
            "PermissionsBoundary".into(),
            serde_json::json!({"PermissionsBoundaryType": b.kind, "PermissionsBoundaryArn": b.arn}),
        );
    }
    if let Some(tags) = e.tags.as_deref().filter(|t| !t.is_empty()) {
        m.insert("Tags".into(), tag_list(tags));
    }
    if e.kind == Kind::Role {
        if let Some(used) = &e.role_last_used {
            let mut u = Map::new();
            if let Some(d) = used.date {
                u.insert("LastUsedDate".into(), timestamp(d).into());
            }
            if let Some(r) = &used.region {
                u.insert("Region".into(), r.clone().into());
            }
            m.insert("RoleLastUsed".into(), Value::Object(u));
        }
    }
    render(&Value::Object(m))
}

/// tags.json: {"Key": "Value", ...} in IAM's order.
pub fn render_tags(tags: &[Tag]) -> Vec<u8> {
    let m: Map<String, Value> = tags
        .iter()
        .map(|t| (t.key.clone(), Value::String(t.value.clone())))
        .collect();
    render(&Value::Object(m))
}

/// A role's settings.json: what UpdateRole sets.
pub fn render_role_settings(description: &str, max_session_duration: i32) -> Vec<u8> {
    render(&serde_json::json!({
        "Description": description,
        "MaxSessionDuration": max_session_duration,
    }))
}

/// mfa-devices.json: each device's serial number and when it was enabled.
pub fn render_mfa_devices(devices: &[MfaDevice]) -> Vec<u8> {
    let list: Vec<Value> = devices
        .iter()
        .map(|d| json!({"SerialNumber": d.serial_number, "EnableDate": timestamp(d.enable_date)}))
        .collect();
    render(&Value::Array(list))
}

/// login-profile.json: whether the user has a console password, and its
/// dates; never the password.
pub fn render_login_profile(profile: Option<&LoginProfile>) -> Vec<u8> {
    render(&match profile {
        Some(p) => json!({
            "PasswordExists": true,
            "CreateDate": timestamp(p.create_date),
            "PasswordResetRequired": p.password_reset_required,
        }),
        None => json!({"PasswordExists": false}),
    })
}

/// instance-profile.json: GetInstanceProfile, roles by name.
pub fn render_instance_profile(p: &InstanceProfile) -> Vec<u8> {
    let tags: Map<String, Value> = p
        .tags
        .iter()
        .flatten()
        .map(|t| (t.key.clone(), Value::String(t.value.clone())))
        .collect();
    render(&json!({
        "Path": p.path,
        "InstanceProfileName": p.name,
        "InstanceProfileId": p.id,
        "Arn": p.arn,
        "CreateDate": timestamp(p.create_date),
        "Roles": p.roles,
        "Tags": tags,
    }))
}

/// summary.json: GetAccountSummary's map, by key.
pub fn render_summary(summary: &[(String, i64)]) -> Vec<u8> {
    let m: Map<String, Value> = summary
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(*v)))
        .collect();
    render(&Value::Object(m))
}

pub fn render_password_policy(policy: &PasswordPolicy) -> Vec<u8> {
    render(&serde_json::to_value(policy).expect("a PasswordPolicy always serializes"))
}

/// access-keys.json: key ids, status and last use; never secrets.
pub fn render_access_keys(keys: &[(AccessKey, AccessKeyLastUsed)]) -> Vec<u8> {
    let list = keys
        .iter()
        .map(|(k, used)| {
            let mut m = Map::new();
            m.insert("AccessKeyId".into(), k.id.clone().into());
            m.insert("Status".into(), k.status.clone().into());
            if let Some(d) = k.create_date {
                m.insert("CreateDate".into(), timestamp(d).into());
            }
            let mut u = Map::new();
            if let Some(d) = used.date {
                u.insert("LastUsedDate".into(), timestamp(d).into());
            }
            if let Some(s) = &used.service {
                u.insert("ServiceName".into(), s.clone().into());
            }
            if let Some(r) = &used.region {
                u.insert("Region".into(), r.clone().into());
            }
            m.insert("LastUsed".into(), Value::Object(u));
            Value::Object(m)
        })
        .collect();
    render(&Value::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

    #[test]
    fn url_encoded_and_plain_documents_read_the_same() {
        let encoded =
            percent_encoding::utf8_percent_encode(DOC, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert!(encoded.starts_with("%7B"));
        assert_eq!(render_policy(&encoded), render_policy(DOC));
    }

    #[test]
    fn pretty_printed_in_iam_key_order_with_trailing_newline() {
        let out = String::from_utf8(render_policy(DOC)).unwrap();
        assert_eq!(
            out,
            "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\",\n      \"Action\": \"s3:*\",\n      \"Resource\": \"*\"\n    }\n  ]\n}\n"
        );
    }

    #[test]
    fn plus_and_percent_in_plain_documents_survive() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::a+b%20c"}]}"#;
        assert!(String::from_utf8(render_policy(doc))
            .unwrap()
            .contains("a+b%20c"));
    }

    #[test]
    fn tags_render_as_an_object() {
        let tags = vec![
            Tag {
                key: "team".into(),
                value: "x".into(),
            },
            Tag {
                key: "env".into(),
                value: "prod".into(),
            },
        ];
        assert_eq!(
            String::from_utf8(render_tags(&tags)).unwrap(),
            "{\n  \"team\": \"x\",\n  \"env\": \"prod\"\n}\n"
        );
    }
}
