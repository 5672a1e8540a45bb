//! The daemon's own credentials: the credential chain (cached here, so a
//! refusal by AWS drops them at once), or an MFA session made with a code
//! (GetSessionToken for a user, AssumeRole for a role profile), and what to
//! tell the user when AWS refuses them or a new code is needed.
//!
//! Codes and session secrets are never logged, never shown in
//! `.iamfs/status` or `.iamfs/errors`, and zeroized when dropped: codes are
//! `MfaCode`, credentials the SDK's `Credentials` (zeroized inside).

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde_json::json;
use tracing::instrument::WithSubscriber;
use zeroize::Zeroizing;

use crate::document::timestamp;
use crate::error::{ErrorKind, IamError, Result};
use crate::iam::layer::{Call, Hook};
use crate::iam::sdk::sdk_error;
use crate::iam::Kind;

/// The longest GetSessionToken session IAM gives (36 h), and the default (12 h).
pub const MFA_DURATION_MAX: u64 = 36 * 3600;
pub const MFA_DURATION_DEFAULT: u64 = 12 * 3600;
/// GetSessionToken's shortest session.
pub const MFA_DURATION_MIN: u64 = 900;
/// With `--mfa-command`, a session is renewed this long before it expires.
const RENEW_EARLY: Duration = Duration::from_secs(5 * 60);
/// Without it, a session is used until this close to its expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// A failed `--mfa-command` is not run again sooner than this.
const COMMAND_RETRY: Duration = Duration::from_secs(30);
/// How long `--mfa-command` may take (a hardware key may wait for a touch).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Chain credentials without an expiry are asked again after this long.
const CHAIN_TTL: Duration = Duration::from_secs(15 * 60);

// ---- codes -----------------------------------------------------------------

/// A one-time MFA code: six digits, never shown, zeroized on drop.
pub struct MfaCode(Zeroizing<String>);

impl MfaCode {
    /// A code as typed or written: surrounding whitespace (the newline of
    /// `echo`) is dropped; anything but six digits is refused.
    pub fn parse(text: &[u8]) -> Result<MfaCode> {
        let start = text.iter().position(|b| !b.is_ascii_whitespace());
        let end = text.iter().rposition(|b| !b.is_ascii_whitespace());
        let code = match (start, end) {
            (Some(s), Some(e)) => &text[s..=e],
            _ => &[][..],
        };
        if code.len() != 6 || !code.iter().all(u8::is_ascii_digit) {
            return Err(IamError::new(
                ErrorKind::InvalidInput,
                "InvalidMfaCode",
                "an MFA code is the six digits the device shows",
            ));
        }
        let mut s = Zeroizing::new(String::with_capacity(6));
        s.extend(code.iter().map(|&b| b as char));
        Ok(MfaCode(s))
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MfaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaCode(<redacted>)")
    }
}

/// Asks for a code at the terminal, as the AWS CLI does (`Enter MFA code
/// for <serial>: `), without echo. `None` when standard input is not a
/// terminal.
pub fn prompt_code(serial: &str) -> std::io::Result<Option<MfaCode>> {
    // SAFETY: isatty only looks at the descriptor.
    if unsafe { libc::isatty(0) } != 1 {
        return Ok(None);
    }
    eprint!("Enter MFA code for {serial}: ");
    let echo = EchoOff::new(0);
    let mut line = Zeroizing::new(Vec::with_capacity(16));
    let mut byte = [0u8; 1];
    loop {
        // SAFETY: reads one byte into a live buffer.
        let n = unsafe { libc::read(0, byte.as_mut_ptr().cast(), 1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 || byte[0] == b'\n' || line.len() > 64 {
            break;
        }
        line.push(byte[0]);
    }
    drop(echo);
    eprintln!();
    MfaCode::parse(&line)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.message))
}

/// Turns the terminal's echo off until dropped.
struct EchoOff {
    fd: i32,
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new(fd: i32) -> Self {
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        let saved = unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(fd, &mut t) == 0).then_some(t)
        };
        if let Some(mut t) = saved {
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            // SAFETY: sets the attributes just read, less echo.
            unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
        }
        Self { fd, saved }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            // SAFETY: restores what tcgetattr gave.
            unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, t) };
        }
    }
}

