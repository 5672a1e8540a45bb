//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use fuser::MountOption;

/// `iamfs [OPTIONS] [SOURCE] <MOUNTPOINT>` mounts; `iamfs status` reports.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "iamfs",
    version,
    about = "Mount an AWS account's IAM as a filesystem",
    long_about = "Mounts IAM users, groups, roles and policies as folders and JSON files.\n\
                  Credentials come from the standard AWS chain (environment, --profile, SSO, \
                  instance metadata). Returns once the mount answers, unless --foreground.\n\n\
                  mount(8) and fstab run it as `iamfs SOURCE MOUNTPOINT -o OPTIONS` (through \
                  mount.fuse3): SOURCE is the profile (`-` or `default` for the default chain), \
                  and every option is also an -o key (see MOUNT OPTIONS).",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    allow_missing_positional = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub mount: Option<Options>,

    /// Print a completion script for this shell and exit
    /// (e.g. `iamfs --completions bash > /etc/bash_completion.d/iamfs`).
    #[arg(long, value_name = "SHELL")]
    pub completions: Option<clap_complete::Shell>,

    /// Print the man page (roff) and exit: `iamfs --man > iamfs.1`.
    #[arg(long, hide = true)]
    pub man: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Summarise a mount's .iamfs/status, or list the iamfs mounts. A
    /// mountpoint named `status` is mounted as `iamfs ./status`.
    Status(StatusArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// An iamfs mountpoint; without it, every iamfs mount is listed.
    pub mountpoint: Option<PathBuf>,

    /// Print the raw .iamfs/status (JSON) instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct Options {
    /// What mount(8) passes first: the profile, or `-`/`default` for the
    /// default credential chain (`mount -t fuse.iamfs admin ~/iam`).
    #[arg(value_name = "SOURCE")]
    pub source: Option<String>,

    /// Where to mount (an existing, empty directory).
    #[arg(required_unless_present_any = ["completions", "man"])]
    pub mountpoint: Option<PathBuf>,

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

    /// Mount options, comma-separated: iamfs's own keys (profile=,
    /// region=, endpoint_url=, cache_ttl=, cache_entries=,
    /// session_duration=, read_only or ro, allow_other, mfa_serial=,
    /// mfa_command=, mfa_duration=, busy_poll=, log_file=) and FUSE's (rw,
    /// dev, nodev, suid, nosuid, exec, noexec, atime, noatime, sync, async,
    /// dirsync, allow_root, auto_unmount, fsname=, max_read=); others are
    /// refused.
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

    /// Append the log to this file (without it: standard error in the
    /// foreground, nothing as a daemon; .iamfs/errors keeps the last errors).
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

impl Options {
    /// The mountpoint (clap requires it for the mount form).
    pub fn mountpoint(&self) -> &std::path::Path {
        self.mountpoint
            .as_deref()
            .expect("clap requires the mountpoint")
    }
}

/// The arguments as clap should see them. mount.fuse3 runs
/// `iamfs SOURCE MOUNTPOINT -o OPTIONS`; a profile named `status` as SOURCE
/// would read as the `status` subcommand, which takes no `-o`: such a line
/// becomes `iamfs - MOUNTPOINT -o OPTIONS -o profile=status,fsname=status`.
pub fn helper_args(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mount_form = args.len() >= 3
        && args[1] == "status"
        && args
            .iter()
            .skip(2)
            .any(|a| a == "-o" || a.to_string_lossy().starts_with("-o"));
    if !mount_form {
        return args;
    }
    let mut out = args;
    out[1] = "-".into();
    out.push("-o".into());
    out.push("profile=status,fsname=status".into());
    out
}
