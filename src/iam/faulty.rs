//! A failure-injecting `Iam` for tests: wraps any backend and makes chosen
//! calls fail with a chosen IAM error, the next N times or with a
//! probability drawn from a seeded generator, or answer late.
//!
//! ```ignore
//! let iam = Arc::new(MemoryIam::default());
//! let faulty = Faulty::new(iam.clone());
//! faulty.add(Rule::fail(Call::CreatePolicyVersion, Fault::Throttling).times(1));
//! faulty.add(Rule::delay(Call::GetEntity, Duration::from_millis(20)));
//! ```
//!
//! A failure is decided before the call reaches the wrapped backend, so by
//! default a failed call has no effect there (IAM refused it). A rule made
//! `after_effect()` lets the call through and then fails it anyway: the
//! change happened but the answer was lost (a timeout after IAM applied it).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;

pub use super::layer::Call;
use super::layer::{Hook, Layer};
use super::{Iam, Kind};
use crate::error::{ErrorKind, IamError, Result};

impl Call {
    /// The calls that change IAM.
    pub const WRITES: [Call; 16] = [
        Call::CreateEntity,
        Call::DeleteEntity,
        Call::RenameEntity,
        Call::PutInlinePolicy,
        Call::DeleteInlinePolicy,
        Call::AttachPolicy,
        Call::DetachPolicy,
        Call::AddUserToGroup,
        Call::RemoveUserFromGroup,
        Call::UpdateTrustPolicy,
        Call::TagEntity,
        Call::UntagEntity,
        Call::CreatePolicy,
        Call::CreatePolicyVersion,
        Call::DeletePolicyVersion,
        Call::DeletePolicy,
    ];

    pub fn is_write(self) -> bool {
        Self::WRITES.contains(&self)
    }
}

/// An error IAM (or the way to it) can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    AccessDenied,
    Throttling,
    /// IAM's own 500 (ServiceFailure): an error iamfs knows no errno for.
    ServiceFailure,
    /// The endpoint did not answer (connect failure or timeout).
    Unreachable,
    NoSuchEntity,
    LimitExceeded,
    EntityAlreadyExists,
    DeleteConflict,
    MalformedPolicyDocument,
}

impl Fault {
    pub const ALL: [Fault; 9] = [
        Fault::AccessDenied,
        Fault::Throttling,
        Fault::ServiceFailure,
        Fault::Unreachable,
        Fault::NoSuchEntity,
        Fault::LimitExceeded,
        Fault::EntityAlreadyExists,
        Fault::DeleteConflict,
        Fault::MalformedPolicyDocument,
    ];

    /// The error a call answers with, as the SDK backend would build it.
    pub fn error(self, call: Call) -> IamError {
        let message = format!("injected {self:?} on {call:?}");
        match self {
            Fault::Unreachable => IamError::new(ErrorKind::Unreachable, "DispatchFailure", message),
            Fault::AccessDenied => IamError::from_code("AccessDenied", message),
            Fault::Throttling => IamError::from_code("Throttling", message),
            Fault::ServiceFailure => IamError::from_code("ServiceFailure", message),
            Fault::NoSuchEntity => IamError::from_code("NoSuchEntity", message),
            Fault::LimitExceeded => IamError::from_code("LimitExceeded", message),
            Fault::EntityAlreadyExists => IamError::from_code("EntityAlreadyExists", message),
            Fault::DeleteConflict => IamError::from_code("DeleteConflict", message),
            Fault::MalformedPolicyDocument => {
                IamError::from_code("MalformedPolicyDocument", message)
            }
        }
    }

    pub fn kind(self) -> ErrorKind {
        self.error(Call::GetEntity).kind
    }
}

/// What happens to the calls a rule matches.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The calls it applies to; empty: every call.
    calls: Vec<Call>,
    fault: Option<Fault>,
    /// Fail only this many more times (None: every time it fires).
    remaining: Option<u32>,
    /// Chance that a matching call fails, drawn from the wrapper's seeded generator.
    probability: f64,
    latency: Duration,
    /// The latency comes after the backend answered, not before it is asked.
    late: bool,
    after_effect: bool,
    /// Matching calls still to let through before the rule applies.
    skip: u32,
}

