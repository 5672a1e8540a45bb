//! `iamfs status [MOUNTPOINT] [--json]`: a mount's `.iamfs/status` for a
//! person (account, caller, credentials and MFA session expiry, cache,
//! calls by operation, errors), the raw JSON with `--json`, or, without a
//! mountpoint, the iamfs mounts of this machine with a line each.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use serde_json::Value;

use crate::cli::StatusArgs;
use crate::platform;

pub fn run(args: &StatusArgs) -> ExitCode {
    let outcome = match &args.mountpoint {
        Some(mountpoint) => one(mountpoint, args.json),
        None => all(args.json),
    };
    match outcome {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("iamfs status: {message}");
            ExitCode::FAILURE
        }
    }
}

fn read_status(mountpoint: &Path) -> Result<(String, Value), String> {
    let file = mountpoint.join(".iamfs/status");
    let text = std::fs::read_to_string(&file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{} is not an iamfs mount (no .iamfs/status): give the mountpoint, or run \
             `iamfs status` to list the mounts",
            mountpoint.display()
        ),
        _ => format!("{}: {e}", file.display()),
    })?;
    let value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON ({e})", file.display()))?;
    Ok((text, value))
}

fn one(mountpoint: &Path, json: bool) -> Result<String, String> {
    let (text, value) = read_status(mountpoint)?;
    if json {
        return Ok(text);
    }
    let errors = std::fs::read_to_string(mountpoint.join(".iamfs/errors")).unwrap_or_default();
    Ok(summary(mountpoint, &value, &errors, SystemTime::now()))
}

fn all(json: bool) -> Result<String, String> {
    let mounts = platform::iamfs_mounts()?;
    if json {
        let list: Vec<Value> = mounts
            .iter()
            .map(|m| match read_status(m) {
                Ok((_, v)) => serde_json::json!({"mountpoint": m, "status": v}),
                Err(e) => serde_json::json!({"mountpoint": m, "error": e}),
            })
            .collect();
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        ));
    }
    if mounts.is_empty() {
        return Ok("no iamfs mounts\n".into());
    }
    let mut out = String::new();
    for m in &mounts {
        out.push_str(&line(m, read_status(m).map(|(_, v)| v)));
    }
    Ok(out)
}

/// One line per mount in the listing.
fn line(mountpoint: &Path, status: Result<Value, String>) -> String {
    match status {
        Ok(v) => format!(
            "{}\taccount {}\t{}\t{} IAM calls\t{} errors{}\n",
            mountpoint.display(),
            text(&v["account"]),
            text(&v["caller"]),
            v["api_calls_total"].as_u64().unwrap_or(0),
            v["errors"].as_u64().unwrap_or(0),
            if v["read_only"].as_bool() == Some(true) {
                "\tread-only"
            } else {
                ""
            }
        ),
        Err(e) => format!("{}\tnot answering: {e}\n", mountpoint.display()),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "unknown".into(),
        other => other.to_string(),
    }
}

/// "in 3 h 20 min" / "2 min ago" from an RFC 3339 time.
fn relative(at: &str, now: SystemTime) -> String {
    let Ok(when) = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
    else {
        return String::new();
    };
    let now = time::OffsetDateTime::from(now);
    let seconds = (when - now).whole_seconds();
    let span = |s: i64| {
        let s = s.abs();
        if s >= 3600 {
            format!("{} h {} min", s / 3600, (s % 3600) / 60)
        } else if s >= 60 {
            format!("{} min", s / 60)
        } else {
            format!("{s} s")
        }
    };
    if seconds >= 0 {
        format!(" (in {})", span(seconds))
    } else {
        format!(" ({} ago)", span(seconds))
    }
}

