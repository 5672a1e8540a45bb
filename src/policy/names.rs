//! IAM's rules for the names of users, groups, roles and policies.

use super::message::{describe_char, input_error, quoted};
use crate::error::Result;

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

/// IAM's name characters, `[\w+=,.@-]` with an ASCII `\w`. STS's session names
/// use the same set, so credentials.rs takes it from here.
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// IAM name rules for new entities and policies: [\w+=,.@-]+ (\w = ASCII letters, digits, underscore),
/// lengths: user 64, group 128, role 64, policy 128. Returns InvalidInput naming the rule.
pub fn check_name(name: &str, kind: NameKind) -> Result<()> {
    let noun = kind.noun();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::policy::testing::assert_mentions;

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
}
