//! How large a policy may be, counted as IAM counts: characters other than
//! whitespace.

use super::message::policy_error;
use super::DocumentKind;
use crate::error::Result;
use crate::iam::Kind;

const MANAGED_POLICY_LIMIT: usize = 6_144;
/// Trust policies default to 2,048 characters, but the quota can be raised to
/// 4,096; only the ceiling is refused here, so an account with a raised quota works.
const TRUST_POLICY_CEILING: usize = 4_096;
const USER_INLINE_LIMIT: usize = 2_048;
const GROUP_INLINE_LIMIT: usize = 5_120;
const ROLE_INLINE_LIMIT: usize = 10_240;

/// Non-whitespace character count, as IAM counts document size.
///
/// Unicode whitespace is left out, which is at least as much as IAM leaves out,
/// so the count is never higher than IAM's.
pub fn policy_size(doc_text: &str) -> usize {
    doc_text.chars().filter(|c| !c.is_whitespace()).count()
}

pub(super) fn check_size(text: &str, kind: DocumentKind) -> Result<()> {
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
    use crate::policy::testing::{assert_mentions, ok, refused};

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
}