/// Runs `--mfa-command` (with `sh -c`) and takes the code from the last
/// line of its standard output. Blocking: call it off the runtime's threads.
pub fn run_command(command: &str) -> std::result::Result<MfaCode, String> {
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run --mfa-command: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "--mfa-command did not finish in {} s",
                    COMMAND_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("--mfa-command: {e}")),
        }
    };
    let mut out = Zeroizing::new(Vec::with_capacity(256));
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_end(&mut out);
    }
    let mut err = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        let _ = stderr.take(2048).read_to_end(&mut err);
    }
    if !status.success() {
        // Its standard error only: standard output may hold a code.
        let err = String::from_utf8_lossy(&err);
        return Err(format!(
            "--mfa-command exited with {status}: {}",
            err.trim().lines().last().unwrap_or("")
        ));
    }
    let last = out
        .split(|&b| b == b'\n')
        .rev()
        .find(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
        .unwrap_or(&[]);
    MfaCode::parse(last).map_err(|_| {
        "--mfa-command printed no six-digit code on the last line of its output".to_string()
    })
}

// ---- the MFA session's settings ------------------------------------------------

/// Where the credentials that ask for an MFA session come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// The SDK's default chain (environment variables, or the profile itself
    /// for a user profile).
    Chain,
    /// A role profile's `source_profile`.
    Profile(String),
    /// A role profile's `credential_source`.
    Environment,
    Ec2InstanceMetadata,
    EcsContainer,
}

/// How the MFA session is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKind {
    /// sts:GetSessionToken with the code: a user's own keys.
    User { duration_seconds: i32 },
    /// sts:AssumeRole of the profile's `role_arn` with the code.
    Role {
        role_arn: String,
        session_name: String,
        duration_seconds: Option<i32>,
        external_id: Option<String>,
    },
}

/// What the profile (and `--mfa-serial`) ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaPlan {
    pub serial: String,
    pub kind: SessionKind,
    pub base: Base,
}

/// How the daemon's credentials are renewed when AWS refuses them, for the
/// messages (`aws sso login --profile X` for an SSO profile).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub profile: Option<String>,
    pub sso: bool,
}

/// Reads the selected profile with aws-config's own parser (the files
/// AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE name, or ~/.aws/), and
/// says whether the daemon needs an MFA session and how to make it.
pub async fn plan(
    profile: Option<&str>,
    mfa_serial: Option<&str>,
    mfa_duration: u64,
    session_name: &str,
) -> std::result::Result<(Option<MfaPlan>, Origin), String> {
    use aws_runtime::env_config::file::EnvConfigFiles;
    use aws_types::os_shim_internal::{Env, Fs};
    let set = aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &EnvConfigFiles::default(),
        profile.map(|p| Cow::Owned(p.to_string())),
    )
    .await;
    let set = match set {
        Ok(set) => Some(set),
        Err(e) => {
            tracing::debug!("no profile files read: {e}");
            None
        }
    };
    let selected = set
        .as_ref()
        .and_then(|s| s.get_profile(s.selected_profile()));
    let is_sso = |p: Option<&aws_config::profile::Profile>| {
        p.is_some_and(|p| p.get("sso_session").is_some() || p.get("sso_start_url").is_some())
    };
    let mut origin = Origin {
        profile: profile
            .map(str::to_string)
            .or_else(|| selected.map(|p| p.name().to_string())),
        sso: is_sso(selected),
    };
    if profile.is_none() && std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        origin.profile = None;
    }
    let serial = mfa_serial.map(str::to_string).or_else(|| {
        selected
            .and_then(|p| p.get("mfa_serial"))
            .map(str::to_string)
    });
    let Some(serial) = serial else {
        return Ok((None, origin));
    };
    let duration_seconds = mfa_duration.clamp(MFA_DURATION_MIN, MFA_DURATION_MAX) as i32;
    let role_arn = selected.and_then(|p| p.get("role_arn"));
    let plan = match (selected, role_arn) {
        (Some(p), Some(role_arn)) => {
            let base = match (p.get("source_profile"), p.get("credential_source")) {
                (Some(source), _) => Base::Profile(source.to_string()),
                (None, Some("Environment")) => Base::Environment,
                (None, Some("Ec2InstanceMetadata")) => Base::Ec2InstanceMetadata,
                (None, Some("EcsContainer")) => Base::EcsContainer,
                (None, Some(other)) => {
                    return Err(format!(
                        "profile {}: credential_source {other} is not one of Environment, \
                         Ec2InstanceMetadata, EcsContainer",
                        p.name()
                    ))
                }
                (None, None) => {
                    return Err(format!(
                        "profile {} has role_arn but neither source_profile nor credential_source",
                        p.name()
                    ))
                }
            };
            if let Base::Profile(source) = &base {
                let source = set.as_ref().and_then(|s| s.get_profile(source));
                origin.sso = is_sso(source);
                origin.profile = source.map(|s| s.name().to_string());
            }
            let duration = p
                .get("duration_seconds")
                .map(|d| {
                    d.trim()
                        .parse::<i32>()
                        .map_err(|_| format!("profile {}: duration_seconds {d:?}", p.name()))
                })
                .transpose()?;
            MfaPlan {
                serial,
                kind: SessionKind::Role {
                    role_arn: role_arn.to_string(),
                    session_name: p
                        .get("role_session_name")
                        .unwrap_or(session_name)
                        .to_string(),
                    duration_seconds: duration,
                    external_id: p.get("external_id").map(str::to_string),
                },
                base,
            }
        }
        _ => MfaPlan {
            serial,
            kind: SessionKind::User { duration_seconds },
            base: Base::Chain,
        },
    };
    Ok((Some(plan), origin))
}

