"""The man page and shell completions come from the clap definition
(issue 14): the generated bash completion, loaded into bash, completes an
option and the subcommand; zsh and fish scripts are made; the committed
doc/iamfs.1 is what the binary generates and man(1) renders it with the
tree, the write table and the errno table."""

from __future__ import annotations

import shutil

import pytest

from iamfs_harness import IAMFS_BIN, REPO, ok, run


def test_bash_completion_loads_and_completes_an_option_and_status():
    script = f"""
source <({IAMFS_BIN} --completions bash)
complete -p iamfs
complete_words() {{
    COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
    COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}
    _iamfs iamfs "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
    printf 'REPLY %s\\n' "${{COMPREPLY[@]}}"
}}
complete_words iamfs --cache-t
complete_words iamfs --read
complete_words iamfs st
"""
    out = ok(["bash", "-c", script])
    assert "-F _iamfs iamfs" in out.splitlines()[0], out
    replies = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("REPLY ")]
    assert replies == ["--cache-ttl", "--read-only", "status"], out


@pytest.mark.parametrize("shell,marker", [("zsh", "#compdef iamfs"), ("fish", "complete -c iamfs")])
def test_other_shells_get_a_script(shell, marker):
    out = ok([IAMFS_BIN, "--completions", shell])
    assert marker in out and "cache-ttl" in out


def test_committed_man_page_is_current_and_renders():
    page = REPO / "doc" / "iamfs.1"
    assert ok([IAMFS_BIN, "--man"]) == page.read_text(), \
        "doc/iamfs.1 is stale: run scripts/gen-man.sh and commit it"
    if not shutil.which("man"):
        pytest.skip("man-db missing: scripts/install-deps.sh installs it")
    p = run(["man", "-l", "-P", "cat", page], env={"PATH": "/usr/bin:/bin", "MANWIDTH": "100",
                                                 "LANG": "C.UTF-8"})
    assert p.returncode == 0, p.stderr
    assert "warning" not in p.stderr.lower(), p.stderr
    text = p.stdout
    for heading in ("SYNOPSIS", "OPTIONS", "MOUNT OPTIONS", "SYSTEMD", "THE TREE", "WRITING",
                    "ERRORS", "LOGS"):
        assert f"\n{heading}\n" in text, heading
    for needle in ("--cache-ttl", "trust-policy.json", "CreatePolicyVersion", "ENOTEMPTY",
                   "fuse.iamfs", "RUST_LOG=iamfs=debug"):
        assert needle in text, needle