impl Rule {
    /// Every matching call fails with `fault` (narrow it with `times` or
    /// `with_probability`).
    pub fn fail(call: Call, fault: Fault) -> Self {
        Self::fail_any(&[call], fault)
    }

    /// Calls of any of `calls` fail (an empty slice matches every call).
    pub fn fail_any(calls: &[Call], fault: Fault) -> Self {
        Self {
            calls: calls.to_vec(),
            fault: Some(fault),
            remaining: None,
            probability: 1.0,
            latency: Duration::ZERO,
            late: false,
            after_effect: false,
            skip: 0,
        }
    }

    /// Matching calls answer `latency` late (and do not fail).
    pub fn delay(call: Call, latency: Duration) -> Self {
        Self {
            calls: vec![call],
            fault: None,
            remaining: None,
            probability: 1.0,
            latency,
            late: false,
            after_effect: false,
            skip: 0,
        }
    }

    /// Matching calls reach the backend at once and their answer comes
    /// `latency` later: what they read is older than the answer.
    pub fn answer_late(call: Call, latency: Duration) -> Self {
        Self {
            late: true,
            ..Self::delay(call, latency)
        }
    }

    /// Let the next `n` matching calls through before the rule applies
    /// (fail the third IAM call of a save: `fail_any(&[], f).after(2).times(1)`).
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Fail only the next `n` matching calls.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Fail a matching call with probability `p` (0.0..=1.0).
    pub fn with_probability(mut self, p: f64) -> Self {
        self.probability = p.clamp(0.0, 1.0);
        self
    }

    /// Also delay the calls this rule matches.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Let the call reach the backend, then fail it: the change is made but
    /// the caller hears an error.
    pub fn after_effect(mut self) -> Self {
        self.after_effect = true;
        self
    }

    fn matches(&self, call: Call) -> bool {
        self.calls.is_empty() || self.calls.contains(&call)
    }
}

/// One failure the wrapper injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injected {
    pub call: Call,
    pub fault: Fault,
    /// The call reached the backend before it failed.
    pub after_effect: bool,
}

/// SplitMix64: a small seeded generator, so a failing run repeats exactly.
fn next_random(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

struct Plan {
    latency: Duration,
    late: Duration,
    fault: Option<(Fault, bool)>,
}

/// The rules, and what they did, of a `Faulty` backend.
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    rng: Mutex<u64>,
    injected: Mutex<Vec<Injected>>,
}

impl Faults {
    /// Decides, once per call, how long it waits and whether it fails. The
    /// first failing rule wins; latencies of all matching rules add up.
    fn plan(&self, call: Call) -> Plan {
        let mut rules = self.rules.lock();
        let mut latency = Duration::ZERO;
        let mut late = Duration::ZERO;
        let mut fault = None;
        for rule in rules.iter_mut().filter(|r| r.matches(call)) {
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            match rule.late {
                true => late += rule.latency,
                false => latency += rule.latency,
            }
            let Some(f) = rule.fault else { continue };
            if fault.is_some() || rule.remaining == Some(0) {
                continue;
            }
            let fires = rule.probability >= 1.0
                || (rule.probability > 0.0 && next_random(&mut self.rng.lock()) < rule.probability);
            if fires {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                fault = Some((f, rule.after_effect));
            }
        }
        rules.retain(|r| r.remaining != Some(0));
        Plan {
            latency,
            late,
            fault,
        }
    }
}

impl Hook for Faults {
    fn around<'a, T: Send + 'a>(
        &'a self,
        call: Call,
        _kind: Option<Kind>,
        op: BoxFuture<'a, Result<T>>,
    ) -> BoxFuture<'a, Result<T>> {
        Box::pin(async move {
            let plan = self.plan(call);
            if !plan.latency.is_zero() {
                tokio::time::sleep(plan.latency).await;
            }
            let Some((fault, after_effect)) = plan.fault else {
                let answer = op.await;
                if !plan.late.is_zero() {
                    tokio::time::sleep(plan.late).await;
                }
                return answer;
            };
            if after_effect {
                let _ = op.await;
            }
            // A future not polled never reaches the backend.
            self.injected.lock().push(Injected {
                call,
                fault,
                after_effect,
            });
            Err(fault.error(call))
        })
    }
}

