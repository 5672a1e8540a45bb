//! Role credentials from sts:AssumeRole: cached in memory per role until
//! shortly before they expire, never written anywhere, zeroized on drop.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use zeroize::Zeroizing;

use crate::document::timestamp;
use crate::error::Result;
use crate::iam::Iam;
use crate::keyed::KeyedLocks;
pub use crate::model::RoleCredentials;
use crate::policy::is_name_char;

/// Refresh this long before expiry, as the AWS SDKs do.
pub const REFRESH_WINDOW: Duration = Duration::from_secs(5 * 60);
/// STS's shortest session; and the cap on role chaining.
const MIN_DURATION: u64 = 900;
const CHAINED_MAX: u64 = 3600;

impl fmt::Debug for RoleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &timestamp(self.expiration))
            .finish()
    }
}

impl RoleCredentials {
    /// The `credential_process` format.
    pub fn process_json(&self) -> Zeroizing<Vec<u8>> {
        // Written into one buffer sized up front, so no copy of a secret is
        // left behind by a reallocation.
        let mut out = Zeroizing::new(String::with_capacity(4096));
        out.push_str("{\n  \"Version\": 1,\n");
        for (key, value) in [
            ("AccessKeyId", self.access_key_id.as_str()),
            ("SecretAccessKey", &self.secret_access_key),
            ("SessionToken", &self.session_token),
        ] {
            out.push_str("  \"");
            out.push_str(key);
            out.push_str("\": ");
            push_json_string(&mut out, value);
            out.push_str(",\n");
        }
        out.push_str("  \"Expiration\": ");
        push_json_string(&mut out, &timestamp(self.expiration));
        out.push_str("\n}\n");
        Zeroizing::new(out.as_bytes().to_vec())
    }

    /// `export` lines for `eval "$(cat roles/X/env)"`.
    pub fn env_lines(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(String::with_capacity(4096));
        for (name, value) in [
            ("AWS_ACCESS_KEY_ID", self.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_access_key),
            ("AWS_SESSION_TOKEN", &self.session_token),
            ("AWS_CREDENTIAL_EXPIRATION", &timestamp(self.expiration)),
        ] {
            out.push_str("export ");
            out.push_str(name);
            out.push_str("='");
            // STS values are base64-like; close and reopen quotes around any '.
            out.push_str(&value.replace('\'', "'\\''"));
            out.push_str("'\n");
        }
        Zeroizing::new(out.as_bytes().to_vec())
    }

    fn fresh(&self, now: SystemTime) -> bool {
        self.expiration
            .duration_since(now)
            .is_ok_and(|left| left > REFRESH_WINDOW)
    }
}

fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The RoleSessionName for the local user: only characters STS allows (IAM's
/// name characters), at most 64 of them.
pub fn session_name(user: &str) -> String {
    let clean: String = user
        .chars()
        .map(|c| if is_name_char(c) { c } else { '-' })
        .collect();
    let mut name = format!("iamfs-{clean}");
    name.truncate(64);
    name
}

/// The name of the user running the daemon.
pub fn local_user_name() -> String {
    // SAFETY: getpwuid returns a pointer into static storage or null; we copy
    // the name out at once.
    unsafe {
        let uid = libc::getuid();
        let pw = libc::getpwuid(uid);
        if pw.is_null() || (*pw).pw_name.is_null() {
            return format!("uid{uid}");
        }
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// How long to ask for: the configured duration, within the role's maximum,
/// STS's minimum, and the one-hour cap on role chaining.
pub fn session_seconds(wanted: u64, role_max: Option<i32>, chained: bool) -> i32 {
    let mut secs = wanted.max(MIN_DURATION);
    if let Some(max) = role_max.filter(|m| *m > 0) {
        secs = secs.min(max as u64);
    }
    if chained {
        secs = secs.min(CHAINED_MAX);
    }
    secs.max(MIN_DURATION) as i32
}

/// Role sessions by role ARN, each fetched by one AssumeRole however
/// many readers ask at once.
pub struct CredentialCache {
    sessions: Mutex<HashMap<String, Arc<RoleCredentials>>>,
    assuming: KeyedLocks<String>,
    session_name: String,
    duration: u64,
}

impl CredentialCache {
    pub fn new(session_name: String, duration: u64) -> Self {
        Self {
            sessions: Mutex::default(),
            assuming: KeyedLocks::default(),
            session_name,
            duration,
        }
    }

    pub fn clear(&self) {
        self.sessions.lock().clear();
    }

    /// The role's credentials if cached and fresh; never an AssumeRole.
    pub fn peek(&self, role_arn: &str) -> Option<Arc<RoleCredentials>> {
        let mut sessions = self.sessions.lock();
        let now = SystemTime::now();
        // Expired sessions go as they are looked at: the map holds at most
        // the roles whose sessions are still usable, and those looked at.
        sessions.retain(|_, c| c.fresh(now));
        sessions.get(role_arn).cloned()
    }

    /// The role's cached credentials, or new ones from one AssumeRole even
    /// when many readers ask at once.
    pub async fn get(
        &self,
        iam: &dyn Iam,
        role_arn: &str,
        role_max: Option<i32>,
        chained: bool,
    ) -> Result<Arc<RoleCredentials>> {
        if let Some(creds) = self.peek(role_arn) {
            return Ok(creds);
        }
        let _one_assume_role = self.assuming.lock(&role_arn.to_string()).await;
        if let Some(creds) = self.peek(role_arn) {
            return Ok(creds); // another reader's AssumeRole, while we waited
        }
        let secs = session_seconds(self.duration, role_max, chained);
        let creds = Arc::new(iam.assume_role(role_arn, &self.session_name, secs).await?);
        tracing::info!(role = role_arn, expiration = %timestamp(creds.expiration), "assumed role");
        self.sessions
            .lock()
            .insert(role_arn.to_string(), creds.clone());
        Ok(creds)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn session_names_use_only_sts_characters() {
        assert_eq!(session_name("alice"), "iamfs-alice");
        assert_eq!(session_name("dom\\bob smith"), "iamfs-dom-bob-smith");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
    }

    proptest! {
        /// Whatever the local user is called, STS gets a name it takes.
        #[test]
        fn any_user_name_gives_a_valid_session_name(user in any::<String>()) {
            let name = session_name(&user);
            prop_assert!(name.starts_with("iamfs-"));
            prop_assert!(name.len() <= 64);
            prop_assert!(name.chars().all(is_name_char));
        }
    }

    #[test]
    fn durations_are_clamped_not_refused() {
        assert_eq!(session_seconds(3600, Some(3600), false), 3600);
        assert_eq!(session_seconds(43200, Some(7200), false), 7200);
        assert_eq!(session_seconds(7200, Some(43200), true), 3600);
        assert_eq!(session_seconds(60, None, false), 900);
    }

    #[test]
    fn debug_hides_secrets() {
        let c = RoleCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "supersecret".into(),
            session_token: "tokentoken".into(),
            expiration: SystemTime::now(),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("ASIAEXAMPLE"));
        assert!(!shown.contains("supersecret") && !shown.contains("tokentoken"));
        let json: serde_json::Value = serde_json::from_slice(&c.process_json()).unwrap();
        assert_eq!(json["Version"], 1);
        assert_eq!(json["SecretAccessKey"], "supersecret");
        let env = String::from_utf8(c.env_lines().to_vec()).unwrap();
        assert!(env.contains("export AWS_SESSION_TOKEN='tokentoken'\n"));
    }
}