// ---- the daemon's credentials ----------------------------------------------------

/// What the daemon signs its calls with: handed to the SDK as its
/// credentials provider (with the SDK's own identity cache off: the cache
/// is here, so that a refusal by AWS drops it at once).
pub struct DaemonCredentials {
    source: Source,
    origin: Origin,
    /// The mountpoint, for the renewal command in messages.
    mount: String,
    state: Mutex<State>,
    /// One renewal at a time (a new session, or asking the chain again).
    renewing: tokio::sync::Mutex<()>,
}

enum Source {
    Chain(SharedCredentialsProvider),
    Mfa(Box<MfaSource>),
}

struct MfaSource {
    plan: MfaPlan,
    /// STS signed with the base credentials.
    sts: aws_sdk_sts::Client,
    command: Option<String>,
}

#[derive(Default)]
struct State {
    credentials: Option<Credentials>,
    started: Option<SystemTime>,
    /// Set when AWS refused the credentials (ExpiredToken...): when, and the code.
    refused: Option<(SystemTime, String)>,
    /// The last failure to get credentials: when, and why.
    failed: Option<(SystemTime, String)>,
    command_failed: Option<Instant>,
    sessions: u64,
    /// The chain's credentials came without an expiry (the one held is
    /// only when iamfs asks the chain again).
    no_expiry: bool,
}

impl State {
    fn expires(&self) -> Option<SystemTime> {
        self.credentials.as_ref().and_then(|c| c.expiry())
    }

    /// The credentials if they are good for at least `margin` more.
    fn usable(&self, margin: Duration) -> Option<Credentials> {
        if self.refused.is_some() {
            return None;
        }
        let c = self.credentials.as_ref()?;
        match c.expiry() {
            Some(at) if at.duration_since(SystemTime::now()).unwrap_or_default() <= margin => None,
            _ => Some(c.clone()),
        }
    }
}

