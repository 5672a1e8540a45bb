//! IAM's rules for the names of users, groups, roles and policies.

use super::message::{describe_char, input_error, quoted};
use crate::error::Result;
use crate::model::Kind;

/// What a name names, for IAM's length limit and the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameRule {
    noun: &'static str,
    max_len: usize,
}

impl NameRule {
    pub const POLICY: NameRule = NameRule {
        noun: "policy",
        max_len: 128,
    };

    pub const INSTANCE_PROFILE: NameRule = NameRule {
        noun: "instance profile",
        max_len: 128,
    };

    /// The rule for a user's, group's or role's name.
    pub fn entity(kind: Kind) -> NameRule {
        match kind {
            Kind::User => NameRule {
                noun: "user",
                max_len: 64,
            },
            Kind::Group => NameRule {
                noun: "group",
                max_len: 128,
            },
            Kind::Role => NameRule {
                noun: "role",
                max_len: 64,
            },
        }
    }
}

/// IAM's name characters, `[\w+=,.@-]` with an ASCII `\w`. STS's session names
/// use the same set, so credentials.rs takes it from here.
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// IAM name rules for new entities and policies: [\w+=,.@-]+ (\w = ASCII letters, digits, underscore),
/// lengths: user 64, group 128, role 64, policy 128. Returns InvalidInput naming the rule.
pub fn check_name(name: &str, rule: NameRule) -> Result<()> {
    let noun = rule.noun;
    if name.is_empty() {
        return Err(input_error(format!("a {noun} name cannot be empty")));
    }
    if let Some(c) = name.chars().find(|&c| !is_name_char(c)) {
        return Err(input_error(format!(
            "{noun} name {}: character {} is not allowed; IAM names use only ASCII letters, digits and _ + = , . @ -",
            quoted(name),
            describe_char(c)
        )));
    }
    // Only ASCII is left, so bytes are characters.
    if name.len() > rule.max_len {
        return Err(input_error(format!(
            "{noun} name {} is {} characters; IAM allows at most {} for a {noun} name",
            quoted(name),
            name.len(),
            rule.max_len
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::policy::testing::assert_mentions;

    #[test]
    fn name_lengths_by_kind() {
        for (rule, max) in [
            (NameRule::entity(Kind::User), 64),
            (NameRule::entity(Kind::Group), 128),
            (NameRule::entity(Kind::Role), 64),
            (NameRule::POLICY, 128),
        ] {
            check_name(&"a".repeat(max), rule).unwrap();
            let err = check_name(&"a".repeat(max + 1), rule).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert_mentions(
                &err.message,
                &[
                    &format!("{} characters", max + 1),
                    &format!("at most {max}"),
                    rule.noun,
                ],
            );
        }
    }

    #[test]
    fn name_characters() {
        check_name(
            "Alice_Smith+ops=1,x.y@example-2",
            NameRule::entity(Kind::User),
        )
        .unwrap();
        for bad in [
            "has space",
            "slash/name",
            "émile",
            "tab\t",
            "colon:",
            "star*",
        ] {
            let err = check_name(bad, NameRule::entity(Kind::Role)).unwrap_err();
            assert_mentions(
                &err.message,
                &["is not allowed", "ASCII letters, digits and _ + = , . @ -"],
            );
        }
        assert_mentions(
            &check_name("", NameRule::entity(Kind::Group))
                .unwrap_err()
                .message,
            &["group name cannot be empty"],
        );
    }
}
