//! `-o` options: iamfs's own settings as mount(8) keys (so that
//! `mount -t fuse.iamfs`, an fstab line and fuse3's `mount.fuse3` helper,
//! which runs `iamfs SOURCE MOUNTPOINT -o OPTIONS`, can set everything the
//! command line can), FUSE's generic options, passed on to fuser, and the
//! ones mount(8) itself may add, which give way to iamfs's choices or are
//! dropped. Anything else is refused before mounting.

use fuser::{MountOption, SessionACL};

use crate::cli::Options;
use crate::platform;

/// iamfs's keys, in the order the refusal lists them.
pub const IAMFS_KEYS: &[&str] = &[
    "profile=",
    "region=",
    "endpoint_url=",
    "cache_ttl=",
    "cache_entries=",
    "session_duration=",
    "read_only",
    "allow_other",
    "mfa_serial=",
    "mfa_command=",
    "mfa_duration=",
    "busy_poll=",
    "log_file=",
];

/// FUSE's and the kernel's generic options that iamfs passes on.
pub const FUSE_KEYS: &[&str] = &[
    "ro",
    "rw",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "atime",
    "noatime",
    "relatime",
    "sync",
    "async",
    "dirsync",
    "allow_root",
    "auto_unmount",
    "default_permissions",
    "fsname=",
    "max_read=",
];

/// What mount(8) and fstab may add that concerns only mount(8) itself:
/// accepted and dropped (mount(8) usually strips them before the helper).
const MOUNT8_ONLY: &[&str] = &[
    "defaults", "auto", "noauto", "user", "users", "nouser", "owner", "group", "_netdev", "nofail",
];

/// The fuser options a mount asks for, and who may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub options: Vec<MountOption>,
    pub acl: SessionACL,
}

/// SOURCE values that mean the default credential chain.
pub fn is_default_source(source: &str) -> bool {
    matches!(source, "-" | "default")
}