/// Operations by count, most first: "GetRole 50, ListRoles 3".
fn by_count(calls: &Value) -> String {
    let mut list: Vec<(&String, u64)> = calls
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k, v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    list.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn summary(mountpoint: &Path, v: &Value, errors: &str, now: SystemTime) -> String {
    let mut out = String::new();
    let mut put = |label: &str, value: String| out.push_str(&format!("{label:<13}{value}\n"));
    put("mount", mountpoint.display().to_string());
    put("account", text(&v["account"]));
    put("caller", text(&v["caller"]));
    put(
        "endpoint",
        format!(
            "{} (region {}){}",
            text(&v["endpoint"]),
            text(&v["region"]),
            if v["read_only"].as_bool() == Some(true) {
                ", read-only"
            } else {
                ""
            }
        ),
    );
    let c = &v["credentials"];
    if c.is_object() {
        let mut s = text(&c["state"]);
        if let Some(serial) = c["mfa_serial"].as_str() {
            s.push_str(&format!(
                ", MFA session ({} with {serial}; {} started)",
                text(&c["call"]),
                c["sessions"].as_u64().unwrap_or(0)
            ));
        }
        match c["expires"].as_str() {
            Some(at) => s.push_str(&format!(", expires {at}{}", relative(at, now))),
            None => s.push_str(", no expiry"),
        }
        put("credentials", s);
        if let Some(renew) = c["renew"].as_str() {
            put("  renew", renew.to_string());
        }
    }
    let cache = &v["cache"];
    let (hits, misses) = (
        cache["hits"].as_u64().unwrap_or(0),
        cache["misses"].as_u64().unwrap_or(0),
    );
    let rate = if hits + misses > 0 {
        format!(
            " ({:.0}% hits)",
            100.0 * hits as f64 / (hits + misses) as f64
        )
    } else {
        String::new()
    };
    put(
        "cache",
        format!(
            "{hits} hits, {misses} misses{rate}; {} of {} entries, fresh for {} s",
            cache["entries"].as_u64().unwrap_or(0),
            cache["capacity"].as_u64().unwrap_or(0),
            cache["ttl_seconds"].as_f64().unwrap_or(0.0)
        ),
    );
    let total = v["api_calls_total"].as_u64().unwrap_or(0);
    let ops = by_count(&v["api_calls"]);
    put(
        "IAM calls",
        if ops.is_empty() {
            format!("{total}")
        } else {
            format!("{total}: {ops}")
        },
    );
    let sts = by_count(&v["sts_calls"]);
    if !sts.is_empty() {
        put("STS calls", sts);
    }
    put(
        "kernel",
        format!(
            "{} requests",
            v["kernel_requests_total"].as_u64().unwrap_or(0)
        ),
    );
    let count = v["errors"].as_u64().unwrap_or(0);
    put("errors", format!("{count}"));
    let recent: Vec<&str> = errors.lines().rev().take(5).collect();
    for line in recent.into_iter().rev() {
        put("", line.replace('\t', "  "));
    }
    out
}

/// The mountpoints of the mounts listed (for tests of the listing).
pub fn listed(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| l.split('\t').next())
        .map(PathBuf::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_summary_says_who_what_and_when_it_expires() {
        let v = serde_json::json!({
            "account": "123456789012", "caller": "arn:aws:iam::123456789012:user/me",
            "endpoint": "https://iam.amazonaws.com", "region": "us-east-1", "read_only": true,
            "credentials": {"state": "active", "expires": "2026-12-03T12:00:00Z",
                            "mfa_serial": "arn:aws:iam::123456789012:mfa/me",
                            "call": "GetSessionToken", "sessions": 2},
            "cache": {"hits": 90, "misses": 10, "entries": 40, "ttl_seconds": 60.0,
                      "capacity": 100000},
            "api_calls": {"ListRoles": 3, "GetRole": 50}, "api_calls_total": 53,
            "sts_calls": {"GetSessionToken": 2},
            "errors": 1, "kernel_requests_total": 700,
        });
        let now = time::OffsetDateTime::parse(
            "2026-12-03T08:40:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(now.unix_timestamp() as u64);
        let s = summary(
            Path::new("/home/me/iam"),
            &v,
            "2026-12-03T08:39:00Z\troles/x\treaddir\tEACCES\tAccessDenied: no\n",
            now,
        );
        for needle in [
            "account      123456789012",
            "caller       arn:aws:iam::123456789012:user/me",
            ", read-only",
            "active, MFA session (GetSessionToken with arn:aws:iam::123456789012:mfa/me; 2 started), expires 2026-12-03T12:00:00Z (in 3 h 20 min)",
            "90 hits, 10 misses (90% hits)",
            "IAM calls    53: GetRole 50, ListRoles 3",
            "STS calls    GetSessionToken 2",
            "errors       1",
            "roles/x  readdir  EACCES",
        ] {
            assert!(s.contains(needle), "{needle:?} not in\n{s}");
        }
    }

    #[test]
    fn the_listing_has_a_line_per_mount_even_a_dead_one() {
        let v = serde_json::json!({"account": "1", "caller": "c", "api_calls_total": 3,
                                   "errors": 0});
        let l = line(Path::new("/m"), Ok(v));
        assert_eq!(l, "/m\taccount 1\tc\t3 IAM calls\t0 errors\n");
        let dead = line(
            Path::new("/d"),
            Err("Transport endpoint is not connected".into()),
        );
        assert!(dead.starts_with("/d\tnot answering"));
        assert_eq!(
            listed(&(l + &dead)),
            vec![PathBuf::from("/m"), PathBuf::from("/d")]
        );
    }
}