impl fmt::Debug for DaemonCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonCredentials")
            .field("mfa", &self.plan().map(|p| &p.serial))
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl DaemonCredentials {
    /// The SDK's credential chain, cached here.
    pub fn chain(chain: SharedCredentialsProvider, origin: Origin, mount: String) -> Arc<Self> {
        Arc::new(Self {
            source: Source::Chain(chain),
            origin,
            mount,
            state: Mutex::default(),
            renewing: tokio::sync::Mutex::new(()),
        })
    }

    /// An MFA session made with `base` (an SDK config whose credentials are
    /// the ones that ask for it); no session until a code arrives.
    pub fn mfa(
        plan: MfaPlan,
        base: &aws_config::SdkConfig,
        command: Option<String>,
        origin: Origin,
        mount: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            source: Source::Mfa(Box::new(MfaSource {
                plan,
                sts: aws_sdk_sts::Client::new(base),
                command,
            })),
            origin,
            mount,
            state: Mutex::default(),
            renewing: tokio::sync::Mutex::new(()),
        })
    }

    pub fn plan(&self) -> Option<&MfaPlan> {
        match &self.source {
            Source::Mfa(m) => Some(&m.plan),
            Source::Chain(_) => None,
        }
    }

    pub fn has_command(&self) -> bool {
        matches!(&self.source, Source::Mfa(m) if m.command.is_some())
    }

    /// The credentials for the next call, or why there are none (the
    /// message says how to renew them).
    async fn get(&self) -> provider::Result {
        match &self.source {
            Source::Chain(chain) => {
                if let Some(c) = self.state.lock().usable(RENEW_EARLY) {
                    return Ok(c);
                }
                let _one = self.renewing.lock().await;
                if let Some(c) = self.state.lock().usable(RENEW_EARLY) {
                    return Ok(c);
                }
                match chain.provide_credentials().await {
                    Ok(mut c) => {
                        // Without an expiry, asked again after CHAIN_TTL (a
                        // profile's keys may be replaced meanwhile).
                        let no_expiry = c.expiry().is_none();
                        if no_expiry {
                            *c.expiry_mut() = Some(SystemTime::now() + CHAIN_TTL);
                        }
                        let mut state = self.state.lock();
                        state.no_expiry = no_expiry;
                        state.credentials = Some(c.clone());
                        state.refused = None;
                        state.failed = None;
                        Ok(c)
                    }
                    Err(e) => {
                        let why = crate::iam::sdk::error_chain(&e);
                        self.state.lock().failed = Some((SystemTime::now(), why.clone()));
                        Err(CredentialsError::provider_error(format!(
                            "{why}; {}",
                            self.chain_fix()
                        )))
                    }
                }
            }
            Source::Mfa(mfa) => {
                let margin = if mfa.command.is_some() {
                    RENEW_EARLY
                } else {
                    EXPIRY_MARGIN
                };
                if let Some(c) = self.state.lock().usable(margin) {
                    return Ok(c);
                }
                if let Some(command) = &mfa.command {
                    let _one = self.renewing.lock().await;
                    if let Some(c) = self.state.lock().usable(margin) {
                        return Ok(c);
                    }
                    let retry = self
                        .state
                        .lock()
                        .command_failed
                        .is_none_or(|at| at.elapsed() > COMMAND_RETRY);
                    if retry {
                        match self.session_from_command(mfa, command).await {
                            Ok(c) => return Ok(c),
                            Err(why) => {
                                tracing::warn!("MFA: {why}");
                                let mut state = self.state.lock();
                                state.command_failed = Some(Instant::now());
                                state.failed = Some((SystemTime::now(), why));
                            }
                        }
                    }
                    // Still good, if no longer for long.
                    if let Some(c) = self.state.lock().usable(EXPIRY_MARGIN) {
                        return Ok(c);
                    }
                }
                Err(CredentialsError::provider_error(self.renewal_message()))
            }
        }
    }

    async fn session_from_command(
        &self,
        mfa: &MfaSource,
        command: &str,
    ) -> std::result::Result<Credentials, String> {
        let command = command.to_string();
        let code = tokio::task::spawn_blocking(move || run_command(&command))
            .await
            .map_err(|e| format!("--mfa-command: {e}"))??;
        tracing::info!(serial = %mfa.plan.serial, "MFA code from --mfa-command");
        self.start_locked(mfa, &code)
            .await
            .map_err(|e| format!("a new session with the code from --mfa-command failed: {e}"))
    }

    /// A new MFA session with this code, at once (`.iamfs/mfa`, the prompt
    /// at mount).
    pub async fn start(&self, code: &MfaCode) -> Result<()> {
        let Source::Mfa(mfa) = &self.source else {
            return Err(IamError::new(
                ErrorKind::InvalidInput,
                "NoMfaDevice",
                "this mount has no MFA device: mount with --mfa-serial ARN or a profile \
                 with mfa_serial",
            ));
        };
        let _one = self.renewing.lock().await;
        self.start_locked(mfa, code).await.map(|_| ())
    }

    async fn start_locked(&self, mfa: &MfaSource, code: &MfaCode) -> Result<Credentials> {
        let result = Self::call_sts(mfa, code)
            // The SDK's own trace logs of this call carry the code: none.
            .with_subscriber(tracing::subscriber::NoSubscriber::default())
            .await;
        let mut state = self.state.lock();
        match result {
            Ok(c) => {
                state.credentials = Some(c.clone());
                state.started = Some(SystemTime::now());
                state.refused = None;
                state.failed = None;
                state.command_failed = None;
                state.sessions += 1;
                tracing::info!(
                    serial = %mfa.plan.serial,
                    call = call_name(&mfa.plan.kind),
                    expires = %c.expiry().map(timestamp).unwrap_or_default(),
                    "MFA session started"
                );
                Ok(c)
            }
            Err(e) => {
                tracing::warn!(serial = %mfa.plan.serial, "MFA session refused: {e}");
                state.failed = Some((SystemTime::now(), e.to_string()));
                Err(e)
            }
        }
    }

    async fn call_sts(mfa: &MfaSource, code: &MfaCode) -> Result<Credentials> {
        let plan = &mfa.plan;
        let c = match &plan.kind {
            SessionKind::User { duration_seconds } => mfa
                .sts
                .get_session_token()
                .serial_number(&plan.serial)
                .token_code(code.as_str())
                .duration_seconds(*duration_seconds)
                .send()
                .await
                .map_err(sdk_error)?
                .credentials
                .ok_or_else(no_credentials)?,
            SessionKind::Role {
                role_arn,
                session_name,
                duration_seconds,
                external_id,
            } => mfa
                .sts
                .assume_role()
                .role_arn(role_arn)
                .role_session_name(session_name)
                .serial_number(&plan.serial)
                .token_code(code.as_str())
                .set_duration_seconds(*duration_seconds)
                .set_external_id(external_id.clone())
                .send()
                .await
                .map_err(sdk_error)?
                .credentials
                .ok_or_else(no_credentials)?,
        };
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "iamfs-mfa",
        ))
    }

    /// AWS refused the credentials (ExpiredToken, InvalidClientTokenId...):
    /// they are dropped, and the next call asks again (the chain) or needs
    /// a new code (MFA).
    pub fn refused(&self, code: &str) {
        let mut state = self.state.lock();
        if state.refused.is_none() && state.credentials.is_some() {
            tracing::warn!(code, "AWS refused the daemon's credentials");
            state.refused = Some((SystemTime::now(), code.to_string()));
        }
        if matches!(self.source, Source::Chain(_)) {
            state.credentials = None;
        }
    }

    /// What to do about the chain's credentials.
    fn chain_fix(&self) -> String {
        match (&self.origin.profile, self.origin.sso) {
            (Some(p), true) => format!(
                "the SSO session has expired or was signed out: run `aws sso login --profile {p}`; \
                 iamfs uses the new token at its next call, no remount needed"
            ),
            (Some(p), false) => format!(
                "renew the credentials of profile {p} (for a role_arn profile, those of its \
                 source_profile); iamfs asks for credentials again at its next call"
            ),
            (None, _) => "the credentials iamfs was started with (environment variables, \
                          instance or container role) were refused: an expired session token \
                          needs a remount with new ones"
                .to_string(),
        }
    }

    /// How to start a new MFA session, with when the last one ended.
    pub fn renewal_message(&self) -> String {
        let Some(plan) = self.plan() else {
            return self.chain_fix();
        };
        let state = self.state.lock();
        let now = SystemTime::now();
        let what = match (&state.refused, state.expires()) {
            (Some((at, code)), _) => format!(
                "AWS refused the MFA session for {} at {} ({code})",
                plan.serial,
                timestamp(*at)
            ),
            (None, Some(at)) if at <= now + EXPIRY_MARGIN => format!(
                "the MFA session for {} expired at {}",
                plan.serial,
                timestamp(at)
            ),
            (None, Some(at)) => format!(
                "the MFA session for {} expires at {}",
                plan.serial,
                timestamp(at)
            ),
            (None, None) => format!("no MFA session for {} yet", plan.serial),
        };
        let mut message = format!(
            "{what}; start a new one with a code from the device: echo CODE > {}/.iamfs/mfa",
            self.mount
        );
        if !self.has_command() {
            message.push_str(" (or mount with --mfa-command CMD to renew by itself)");
        }
        if let Some((at, why)) = &state.failed {
            message.push_str(&format!("; last attempt at {}: {why}", timestamp(*at)));
        }
        if plan.base != Base::Chain || self.origin.sso {
            // The base credentials themselves may need renewing first.
            if self.origin.sso {
                if let Some(p) = &self.origin.profile {
                    message.push_str(&format!(
                        "; if the SSO session expired, run `aws sso login --profile {p}` first"
                    ));
                }
            }
        }
        message
    }

    /// For `.iamfs/status`: the session's state and expiry; never a secret.
    pub fn status(&self) -> serde_json::Value {
        let state = self.state.lock();
        let now = SystemTime::now();
        let expires = state.expires().filter(|_| !state.no_expiry);
        let state_name = if state.refused.is_some() {
            "refused"
        } else {
            match expires {
                Some(at) if at <= now + EXPIRY_MARGIN => "expired",
                Some(_) => "active",
                None if state.credentials.is_some() => "active",
                None => "none",
            }
        };
        let mut value = json!({
            "state": state_name,
            "expires": expires.map(timestamp),
            "refused_at": state.refused.as_ref().map(|(at, _)| timestamp(*at)),
            "last_failure": state.failed.as_ref().map(|(at, why)| format!("{}: {why}", timestamp(*at))),
        });
        if let Some(plan) = self.plan() {
            let (call, role) = match &plan.kind {
                SessionKind::User { .. } => ("GetSessionToken", None),
                SessionKind::Role { role_arn, .. } => ("AssumeRole", Some(role_arn.clone())),
            };
            value["mfa_serial"] = json!(plan.serial);
            value["call"] = json!(call);
            value["role_arn"] = json!(role);
            value["started"] = json!(state.started.map(timestamp));
            value["sessions"] = json!(state.sessions);
            value["mfa_command"] = json!(self.has_command());
        }
        drop(state);
        if state_name != "active" {
            value["renew"] = json!(self.renewal_message());
        }
        value
    }
}

