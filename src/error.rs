//! Errors from IAM and the one table that maps them to errno.

/// What went wrong, as far as a filesystem caller cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NoSuchEntity,
    EntityAlreadyExists,
    DeleteConflict,
    InvalidInput,
    LimitExceeded,
    AccessDenied,
    /// The daemon's own credentials were refused or cannot be had: expired
    /// or revoked keys, an expired SSO token, an MFA session that needs a
    /// new code. The message says how to renew them.
    CredentialsExpired,
    Unmodifiable,
    ReadOnly,
    Throttled,
    Unreachable,
    NotEmpty,
    Busy,
    NotPermitted,
    IsDirectory,
    NotDirectory,
    /// Past the size any IAM document can have, or a scratch file's cap.
    TooLarge,
    /// The scratch files' memory is used up.
    NoSpace,
    NameTooLong,
    /// An open file the kernel named is not open here.
    BadHandle,
    /// Asked with what is cached only (`cache::cached_only`), and not
    /// cached: never reaches the kernel.
    NotCached,
    Other,
}

/// An error with IAM's own code and message, and the entity it concerns.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct IamError {
    pub kind: ErrorKind,
    pub code: String,
    pub message: String,
}

pub type Result<T, E = IamError> = std::result::Result<T, E>;

impl IamError {
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn no_such_entity(what: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::NoSuchEntity,
            "NoSuchEntity",
            format!("{what} cannot be found"),
        )
    }

    pub fn not_cached() -> Self {
        Self::new(
            ErrorKind::NotCached,
            "NotCached",
            "not cached, and asked with what is cached only",
        )
    }

    pub fn read_only(what: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::ReadOnly,
            "ReadOnly",
            format!("{what} is read-only"),
        )
    }

    /// Classifies an IAM/STS error code as the AWS APIs spell it.
    pub fn from_code(code: &str, message: impl Into<String>) -> Self {
        let kind = match code {
            "NoSuchEntity" | "NoSuchEntityException" => ErrorKind::NoSuchEntity,
            "EntityAlreadyExists" | "EntityAlreadyExistsException" => {
                ErrorKind::EntityAlreadyExists
            }
            "DeleteConflict" | "DeleteConflictException" => ErrorKind::DeleteConflict,
            "MalformedPolicyDocument"
            | "MalformedPolicyDocumentException"
            | "InvalidInput"
            | "InvalidInputException"
            | "ValidationError"
            | "ValidationException"
            | "InvalidParameterValue" => ErrorKind::InvalidInput,
            "LimitExceeded" | "LimitExceededException" | "PackedPolicyTooLarge" => {
                ErrorKind::LimitExceeded
            }
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "SignatureDoesNotMatch" => ErrorKind::AccessDenied,
            "InvalidClientTokenId"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "TokenRefreshRequired"
            | "UnrecognizedClientException" => ErrorKind::CredentialsExpired,
            "UnmodifiableEntity" | "UnmodifiableEntityException" => ErrorKind::Unmodifiable,
            "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => ErrorKind::Throttled,
            _ => ErrorKind::Other,
        };
        Self::new(kind, code, message)
    }
}

/// The errno table: every error reply in the filesystem goes through here.
pub fn errno(kind: ErrorKind, is_file: bool) -> i32 {
    match kind {
        ErrorKind::NoSuchEntity => libc::ENOENT,
        ErrorKind::EntityAlreadyExists => libc::EEXIST,
        ErrorKind::DeleteConflict if is_file => libc::EBUSY,
        ErrorKind::DeleteConflict | ErrorKind::NotEmpty => libc::ENOTEMPTY,
        ErrorKind::Busy => libc::EBUSY,
        ErrorKind::InvalidInput => libc::EINVAL,
        ErrorKind::LimitExceeded => libc::ENOSPC,
        ErrorKind::AccessDenied | ErrorKind::CredentialsExpired => libc::EACCES,
        ErrorKind::Unmodifiable | ErrorKind::NotPermitted => libc::EPERM,
        ErrorKind::ReadOnly => libc::EROFS,
        ErrorKind::Throttled => libc::EAGAIN,
        ErrorKind::IsDirectory => libc::EISDIR,
        ErrorKind::NotDirectory => libc::ENOTDIR,
        ErrorKind::TooLarge => libc::EFBIG,
        ErrorKind::NoSpace => libc::ENOSPC,
        ErrorKind::NameTooLong => libc::ENAMETOOLONG,
        ErrorKind::BadHandle => libc::EBADF,
        ErrorKind::NotCached => libc::EAGAIN,
        ErrorKind::Unreachable | ErrorKind::Other => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_table() {
        let cases = [
            ("NoSuchEntity", libc::ENOENT),
            ("EntityAlreadyExists", libc::EEXIST),
            ("DeleteConflict", libc::ENOTEMPTY),
            ("MalformedPolicyDocument", libc::EINVAL),
            ("InvalidInput", libc::EINVAL),
            ("ValidationError", libc::EINVAL),
            ("LimitExceeded", libc::ENOSPC),
            ("AccessDenied", libc::EACCES),
            ("ExpiredToken", libc::EACCES),
            ("InvalidClientTokenId", libc::EACCES),
            ("UnmodifiableEntity", libc::EPERM),
            ("Throttling", libc::EAGAIN),
            ("SomethingElse", libc::EIO),
        ];
        for (code, want) in cases {
            assert_eq!(
                errno(IamError::from_code(code, "m").kind, false),
                want,
                "{code}"
            );
        }
        assert_eq!(errno(ErrorKind::DeleteConflict, true), libc::EBUSY);
    }
}
