//! The command line.

use std::path::PathBuf;

use clap::Parser;
use fuser::MountOption;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "iamfs",
    version,
    about = "Mount an AWS account's IAM as a filesystem",
    long_about = "Mounts IAM users, groups, roles and policies as folders and JSON files.\n\
                  Credentials come from the standard AWS chain (environment, --profile, SSO, \
                  instance metadata). Returns once the mount answers, unless --foreground."
)]
pub struct Options {
    /// Where to mount (an existing, empty directory).
    pub mountpoint: PathBuf,

    /// Named profile from ~/.aws/config (role_arn + source_profile profiles work).
    #[arg(long, env = "AWS_PROFILE")]
    pub profile: Option<String>,

    /// Region for the IAM/STS clients (IAM is global; STS uses it).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,

    /// Send IAM and STS calls to this endpoint (e.g. a local moto_server).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// MFA device (its ARN) for the credentials iamfs runs on, when they are
    /// not a profile with mfa_serial (e.g. environment variables): iamfs
    /// asks for a code and uses GetSessionToken with it.
    #[arg(long, value_name = "ARN")]
    pub mfa_serial: Option<String>,

    /// Command whose standard output (last line) is an MFA code; run
    /// whenever a code is needed (at mount, and when the session expires).
    #[arg(long, value_name = "CMD")]
    pub mfa_command: Option<String>,

    /// Lifetime of the GetSessionToken session of a user with MFA (IAM
    /// allows 900 to 129600, 36 h).
    #[arg(long, default_value_t = crate::session::MFA_DURATION_DEFAULT, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(
              crate::session::MFA_DURATION_MIN..=crate::session::MFA_DURATION_MAX))]
    pub mfa_duration: u64,

    /// Refuse every change with EROFS.
    #[arg(long)]
    pub read_only: bool,

    /// Seconds a cached listing or document stays fresh.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub cache_ttl: u64,

    /// Most entries the cache holds.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub cache_entries: usize,

    /// Lifetime of credentials read from roles/X/credentials.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub session_duration: u64,

    /// Let other users in to read (file modes apply; only the mounting user changes IAM or gets credentials).
    #[arg(long)]
    pub allow_other: bool,

    /// Stay attached and log to stderr.
    #[arg(long, short = 'f')]
    pub foreground: bool,

    /// FUSE mount options, comma-separated (e.g. -o noatime,allow_root).
    #[arg(short = 'o', value_name = "OPTIONS", value_delimiter = ',')]
    pub mount_options: Vec<String>,

    /// While requests keep coming, poll the FUSE device instead of sleeping
    /// on it, until none has come for this many microseconds (Linux, two
    /// CPUs or more; 0 turns it off; at most 1000000). Saves a thread wakeup
    /// per request: a warm `grep -r` runs a fifth to a third faster on an
    /// idle machine; it backs off when the CPUs are busy, and an idle mount
    /// costs no CPU.
    #[arg(long, default_value_t = 1000, value_name = "MICROSECONDS",
          value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub busy_poll: u64,

    /// Append the daemon's log to this file (in the foreground, logs go to stderr).
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
}

/// Maps a `-o` option to fuser's type; unknown ones pass through.
pub fn mount_option(s: &str) -> MountOption {
    match s {
        "auto_unmount" => MountOption::AutoUnmount,
        "default_permissions" => MountOption::DefaultPermissions,
        "dev" => MountOption::Dev,
        "nodev" => MountOption::NoDev,
        "suid" => MountOption::Suid,
        "nosuid" => MountOption::NoSuid,
        "ro" => MountOption::RO,
        "rw" => MountOption::RW,
        "exec" => MountOption::Exec,
        "noexec" => MountOption::NoExec,
        "atime" => MountOption::Atime,
        "noatime" => MountOption::NoAtime,
        "dirsync" => MountOption::DirSync,
        "sync" => MountOption::Sync,
        "async" => MountOption::Async,
        x if x.starts_with("fsname=") => MountOption::FSName(x[7..].into()),
        x if x.starts_with("subtype=") => MountOption::Subtype(x[8..].into()),
        x => MountOption::CUSTOM(x.into()),
    }
}