fn call_name(kind: &SessionKind) -> &'static str {
    match kind {
        SessionKind::User { .. } => "GetSessionToken",
        SessionKind::Role { .. } => "AssumeRole",
    }
}

fn no_credentials() -> IamError {
    IamError::new(
        ErrorKind::Other,
        "NoCredentials",
        "STS answered without credentials",
    )
}

impl ProvideCredentials for DaemonCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.get())
    }
}

/// A provider for the SDK that shares the daemon's credentials.
#[derive(Debug, Clone)]
pub struct Shared(pub Arc<DaemonCredentials>);

impl ProvideCredentials for Shared {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.0.get())
    }
}

// ---- what the backend's errors say ---------------------------------------------

/// Why an AssumeRole from a role session made with MFA may be refused.
pub const CHAINED_MFA_NOTE: &str = "; note: iamfs runs on a role session assumed with MFA, and \
     AWS does not carry MFA context into role chaining (credentials from AssumeRole do not \
     include MFA information), so a role whose trust policy requires \
     aws:MultiFactorAuthPresent refuses it; mount with a user profile with mfa_serial \
     (GetSessionToken, whose credentials do carry MFA) to read such roles' credentials";

/// The backend's hook (see iam/layer.rs): an error about the daemon's own
/// credentials says how to renew them, and a refusal by AWS drops them.
pub struct CredentialsHook(pub Arc<DaemonCredentials>);

