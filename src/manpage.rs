//! iamfs(1), generated from the clap definition (`iamfs --man`, written to
//! `iamfs.1` by `scripts/gen-man.sh`; CI checks the committed file is
//! current). The options come from clap; the tree, the write table and the
//! errno table come from the README's own sections, so the two never
//! disagree.

use std::io::Write;

use clap::CommandFactory;
use roff::{bold, roman, Roff};

use crate::cli::Cli;

const README: &str = include_str!("../README.md");

/// Renders the whole page.
pub fn render(out: &mut dyn Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(Cli::command())
        .title("IAMFS")
        .section("1")
        .source(format!("iamfs {}", env!("CARGO_PKG_VERSION")))
        .manual("User Commands");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    let mut page = Roff::new();
    mount_options(&mut page);
    section(&mut page, "THE TREE");
    page.text([roman(
        "Each folder and file, the IAM call behind it and its mode:",
    )]);
    preformatted(&mut page, &code_block(README, "## The tree"));
    section(&mut page, "WRITING");
    page.text([roman(
        "Saving a file is the IAM call you would otherwise type; a save the local \
         checks refuse changes nothing (EINVAL).",
    )]);
    table(&mut page, &table_rows(README, "## Writing"));
    section(&mut page, "ERRORS");
    page.text([roman(
        "What IAM (or iamfs itself) says, and the errno a program sees. Every error but \
         a plain \"no such file\" goes to the log and to .iamfs/errors with the path, the \
         operation and IAM's own code and message.",
    )]);
    table(&mut page, &table_rows(README, "## Errors"));
    logging(&mut page);
    section(&mut page, "SEE ALSO");
    page.text([roman(
        "mount.fuse3(8), fusermount3(1), fstab(5), systemd.service(5), aws(1)",
    )]);
    page.to_writer(out)?;
    man.render_version_section(out)
}

fn section(page: &mut Roff, name: &str) {
    page.control("SH", [name]);
}

fn paragraph(page: &mut Roff, text: &str) {
    page.control("PP", []);
    page.text([roman(text)]);
}

fn preformatted(page: &mut Roff, lines: &[&str]) {
    page.control("nf", []);
    page.control("RS", ["2"]);
    for line in lines {
        page.text([roman(*line)]);
    }
    page.control("RE", []);
    page.control("fi", []);
}

/// Each row a tagged paragraph: the first cell as the tag, the rest below.
fn table(page: &mut Roff, rows: &[Vec<String>]) {
    for row in rows {
        let Some((first, rest)) = row.split_first() else {
            continue;
        };
        page.control("TP", []);
        page.text([bold(plain(first))]);
        page.text([roman(
            rest.iter().map(|c| plain(c)).collect::<Vec<_>>().join("; "),
        )]);
    }
}

/// Markdown's inline code and emphasis marks dropped.
fn plain(cell: &str) -> String {
    cell.replace('`', "").replace("**", "")
}

/// The first fenced block after `heading`.
fn code_block<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    let after = section_text(text, heading);
    let mut lines = after.lines().skip_while(|l| !l.starts_with("```"));
    lines.next();
    lines.take_while(|l| !l.starts_with("```")).collect()
}

/// The body rows of the first table after `heading` (header and rule left out).
fn table_rows(text: &str, heading: &str) -> Vec<Vec<String>> {
    section_text(text, heading)
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(cells)
        .collect()
}

/// A table row's cells; `|` inside backticks is text, not a border.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut code = false;
    for c in inner.chars() {
        match c {
            '`' => {
                code = !code;
                cell.push(c);
            }
            '|' if !code => out.push(std::mem::take(&mut cell).trim().to_string()),
            _ => cell.push(c),
        }
    }
    out.push(cell.trim().to_string());
    out
}

fn section_text<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no `{heading}` section"));
    &text[start + heading.len() + 2..]
}