/// Applies `options.mount_options` (and SOURCE) to `options`, and returns
/// what to ask of fuser. Errors are one line that names the fix.
pub fn resolve(options: &mut Options) -> Result<MountPlan, String> {
    let mut flags: Vec<MountOption> = Vec::new();
    let mut fsname: Option<String> = None;
    let mut allow_root = false;
    let mut auto_unmount = false;
    let mut profile_key: Option<String> = None;
    let mut extra: Vec<MountOption> = Vec::new();
    for raw in options.mount_options.clone() {
        let opt = raw.trim();
        if opt.is_empty() {
            continue;
        }
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let need = |v: Option<&str>| -> Result<String, String> {
            match v {
                Some(v) if !v.is_empty() => Ok(v.to_string()),
                _ => Err(format!("mount option `{key}` needs a value: `{key}=VALUE`")),
            }
        };
        let number = |v: Option<&str>, lo: u64, hi: u64| -> Result<u64, String> {
            let text = need(v)?;
            match text.parse::<u64>() {
                Ok(n) if (lo..=hi).contains(&n) => Ok(n),
                _ => Err(format!(
                    "mount option `{key}={text}`: give a whole number from {lo} to {hi}"
                )),
            }
        };
        let no_value = |v: Option<&str>| -> Result<(), String> {
            match v {
                None => Ok(()),
                Some(_) => Err(format!(
                    "mount option `{key}` takes no value: write `{key}`"
                )),
            }
        };
        match key {
            "profile" => profile_key = Some(need(value)?),
            "region" => options.region = Some(need(value)?),
            "endpoint_url" => options.endpoint_url = Some(need(value)?),
            "cache_ttl" => options.cache_ttl = number(value, 0, u64::MAX)?,
            "cache_entries" => {
                options.cache_entries = number(value, 1, usize::MAX as u64)? as usize
            }
            "session_duration" => options.session_duration = number(value, 0, u64::MAX)?,
            "mfa_serial" => options.mfa_serial = Some(need(value)?),
            "mfa_command" => options.mfa_command = Some(need(value)?),
            "mfa_duration" => {
                options.mfa_duration = number(
                    value,
                    crate::session::MFA_DURATION_MIN,
                    crate::session::MFA_DURATION_MAX,
                )?
            }
            "busy_poll" => options.busy_poll = number(value, 0, 1_000_000)?,
            "log_file" => options.log_file = Some(need(value)?.into()),
            "read_only" | "ro" => {
                no_value(value)?;
                options.read_only = true;
            }
            // The default; `ro` or `read_only` anywhere wins over it (mount(8)
            // adds `rw` to every line that does not say `ro`).
            "rw" => no_value(value)?,
            "allow_other" => {
                no_value(value)?;
                options.allow_other = true;
            }
            "allow_root" => {
                no_value(value)?;
                allow_root = true;
            }
            "auto_unmount" => {
                no_value(value)?;
                auto_unmount = true;
            }
            // Always on: iamfs leaves permission checks on modes to the kernel.
            "default_permissions" => no_value(value)?,
            // The kernel's default for every mount.
            "relatime" => no_value(value)?,
            "fsname" => fsname = Some(need(value)?),
            "max_read" => {
                let n = number(value, 0, u32::MAX as u64)?;
                extra.push(MountOption::CUSTOM(format!("max_read={n}")));
            }
            "dev" | "nodev" | "suid" | "nosuid" | "exec" | "noexec" | "atime" | "noatime"
            | "sync" | "async" | "dirsync" => {
                no_value(value)?;
                flags.push(crate::cli::mount_option(key));
            }
            k if MOUNT8_ONLY.contains(&k) || k.starts_with("x-") || k == "comment" => {}
            _ if platform::passes_mount_option(opt) => {
                extra.push(MountOption::CUSTOM(opt.to_string()))
            }
            _ => {
                return Err(format!(
                    "unknown mount option `{opt}`: iamfs takes {}, and FUSE's {} \
                     (see `man iamfs`, MOUNT OPTIONS)",
                    IAMFS_KEYS.join(" "),
                    FUSE_KEYS.join(" ")
                ))
            }
        }
    }

    match (options.source.as_deref(), profile_key) {
        (Some(source), Some(key)) if !is_default_source(source) && source != key => {
            return Err(format!(
                "SOURCE `{source}` and `profile={key}` name two profiles: give one \
                 (SOURCE `-` leaves the profile to profile=)"
            ))
        }
        (_, Some(key)) => options.profile = Some(key),
        (Some(source), None) if !is_default_source(source) => {
            options.profile = Some(source.to_string())
        }
        _ => {}
    }

    if allow_root && options.allow_other {
        return Err(
            "mount options `allow_root` and `allow_other` exclude each other: give one".into(),
        );
    }

    let name = fsname
        .or_else(|| options.source.clone())
        .unwrap_or_else(|| "iamfs".into());
    let mut plan = vec![
        MountOption::FSName(name),
        platform::subtype_option(),
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    // What the caller asked for gives way to nothing, and replaces its
    // opposite among iamfs's defaults (mount.fuse3 adds `dev,suid`).
    for flag in flags {
        let opposite = opposite(&flag);
        plan.retain(|o| Some(o) != opposite.as_ref() && *o != flag);
        plan.push(flag);
    }
    if options.read_only {
        plan.push(MountOption::RO);
    }
    if auto_unmount {
        plan.push(MountOption::AutoUnmount);
    }
    plan.extend(extra);
    let acl = if options.allow_other {
        SessionACL::All
    } else if allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    Ok(MountPlan { options: plan, acl })
}

fn opposite(flag: &MountOption) -> Option<MountOption> {
    use MountOption::*;
    Some(match flag {
        Dev => NoDev,
        NoDev => Dev,
        Suid => NoSuid,
        NoSuid => Suid,
        Exec => NoExec,
        NoExec => Exec,
        Atime => NoAtime,
        NoAtime => Atime,
        Sync => Async,
        Async => Sync,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn options(args: &[&str]) -> Options {
        let mut argv = vec!["iamfs"];
        argv.extend_from_slice(args);
        crate::cli::Cli::try_parse_from(argv)
            .unwrap()
            .mount
            .expect("the mount form")
    }

    fn resolved(args: &[&str]) -> (Options, Result<MountPlan, String>) {
        let mut o = options(args);
        let plan = resolve(&mut o);
        (o, plan)
    }

    #[test]
    fn the_mount_helper_form_sets_every_iamfs_setting() {
        let (o, plan) = resolved(&[
            "admin",
            "/mnt",
            "-o",
            "ro,cache_ttl=120,cache_entries=50,session_duration=900,region=eu-west-1,\
             endpoint_url=http://127.0.0.1:5000,mfa_serial=arn:aws:iam::1:mfa/me,\
             mfa_command=echo 123456,mfa_duration=3600,busy_poll=0,log_file=/tmp/l,allow_other,dev,suid",
        ]);
        let plan = plan.unwrap();
        assert_eq!(o.profile.as_deref(), Some("admin"));
        assert!(o.read_only && o.allow_other);
        assert_eq!(
            (o.cache_ttl, o.cache_entries, o.session_duration),
            (120, 50, 900)
        );
        assert_eq!(o.region.as_deref(), Some("eu-west-1"));
        assert_eq!(o.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(o.mfa_serial.as_deref(), Some("arn:aws:iam::1:mfa/me"));
        assert_eq!(o.mfa_command.as_deref(), Some("echo 123456"));
        assert_eq!((o.mfa_duration, o.busy_poll), (3600, 0));
        assert_eq!(o.log_file.as_deref(), Some(std::path::Path::new("/tmp/l")));
        assert_eq!(o.mountpoint.as_deref(), Some(std::path::Path::new("/mnt")));
        // mount.fuse3's dev,suid replace iamfs's nodev,nosuid: no conflict.
        assert!(plan.options.contains(&MountOption::Dev));
        assert!(!plan.options.contains(&MountOption::NoDev));
        assert!(!plan.options.contains(&MountOption::NoSuid));
        assert!(plan.options.contains(&MountOption::RO));
        assert!(plan.options.contains(&MountOption::FSName("admin".into())));
        assert_eq!(plan.acl, SessionACL::All);
    }

    #[test]
    fn rw_gives_way_to_read_only_and_defaults_stay_without_flags() {
        let (o, plan) = resolved(&["-", "/mnt", "-o", "rw,read_only,noexec,nosuid,nodev"]);
        let plan = plan.unwrap();
        assert!(o.read_only);
        assert_eq!(o.profile, None);
        assert!(!plan.options.contains(&MountOption::RW));
        assert!(plan.options.contains(&MountOption::RO));
        assert_eq!(
            plan.options
                .iter()
                .filter(|o| **o == MountOption::NoDev)
                .count(),
            1
        );
        assert!(plan.options.contains(&MountOption::FSName("-".into())));
        let (_, plan) = resolved(&["/mnt"]);
        let plan = plan.unwrap();
        assert!(plan.options.contains(&MountOption::NoDev));
        assert!(plan.options.contains(&MountOption::NoSuid));
        assert!(plan.options.contains(&MountOption::FSName("iamfs".into())));
        assert_eq!(plan.acl, SessionACL::Owner);
    }

    #[test]
    fn mount8_options_are_dropped_and_profile_keys_agree_with_source() {
        let (o, plan) = resolved(&[
            "default",
            "/mnt",
            "-o",
            "defaults,noauto,user,_netdev,nofail,x-systemd.automount,profile=p",
        ]);
        assert!(plan.is_ok());
        assert_eq!(o.profile.as_deref(), Some("p"));
        let (_, plan) = resolved(&["a", "/mnt", "-o", "profile=b"]);
        assert!(plan.unwrap_err().contains("two profiles"));
        let (o, plan) = resolved(&["a", "/mnt", "-o", "profile=a"]);
        assert!(plan.is_ok());
        assert_eq!(o.profile.as_deref(), Some("a"));
    }

    #[test]
    fn unknown_or_malformed_keys_are_refused_in_one_line() {
        for (opt, says) in [
            ("bogus", "unknown mount option `bogus`"),
            ("cache_ttl=soon", "whole number"),
            ("cache_ttl", "needs a value"),
            ("ro=1", "takes no value"),
            ("mfa_duration=10", "900 to 129600"),
        ] {
            let (_, plan) = resolved(&["/mnt", "-o", opt]);
            let e = plan.unwrap_err();
            assert!(e.contains(says), "{opt}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let (_, plan) = resolved(&["/mnt", "-o", "allow_root,allow_other"]);
        assert!(plan.is_err());
    }

    #[test]
    fn a_profile_named_status_as_source_is_a_mount_not_the_subcommand() {
        let argv: Vec<std::ffi::OsString> = ["iamfs", "status", "/mnt", "-o", "rw,dev,suid"]
            .iter()
            .map(Into::into)
            .collect();
        let cli = crate::cli::Cli::try_parse_from(crate::cli::helper_args(argv)).unwrap();
        assert!(cli.command.is_none());
        let mut o = cli.mount.unwrap();
        let plan = resolve(&mut o).unwrap();
        assert_eq!(o.profile.as_deref(), Some("status"));
        assert!(plan.options.contains(&MountOption::FSName("status".into())));
        // Without -o it is the subcommand.
        let cli = crate::cli::Cli::try_parse_from(["iamfs", "status", "/mnt"]).unwrap();
        assert!(matches!(cli.command, Some(crate::cli::Command::Status(_))));
    }

    #[test]
    fn every_documented_key_is_accepted() {
        for key in IAMFS_KEYS.iter().chain(FUSE_KEYS) {
            let opt = match *key {
                k if k.ends_with('=') => format!(
                    "{k}{}",
                    match k {
                        "cache_ttl=" | "cache_entries=" | "busy_poll=" | "max_read=" => "5",
                        "session_duration=" | "mfa_duration=" => "900",
                        _ => "x",
                    }
                ),
                k => k.to_string(),
            };
            let (_, plan) = resolved(&["/mnt", "-o", &opt]);
            assert!(plan.is_ok(), "{opt}: {plan:?}");
        }
    }
}