impl Hook for CredentialsHook {
    fn around<'a, T: Send + 'a>(
        &'a self,
        call: Call,
        _kind: Option<Kind>,
        op: BoxFuture<'a, Result<T>>,
    ) -> BoxFuture<'a, Result<T>> {
        Box::pin(async move {
            match op.await {
                // roles/X/credentials from a role session made with MFA: AWS
                // does not carry the MFA context into role chaining.
                Err(mut e)
                    if call == Call::AssumeRole
                        && e.kind == ErrorKind::AccessDenied
                        && matches!(
                            self.0.plan().map(|p| &p.kind),
                            Some(SessionKind::Role { .. })
                        ) =>
                {
                    e.message.push_str(CHAINED_MFA_NOTE);
                    Err(e)
                }
                Err(mut e) if e.kind == ErrorKind::CredentialsExpired => {
                    // The provider's own failure already says what to do.
                    if e.code != "CredentialsUnavailable" {
                        self.0.refused(&e.code);
                        let fix = self.0.renewal_message();
                        e.message = format!("{}; {fix}", e.message);
                    }
                    Err(e)
                }
                other => other,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_never_shown() {
        let code = MfaCode::parse(b"123456\n").unwrap();
        assert_eq!(code.as_str(), "123456");
        assert!(!format!("{code:?}").contains("123456"));
        assert_eq!(MfaCode::parse(b"  654321 ").unwrap().as_str(), "654321");
        for bad in [&b""[..], b"12345", b"1234567", b"12a456", b"123 456"] {
            assert_eq!(
                MfaCode::parse(bad).unwrap_err().kind,
                ErrorKind::InvalidInput
            );
        }
    }

    #[test]
    fn command_output_gives_the_code() {
        assert_eq!(
            run_command("echo touch your key >&2; printf 'x\\n042042\\n\\n'")
                .unwrap()
                .as_str(),
            "042042"
        );
        let err = run_command("echo nope >&2; echo 123456; exit 3").unwrap_err();
        assert!(err.contains("nope") && !err.contains("123456"), "{err}");
        assert!(run_command("echo not-a-code").is_err());
    }

    fn session(command: Option<&str>) -> Arc<DaemonCredentials> {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        DaemonCredentials::mfa(
            MfaPlan {
                serial: "arn:aws:iam::123456789012:mfa/me".into(),
                kind: SessionKind::User {
                    duration_seconds: 43200,
                },
                base: Base::Chain,
            },
            &config,
            command.map(str::to_string),
            Origin::default(),
            "/home/me/iam".into(),
        )
    }

    #[tokio::test]
    async fn without_a_session_every_call_says_how_to_renew() {
        let s = session(None);
        let err = s.provide_credentials().await.unwrap_err();
        let text = crate::iam::sdk::error_chain(&err);
        assert!(
            text.contains("no MFA session for arn:aws:iam::123456789012:mfa/me yet")
                && text.contains("echo CODE > /home/me/iam/.iamfs/mfa")
                && text.contains("--mfa-command"),
            "{text}"
        );
        assert_eq!(s.status()["state"], "none");
    }

    #[tokio::test]
    async fn an_expired_or_refused_session_says_when() {
        let s = session(None);
        {
            let mut state = s.state.lock();
            state.credentials = Some(Credentials::new(
                "ASIAEXAMPLE",
                "secret-key",
                Some("session-token".into()),
                Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
                "test",
            ));
        }
        let message = s.renewal_message();
        assert!(
            message.contains("expired at 2023-11-14T22:13:20Z"),
            "{message}"
        );
        let status = s.status();
        assert_eq!(status["state"], "expired");
        assert_eq!(status["expires"], "2023-11-14T22:13:20Z");
        let shown = status.to_string();
        assert!(!shown.contains("secret-key") && !shown.contains("session-token"));

        s.state.lock().credentials = Some(Credentials::new(
            "ASIAEXAMPLE",
            "secret-key",
            Some("session-token".into()),
            Some(SystemTime::now() + Duration::from_secs(3600)),
            "test",
        ));
        assert!(s.provide_credentials().await.is_ok());
        s.refused("ExpiredToken");
        let err = s.provide_credentials().await.unwrap_err();
        let text = crate::iam::sdk::error_chain(&err);
        assert!(
            text.contains("AWS refused the MFA session") && text.contains("ExpiredToken"),
            "{text}"
        );
        assert_eq!(s.status()["state"], "refused");
    }

    #[tokio::test]
    async fn the_chain_is_asked_again_after_a_refusal() {
        let chain = SharedCredentialsProvider::new(Credentials::new(
            "AKIAEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ));
        let creds = DaemonCredentials::chain(
            chain,
            Origin {
                profile: Some("work".into()),
                sso: true,
            },
            "/m".into(),
        );
        assert!(creds.provide_credentials().await.is_ok());
        creds.refused("ExpiredToken");
        assert!(creds
            .renewal_message()
            .contains("aws sso login --profile work"));
        assert!(creds.provide_credentials().await.is_ok());
        assert_eq!(creds.status()["state"], "active");
    }
}