fn mount_options(page: &mut Roff) {
    section(page, "MOUNT OPTIONS");
    page.text([roman(
        "mount(8) and fstab(5) mount iamfs through fuse3's mount.fuse3 helper, which \
         runs iamfs SOURCE MOUNTPOINT -o OPTIONS. SOURCE is the AWS profile, or - or \
         default for the default credential chain. mount(8) runs the helper with a fixed \
         PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin): install \
         iamfs in /usr/local/bin, not ~/.cargo/bin.",
    )]);
    preformatted(
        page,
        &[
            "mount -t fuse.iamfs admin ~/iam -o ro,cache_ttl=120",
            "umount ~/iam",
            "",
            "# /etc/fstab: `mount ~/iam` as that user, not at boot",
            "admin /home/me/iam fuse.iamfs noauto,user,_netdev,cache_ttl=120 0 0",
        ],
    );
    paragraph(
        page,
        "Every option is also an -o key: profile=, region=, endpoint_url=, cache_ttl=, \
         cache_entries=, session_duration=, read_only (or ro), allow_other, mfa_serial=, \
         mfa_command= (no commas), mfa_duration=, busy_poll=, log_file=. FUSE's and the \
         kernel's are passed on: rw, dev, nodev, suid, nosuid, exec, noexec, atime, \
         noatime, relatime, sync, async, dirsync, allow_root, auto_unmount, \
         default_permissions, fsname=, max_read=. mount(8)'s own (defaults, noauto, \
         user, users, _netdev, nofail, x-*, comment=) are dropped. Any other key is \
         refused, and nothing is mounted.",
    );
    paragraph(
        page,
        "iamfs mounts nodev,nosuid unless told dev or suid (mount.fuse3 adds dev,suid \
         for root: they give way to nothing); rw is the default, and ro or read_only \
         anywhere wins over it. A profile given both as SOURCE and as profile= must \
         agree. The mount's type is fuse.iamfs and its source is SOURCE (iamfs without \
         one).",
    );
    paragraph(
        page,
        "iamfs status lists the mounts; a mountpoint named status is mounted as \
         iamfs ./status. A SOURCE named status (a profile) works in fstab: mount.fuse3 \
         always passes -o, which the status subcommand does not take.",
    );
    section(page, "SYSTEMD");
    page.text([roman(
        "With --foreground and NOTIFY_SOCKET set (Type=notify), iamfs tells systemd \
         READY=1 once the mount answers and STOPPING=1 when it unmounts; SIGTERM \
         unmounts. contrib/systemd/iamfs@.service is a user unit whose instance is the \
         profile: systemctl --user enable --now iamfs@admin mounts ~/iam/admin.",
    )]);
}

fn logging(page: &mut Roff) {
    section(page, "LOGS");
    page.text([roman(
        "In the foreground iamfs logs to standard error (the journal, under systemd); \
         as a daemon, only with --log-file PATH (or log_file=). Each failed operation is \
         one warning line with the path, the operation, the errno and IAM's code and \
         message, and the same goes to .iamfs/errors. RUST_LOG picks the level:",
    )]);
    for (level, shows) in LOG_LEVELS {
        page.control("TP", []);
        page.text([bold(*level)]);
        page.text([roman(*shows)]);
    }
}

/// What each RUST_LOG level shows (also in the README, Logs).
pub const LOG_LEVELS: &[(&str, &str)] = &[
    (
        "RUST_LOG=warn",
        "failed operations (path, operation, errno, IAM code and message) and failed \
         whole-account reads",
    ),
    (
        "RUST_LOG=info (the default)",
        "also mount and unmount, signals, roles assumed for roles/X/credentials, MFA \
         sessions started, .iamfs/refresh",
    ),
    (
        "RUST_LOG=iamfs=debug",
        "also lookups of names that do not exist (ENOENT), whole-account reads and how \
         long they took, busy polling choices",
    ),
    (
        "RUST_LOG=iamfs=trace",
        "also every file opened for reading and how it is served (page cache or direct \
         I/O); RUST_LOG=trace adds the AWS SDK's own request traces. Credentials and MFA \
         codes are never logged at any level",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_the_options_tree_write_and_errno_tables() {
        let mut out = Vec::new();
        render(&mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        for needle in [
            ".SH OPTIONS",
            "cache\\-ttl",
            ".SH \"MOUNT OPTIONS\"",
            ".SH \"THE TREE\"",
            "trust\\-policy.json",
            ".SH WRITING",
            "CreatePolicyVersion",
            ".SH ERRORS",
            "EntityAlreadyExists",
            "EEXIST",
        ] {
            assert!(page.contains(needle), "{needle} missing");
        }
    }

    #[test]
    fn table_cells_keep_pipes_inside_code() {
        assert_eq!(cells("| `a|b` | c |"), vec!["`a|b`", "c"]);
    }
}