/// Wraps a backend; rules decide which calls fail or wait.
pub type Faulty<I> = Layer<I, Faults>;

impl<I: Iam> Layer<I, Faults> {
    pub fn new(inner: Arc<I>) -> Self {
        Self::with_seed(inner, 0)
    }

    pub fn with_seed(inner: Arc<I>, seed: u64) -> Self {
        Self::wrap(
            inner,
            Faults {
                rules: Mutex::default(),
                rng: Mutex::new(seed),
                injected: Mutex::default(),
            },
        )
    }

    pub fn add(&self, rule: Rule) -> &Self {
        self.hook.rules.lock().push(rule);
        self
    }

    /// Drops every rule: calls go through untouched again.
    pub fn clear(&self) {
        self.hook.rules.lock().clear();
    }

    /// Takes the rules out (as they stand: counts left, calls skipped), to
    /// make calls that must not be touched; `add` them back after.
    pub fn take_rules(&self) -> Vec<Rule> {
        std::mem::take(&mut *self.hook.rules.lock())
    }

    /// Every failure injected so far, oldest first.
    pub fn injected(&self) -> Vec<Injected> {
        self.hook.injected.lock().clone()
    }

    /// The failures injected since the last `take_injected`.
    pub fn take_injected(&self) -> Vec<Injected> {
        std::mem::take(&mut *self.hook.injected.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::errno;
    use crate::iam::memory::MemoryIam;
    use crate::iam::{Counted, Operation, PolicyScope};

    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

    fn backend() -> Arc<MemoryIam> {
        let iam = MemoryIam::default();
        iam.add_entity(Kind::Role, "r")
            .add_entity(Kind::User, "u")
            .add_policy("p", "/", DOC);
        Arc::new(iam)
    }

    #[tokio::test]
    async fn without_rules_every_call_goes_through() {
        let iam = Arc::new(Counted::new(backend()));
        let f = Faulty::new(iam.clone());
        f.put_inline_policy(Kind::Role, "r", "x", DOC)
            .await
            .unwrap();
        assert_eq!(f.get_entity(Kind::Role, "r").await.unwrap().name, "r");
        assert_eq!(iam.counts().get(Operation::PutRolePolicy), 1);
        assert_eq!(iam.counts().get(Operation::GetRole), 1);
        assert!(f.injected().is_empty());
    }

    #[tokio::test]
    async fn the_next_n_calls_fail_without_reaching_the_backend() {
        let iam = Arc::new(Counted::new(backend()));
        let f = Faulty::new(iam.clone());
        f.add(Rule::fail(Call::PutInlinePolicy, Fault::Throttling).times(2));
        for _ in 0..2 {
            let err = f
                .put_inline_policy(Kind::Role, "r", "x", DOC)
                .await
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::Throttled);
            assert_eq!(errno(err.kind, true), libc::EAGAIN);
        }
        assert!(
            iam.get_inline_policy(Kind::Role, "r", "x").await.is_err(),
            "no effect"
        );
        // Other calls are untouched, and the third put goes through.
        f.get_entity(Kind::User, "u").await.unwrap();
        f.put_inline_policy(Kind::Role, "r", "x", DOC)
            .await
            .unwrap();
        assert_eq!(iam.counts().get(Operation::PutRolePolicy), 1);
        assert_eq!(
            f.injected(),
            [Injected {
                call: Call::PutInlinePolicy,
                fault: Fault::Throttling,
                after_effect: false
            }; 2]
        );
    }

    #[tokio::test]
    async fn after_lets_calls_through_first_and_rules_can_be_set_aside() {
        let f = Faulty::new(backend());
        f.add(Rule::fail_any(&[], Fault::ServiceFailure).after(2).times(1));
        f.get_entity(Kind::Role, "r").await.unwrap();
        let rules = f.take_rules();
        for _ in 0..5 {
            f.get_entity(Kind::Role, "r").await.unwrap();
        }
        for rule in rules {
            f.add(rule);
        }
        f.list_policies(PolicyScope::Local, None).await.unwrap();
        let err = f.get_entity(Kind::User, "u").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Other);
        assert_eq!(f.injected()[0].call, Call::GetEntity);
        f.get_entity(Kind::User, "u").await.unwrap();
    }

    #[tokio::test]
    async fn each_fault_maps_to_its_error_kind() {
        let want = [
            (Fault::AccessDenied, ErrorKind::AccessDenied),
            (Fault::Throttling, ErrorKind::Throttled),
            (Fault::ServiceFailure, ErrorKind::Other),
            (Fault::Unreachable, ErrorKind::Unreachable),
            (Fault::NoSuchEntity, ErrorKind::NoSuchEntity),
            (Fault::LimitExceeded, ErrorKind::LimitExceeded),
            (Fault::EntityAlreadyExists, ErrorKind::EntityAlreadyExists),
            (Fault::DeleteConflict, ErrorKind::DeleteConflict),
            (Fault::MalformedPolicyDocument, ErrorKind::InvalidInput),
        ];
        assert_eq!(want.len(), Fault::ALL.len());
        let f = Faulty::new(backend());
        for (fault, kind) in want {
            assert_eq!(fault.kind(), kind);
            f.add(Rule::fail(Call::DeleteEntity, fault).times(1));
            let err = f.delete_entity(Kind::User, "u").await.unwrap_err();
            assert_eq!(err.kind, kind, "{fault:?}");
        }
        f.delete_entity(Kind::User, "u").await.unwrap();
    }

    #[tokio::test]
    async fn after_effect_failures_change_the_backend() {
        let iam = backend();
        let f = Faulty::new(iam.clone());
        f.add(
            Rule::fail(Call::CreateEntity, Fault::Unreachable)
                .times(1)
                .after_effect(),
        );
        let err = f.create_entity(Kind::User, "new", None).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unreachable);
        assert!(iam.get_entity(Kind::User, "new").await.is_ok());
        assert!(f.take_injected()[0].after_effect);
        assert!(f.injected().is_empty());
    }

    #[tokio::test]
    async fn probabilistic_failures_repeat_with_the_seed() {
        async fn pattern(seed: u64) -> Vec<bool> {
            let f = Faulty::with_seed(backend(), seed);
            f.add(Rule::fail(Call::GetEntity, Fault::ServiceFailure).with_probability(0.5));
            let mut out = Vec::new();
            for _ in 0..64 {
                out.push(f.get_entity(Kind::Role, "r").await.is_err());
            }
            out
        }
        let a = pattern(7).await;
        assert_eq!(a, pattern(7).await, "same seed, same failures");
        assert_ne!(a, pattern(8).await);
        let failed = a.iter().filter(|x| **x).count();
        assert!((16..=48).contains(&failed), "{failed} of 64");
        let f = Faulty::new(backend());
        f.add(Rule::fail(Call::GetEntity, Fault::AccessDenied).with_probability(0.0));
        assert!(f.get_entity(Kind::Role, "r").await.is_ok());
    }

    #[tokio::test]
    async fn latency_delays_only_the_chosen_calls() {
        let f = Faulty::new(backend());
        f.add(Rule::delay(Call::GetEntity, Duration::from_millis(40)));
        let t = std::time::Instant::now();
        f.list_entities(Kind::Role, None).await.unwrap();
        assert!(t.elapsed() < Duration::from_millis(40));
        let t = std::time::Instant::now();
        f.get_entity(Kind::Role, "r").await.unwrap();
        assert!(t.elapsed() >= Duration::from_millis(40));
        f.clear();
        let t = std::time::Instant::now();
        f.get_entity(Kind::Role, "r").await.unwrap();
        assert!(t.elapsed() < Duration::from_millis(40));
    }

    #[tokio::test]
    async fn a_rule_can_match_several_calls_or_all() {
        let f = Faulty::new(backend());
        f.add(Rule::fail_any(&Call::WRITES, Fault::AccessDenied).times(1));
        f.get_entity(Kind::Role, "r").await.unwrap();
        assert!(f.tag_entity(Kind::Role, "r", &[]).await.is_err());
        f.tag_entity(Kind::Role, "r", &[]).await.unwrap();
        f.add(Rule::fail_any(&[], Fault::Unreachable));
        assert!(f.list_policies(PolicyScope::Local, None).await.is_err());
        assert!(f.caller_identity().await.is_err());
    }
}
