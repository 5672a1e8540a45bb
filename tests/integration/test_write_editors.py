"""Saving with real editors and tools: vim (interactive under tmux, with
Debian's default settings and with backupcopy=no / yes; and vim -Es), nano,
emacs --batch, sed -i, rsync -a, cp, tee, shell `>`, jq + mv, and Python's
NamedTemporaryFile + os.replace.

Each edit changes the word `alpha` to `zed` in one document of the test's
own entities. Afterwards IAM (through boto3) holds exactly the edit and
nothing else changed in the account (no scratch file became an IAM object),
and the mount reads the new content at once.
"""

from __future__ import annotations

import json
import os
import tempfile

import pytest

from write_helpers import *  # noqa: F401,F403

pytestmark = pytest.mark.fresh_mount

ALL_DOCS = ["managed", "user_inline", "group_inline", "role_inline", "trust", "user_tags",
            "role_tags"]
MAIN_DOCS = ["managed", "user_inline", "trust", "user_tags"]


def allowed_prefix(f: Fixture, which: str) -> str:
    return {
        "managed": f"/policies/{policy_arn(f.policy)}/",
        "user_inline": f"/users/{f.user}/inline/{f.inline}",
        "group_inline": f"/groups/{f.group}/inline/{f.inline}",
        "role_inline": f"/roles/{f.role}/inline/{f.inline}",
        "trust": f"/roles/{f.role}/trust",
        "user_tags": f"/users/{f.user}/tags",
        "role_tags": f"/roles/{f.role}/tags",
    }[which]


class Edit:
    """Before/after bookkeeping around one editor session."""

    def __init__(self, m, wiam, wraw, f: Fixture, which: str):
        self.m, self.wiam, self.wraw, self.f, self.which = m, wiam, wraw, f, which
        self.rel = f.rels()[which]
        self.path = m.p(self.rel)
        self.before_bytes = cat_bytes(self.path)
        assert self.before_bytes.count(TOKEN.encode()) == 1, self.before_bytes
        self.expect_bytes = self.before_bytes.replace(TOKEN.encode(), NEW_TOKEN.encode())
        self.snap = snapshot(wraw)
        self.policies = local_policy_names(wiam)

    def check(self, *, exact_bytes=True):
        assert_edited(self.m, self.wiam, self.wraw, self.f, self.which,
                      expect_bytes=self.expect_bytes if exact_bytes else None)
        check_no_stray_objects(self.wiam, self.f, policies_before=self.policies)
        after = snapshot(self.wraw)
        prefix = allowed_prefix(self.f, self.which)
        stray = [d for d in diff_snapshots(self.snap, after) if not d[2:].startswith(prefix)]
        assert not stray, f"editing {self.rel} changed more than it:\n" + "\n".join(stray)
        if self.which == "managed":
            p = after["policies"][policy_arn(self.f.policy)]
            assert len(p["versions"]) == 2 and p["default"] != "v1", p
        assert not [l for l in self.m.errors_text().splitlines() if self.rel in l], \
            self.m.errors_text()


# --------------------------------------------------------------------------
# vim
# --------------------------------------------------------------------------

def vim_session(tmux, tmp_path, path, *, set_cmds=(), env_extra=None):
    t = tmux("vim")
    t.start(["vim", str(path)], editor_env(tmp_path / "home", **(env_extra or {})))
    assert t.wait_screen(TOKEN, 15), f"vim did not show the file:\n{t.screen()}"
    for c in set_cmds:
        t.keys(f":{c}", "Enter")
    t.keys(f"/{TOKEN}", "Enter")
    t.keys("cw")
    t.keys(NEW_TOKEN, literal=True)
    t.keys("Escape")
    t.keys(":wq", "Enter")
    rc = t.wait_exit(20)
    return rc, t


@pytest.mark.parametrize("which", ALL_DOCS)
def test_vim_debian_defaults(wmount, wiam, wraw, fx, tmux, tmp_path, which):
    """vim as installed (/etc/vim/vimrc + defaults.vim, no user vimrc):
    swap file, 4913 probe, rename to X~, create X without O_TRUNC, write,
    fsync, unlink X~."""
    e = Edit(wmount, wiam, wraw, fx, which)
    rc, t = vim_session(tmux, tmp_path, e.path)
    assert rc == 0, f"vim exited {rc}; last screen:\n{t.screen()}"
    e.check()
    # The swap file and the backup went away with vim.
    left = [n for n in os.listdir(e.path.parent) if n.endswith((".swp", "~")) or n == "4913"]
    assert not left, left


@pytest.mark.parametrize("backupcopy", ["no", "yes"])
@pytest.mark.parametrize("which", MAIN_DOCS)
def test_vim_backupcopy(wmount, wiam, wraw, fx, tmux, tmp_path, which, backupcopy):
    """backupcopy=no: backup by rename, new file written; backupcopy=yes:
    backup by copy, the original truncated and overwritten in place."""
    e = Edit(wmount, wiam, wraw, fx, which)
    rc, t = vim_session(tmux, tmp_path, e.path, set_cmds=[f"set backupcopy={backupcopy}"])
    assert rc == 0, f"vim exited {rc}; last screen:\n{t.screen()}"
    e.check()


def test_vim_new_policy(wmount, wiam, wraw, tmux, tmp_path):
    """vim on a name that does not exist yet: typing a policy and :wq
    creates it (CreatePolicy), and nothing else (no swap-file policy)."""
    name = uniq("wt-vimnew-")
    path = wmount.p(f"policies/{name}.json")
    before = local_policy_names(wiam)
    doc = identity_doc("typed")
    t = tmux("vimnew")
    t.start(["vim", str(path)], editor_env(tmp_path / "home"))
    assert t.wait_screen("[New]", 15) or t.wait_screen("New", 1), t.screen()
    t.keys(":set paste", "Enter")
    t.keys("i")
    t.keys(json.dumps(doc, indent=2), literal=True)
    t.keys("Escape")
    t.keys(":wq", "Enter")
    rc = t.wait_exit(20)
    assert rc == 0, f"vim exited {rc}:\n{t.screen()}"
    assert local_policy_names(wiam) == before | {name}
    assert managed_doc(wraw, name) == doc
    assert json.loads(cat_bytes(path)) == doc
    assert not [n for n in os.listdir(path.parent) if n.startswith(".") or n.endswith("~")]


@pytest.mark.parametrize("which", ["managed", "trust"])
def test_vim_two_saves_in_one_session(wmount, wiam, wraw, fx, tmux, tmp_path, which):
    """:w, another change, :wq: two saves, each with the backup dance; IAM
    ends with the second; a managed policy gains exactly two versions."""
    rel = fx.rels()[which]
    path = wmount.p(rel)
    t = tmux("vim2")
    t.start(["vim", str(path)], editor_env(tmp_path / "home"))
    assert t.wait_screen(TOKEN, 15), t.screen()
    t.keys(f":%s/{TOKEN}/{NEW_TOKEN}/", "Enter")
    t.keys(":w", "Enter")
    assert wait_for(lambda: iam_value(wiam, wraw, fx, which) ==
                    expected_after_word_change(which), 10, 0.2), "first :w did not land"
    t.keys(f":%s/{NEW_TOKEN}/charlie/", "Enter")
    t.keys(":wq", "Enter")
    rc = t.wait_exit(20)
    assert rc == 0, f"vim exited {rc}:\n{t.screen()}"
    want = identity_doc("charlie") if which == "managed" else trust_doc("charlie")
    assert iam_value(wiam, wraw, fx, which) == want
    assert json.loads(cat_bytes(path)) == want
    if which == "managed":
        assert version_ids(wiam, policy_arn(fx.policy)) == ["v1", "v2", "v3"]
    assert not [n for n in os.listdir(path.parent) if n.endswith((".swp", "~"))]


BREAK = {  # a vim substitute that makes the document invalid
    "managed": "Allow/Permit", "user_inline": "Allow/Permit", "role_inline": "Allow/Permit",
    "trust": "Allow/Permit", "user_tags": '"alpha"/1',
}


class FailedSave:
    """Bookkeeping around an editor session whose save iamfs refuses."""

    def __init__(self, m, wiam, wraw, f: Fixture, which: str):
        self.m, self.wraw, self.f, self.which = m, wraw, f, which
        self.rel = f.rels()[which]
        self.path = m.p(self.rel)
        self.before = cat_bytes(self.path)
        self.snap = snapshot(wraw)
        self.calls = m.api_calls()

    def check(self):
        made = mutations(new_calls(self.calls, self.m.api_calls()))
        assert not made, f"a refused save of {self.rel} still called {made}"
        assert_unchanged(self.wraw, self.snap, f"a refused save of {self.rel}")
        assert cat_bytes(self.path) == self.before, f"{self.rel} no longer reads IAM's document"
        assert error_lines_for(self.m, self.rel), self.m.errors_text()
        # An editor keeps its backup when a write fails (vim with
        # backupcopy=yes, emacs): a scratch file holding the old content.
        backup = self.path.with_name(self.path.name + "~")
        if os.path.exists(backup):
            assert cat_bytes(backup) == self.before, "the backup is not the old content"
            os.unlink(backup)
        left = [n for n in os.listdir(self.path.parent)
                if n.endswith((".swp", "~")) or n == "4913"]
        assert not left, f"left behind: {left}"


@pytest.mark.parametrize("backupcopy", ["auto", "yes"])
@pytest.mark.parametrize("which", ["managed", "user_inline", "role_inline", "trust",
                                   "user_tags"])
def test_vim_refused_save(wmount, wiam, wraw, fx, tmux, tmp_path, which, backupcopy):
    """vim sees the refusal (E512/E667), and its recovery (unlink the new
    file, rename the backup back) must not touch IAM: the document is not
    deleted and re-created, nothing changes."""
    e = FailedSave(wmount, wiam, wraw, fx, which)
    t = tmux("vimfail")
    t.start(["vim", str(e.path)], editor_env(tmp_path / "home"))
    assert t.wait_screen(TOKEN, 15), t.screen()
    t.keys(f":set backupcopy={backupcopy}", "Enter")
    t.keys(f":%s/{BREAK[which]}/", "Enter")
    t.keys(":wq", "Enter")
    assert wait_for(lambda: any(c in t.screen() for c in ("E512", "E667", "E212")), 15, 0.2), \
        f"vim did not report the refused save:\n{t.screen()}"
    t.keys("Enter")
    t.keys(":q!", "Enter")
    rc = t.wait_exit(20)
    assert rc == 0, t.screen()
    e.check()


@pytest.mark.parametrize("which", ["managed", "user_inline", "trust"])
def test_nano_refused_save(wmount, wiam, wraw, fx, tmux, tmp_path, which):
    e = FailedSave(wmount, wiam, wraw, fx, which)
    t = tmux("nanofail")
    t.start(["nano", str(e.path)], editor_env(tmp_path / "home"))
    assert t.wait_screen(TOKEN, 15), t.screen()
    t.keys("C-\\")
    assert t.wait_screen("Search (to replace)", 10), t.screen()
    t.keys("Allow", literal=True)
    t.keys("Enter")
    assert t.wait_screen("Replace with", 10), t.screen()
    t.keys("Permit", literal=True)
    t.keys("Enter")
    assert t.wait_screen("Replace this instance", 10), t.screen()
    t.keys("y")
    t.keys("C-o")
    assert t.wait_screen("File Name to Write", 10), t.screen()
    t.keys("Enter")
    assert t.wait_screen("Invalid argument", 15), f"nano did not report the error:\n{t.screen()}"
    t.keys("C-x")
    assert t.wait_screen("Save modified buffer", 10), t.screen()
    t.keys("n")
    rc = t.wait_exit(20)
    assert rc == 0, t.screen()
    e.check()


@pytest.mark.parametrize("which", ["managed", "user_inline"])
def test_emacs_refused_save(wmount, wiam, wraw, fx, tmp_path, which):
    e = FailedSave(wmount, wiam, wraw, fx, which)
    (tmp_path / "home").mkdir(exist_ok=True)
    lisp = ('(progn (goto-char (point-min)) (search-forward "Allow") '
            '(replace-match "Permit") (save-buffer))')
    p = run(["emacs", "--batch", e.path, "--eval", lisp],
            env=base_env(HOME=str(tmp_path / "home")), timeout=60)
    assert p.returncode != 0, "emacs reported success for a refused save"
    assert "Invalid argument" in p.stderr, p.stderr[-2000:]
    # emacs in batch mode may leave its lock behind: a scratch file.
    lock = e.path.with_name(".#" + e.path.name)
    if os.path.lexists(lock):
        os.unlink(lock)
    e.check()


def test_vim_refused_new_policy(wmount, wiam, wraw, tmux, tmp_path):
    """vim on a new name, typed content iamfs refuses: vim reports it,
    nothing is created, and the name does not linger after :q!."""
    name = uniq("wt-vimbad-")
    path = wmount.p(f"policies/{name}.json")
    snap = snapshot(wraw)
    t = tmux("vimbad")
    t.start(["vim", str(path)], editor_env(tmp_path / "home"))
    assert t.wait_screen("New", 15), t.screen()
    t.keys(":set paste", "Enter")
    t.keys("i")
    t.keys(json.dumps(identity_doc("bad")).replace("Allow", "Permit"), literal=True)
    t.keys("Escape")
    t.keys(":wq", "Enter")
    assert wait_for(lambda: any(c in t.screen() for c in ("E512", "E667", "E212")), 15, 0.2), \
        f"vim did not report the refused save:\n{t.screen()}"
    t.keys("Enter")
    t.keys(":q!", "Enter")
    assert t.wait_exit(20) == 0, t.screen()
    assert_unchanged(wraw, snap)
    assert not os.path.exists(path)
    assert error_lines_for(wmount, f"policies/{name}.json"), wmount.errors_text()


def test_rm_after_emacs_refused_save_is_not_a_silent_no_op(wmount, wiam, wraw, fx, tmp_path):
    """emacs does not undo its backup rename when a save is refused. If the
    user then deliberately removes the policy, rm either deletes it in IAM
    or fails: it never reports success while IAM keeps the policy."""
    rel = fx.rels()["managed"]
    path = wmount.p(rel)
    (tmp_path / "home").mkdir(exist_ok=True)
    lisp = ('(progn (goto-char (point-min)) (search-forward "Allow") '
            '(replace-match "Permit") (save-buffer))')
    p = run(["emacs", "--batch", path, "--eval", lisp],
            env=base_env(HOME=str(tmp_path / "home")), timeout=60)
    assert p.returncode != 0
    for n in (path.name + "~", ".#" + path.name):
        if os.path.lexists(path.parent / n):
            os.unlink(path.parent / n)
    err = oserr_unlink(path)
    still = fx.policy in local_policy_names(wiam)
    if err is None:  # carried out once rm's grace has passed
        wait_for(lambda: fx.policy not in local_policy_names(wiam), RM_GRACE + 5)
        still = fx.policy in local_policy_names(wiam)
    assert (err is None and not still) or (err is not None and still), (
        f"rm {rel}: {errno_name(err)}, and the policy "
        f"{'still exists' if still else 'is gone'} in IAM")


def oserr_unlink(path):
    try:
        os.unlink(path)
    except OSError as e:
        return e
    return None


@pytest.mark.parametrize("which", MAIN_DOCS)
def test_vim_ex_scripted(wmount, wiam, wraw, fx, tmp_path, which):
    e = Edit(wmount, wiam, wraw, fx, which)
    env = base_env(HOME=str(tmp_path / "home"))
    (tmp_path / "home").mkdir(exist_ok=True)
    p = run(["vim", "-Es", "-c", f"%s/{TOKEN}/{NEW_TOKEN}/", "-c", "wq", e.path],
            env=env, timeout=30)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    e.check()


# --------------------------------------------------------------------------
# nano
# --------------------------------------------------------------------------

@pytest.mark.parametrize("which", MAIN_DOCS + ["role_tags"])
def test_nano(wmount, wiam, wraw, fx, tmux, tmp_path, which):
    """nano: ^\\ replace, ^O Enter (write out), ^X; nano also makes a
    .X.swp lock file beside the document."""
    e = Edit(wmount, wiam, wraw, fx, which)
    t = tmux("nano")
    t.start(["nano", str(e.path)], editor_env(tmp_path / "home"))
    assert t.wait_screen(TOKEN, 15), f"nano did not show the file:\n{t.screen()}"
    t.keys("C-\\")
    assert t.wait_screen("Search (to replace)", 10), t.screen()
    t.keys(TOKEN, literal=True)
    t.keys("Enter")
    assert t.wait_screen("Replace with", 10), t.screen()
    t.keys(NEW_TOKEN, literal=True)
    t.keys("Enter")
    assert t.wait_screen("Replace this instance", 10), t.screen()
    t.keys("y")
    t.keys("C-o")
    assert t.wait_screen("File Name to Write", 10), t.screen()
    t.keys("Enter")
    assert t.wait_screen("Wrote", 15), f"nano did not report the write:\n{t.screen()}"
    t.keys("C-x")
    rc = t.wait_exit(20)
    assert rc == 0, f"nano exited {rc}:\n{t.screen()}"
    e.check()
    assert not [n for n in os.listdir(e.path.parent) if n.endswith(".swp")]


# --------------------------------------------------------------------------
# emacs
# --------------------------------------------------------------------------

@pytest.mark.parametrize("which", MAIN_DOCS + ["role_inline"])
def test_emacs_batch(wmount, wiam, wraw, fx, tmp_path, which):
    """emacs --batch with its defaults: a `.#X` lock symlink, the first
    save renames X to X~ (kept: a scratch file) and writes X anew."""
    e = Edit(wmount, wiam, wraw, fx, which)
    (tmp_path / "home").mkdir(exist_ok=True)
    lisp = (f'(progn (goto-char (point-min)) (search-forward "{TOKEN}") '
            f'(replace-match "{NEW_TOKEN}") (save-buffer))')
    p = run(["emacs", "--batch", e.path, "--eval", lisp],
            env=base_env(HOME=str(tmp_path / "home")), timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    e.check()
    backup = e.path.with_name(e.path.name + "~")
    assert cat_bytes(backup) == e.before_bytes, "emacs's backup is not the old content"
    assert not os.path.lexists(e.path.with_name(".#" + e.path.name)), "lock left behind"


def test_emacs_two_saves(wmount, wiam, wraw, fx, tmp_path):
    """emacs backs up only on the first save; the second writes in place."""
    rel = fx.rels()["managed"]
    path = wmount.p(rel)
    (tmp_path / "home").mkdir(exist_ok=True)
    lisp = (f'(progn (goto-char (point-min)) (search-forward "{TOKEN}") '
            f'(replace-match "{NEW_TOKEN}") (save-buffer) '
            f'(goto-char (point-min)) (search-forward "{NEW_TOKEN}") '
            f'(replace-match "charlie") (save-buffer))')
    p = run(["emacs", "--batch", path, "--eval", lisp],
            env=base_env(HOME=str(tmp_path / "home")), timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    assert managed_doc(wraw, fx.policy) == identity_doc("charlie")
    assert version_ids(wiam, policy_arn(fx.policy)) == ["v1", "v2", "v3"]
    assert json.loads(cat_bytes(path)) == identity_doc("charlie")


# --------------------------------------------------------------------------
# command-line tools
# --------------------------------------------------------------------------

@pytest.mark.parametrize("which", ALL_DOCS)
def test_sed_in_place(wmount, wiam, wraw, fx, which):
    """sed -i: a sedXXXXXX temp file in the same folder, renamed over X."""
    e = Edit(wmount, wiam, wraw, fx, which)
    ok(["sed", "-i", f"s/{TOKEN}/{NEW_TOKEN}/", e.path])
    e.check()


@pytest.mark.parametrize("which", MAIN_DOCS)
def test_cp_over(wmount, wiam, wraw, fx, tmp_path, which):
    e = Edit(wmount, wiam, wraw, fx, which)
    src = tmp_path / "edited.json"
    src.write_bytes(e.expect_bytes)
    ok(["cp", src, e.path])
    e.check()


@pytest.mark.parametrize("which", MAIN_DOCS)
def test_tee(wmount, wiam, wraw, fx, which):
    e = Edit(wmount, wiam, wraw, fx, which)
    p = run(["tee", e.path], input=e.expect_bytes, text=False)
    assert p.returncode == 0, p.stderr
    e.check()


@pytest.mark.parametrize("which", MAIN_DOCS)
def test_shell_redirect(wmount, wiam, wraw, fx, tmp_path, which):
    e = Edit(wmount, wiam, wraw, fx, which)
    src = tmp_path / "edited.json"
    src.write_bytes(e.expect_bytes)
    p = sh(f"cat '{src}' > '{e.path}'")
    assert p.returncode == 0, p.stderr
    e.check()


JQ = {
    "managed": f'.Statement[0].Resource |= sub("{TOKEN}"; "{NEW_TOKEN}")',
    "user_inline": f'.Statement[0].Resource |= sub("{TOKEN}"; "{NEW_TOKEN}")',
    "trust": f'.Statement[0].Principal.AWS |= sub("{TOKEN}"; "{NEW_TOKEN}")',
    "user_tags": f'.stage = "{NEW_TOKEN}"',
    "role_tags": f'.stage = "{NEW_TOKEN}"',
}


@pytest.mark.parametrize("which", sorted(JQ))
def test_jq_tmp_and_mv(wmount, wiam, wraw, fx, which):
    """jq ... X > X.tmp && mv X.tmp X."""
    e = Edit(wmount, wiam, wraw, fx, which)
    p = sh(f"cd '{e.path.parent}' && jq '{JQ[which]}' {e.path.name} > {e.path.name}.tmp "
           f"&& mv {e.path.name}.tmp {e.path.name}")
    assert p.returncode == 0, p.stderr
    e.check(exact_bytes=False)  # jq's own rendering
    assert not os.path.exists(str(e.path) + ".tmp")


@pytest.mark.parametrize("which", MAIN_DOCS)
def test_python_tempfile_replace(wmount, wiam, wraw, fx, which):
    """tempfile.NamedTemporaryFile(dir=...) written, closed, os.replace'd
    over X (what many programs' "atomic save" does)."""
    e = Edit(wmount, wiam, wraw, fx, which)
    tmp = tempfile.NamedTemporaryFile(dir=e.path.parent, delete=False)
    try:
        tmp.write(e.expect_bytes)
        tmp.flush()
        os.fsync(tmp.fileno())
        tmp.close()
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, e.path)
    finally:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)
    e.check()


def test_rsync_directory_of_policies(wmount, wiam, wraw, fx, tmp_path):
    """rsync -a of a folder of policies into policies/: new files become
    new policies, a changed one a new default version, an unchanged one (byte
    for byte the mount's copy, only the mtime differs) no call at all."""
    other = uniq("wt-pol-")
    wiam.create_policy(PolicyName=other, PolicyDocument=json.dumps(identity_doc()))
    src = tmp_path / "src"
    src.mkdir()
    unchanged = cat_bytes(wmount.p(f"policies/{other}.json"))
    (src / f"{other}.json").write_bytes(unchanged)
    changed = cat_bytes(wmount.p(f"policies/{fx.policy}.json")).replace(
        TOKEN.encode(), NEW_TOKEN.encode())
    (src / f"{fx.policy}.json").write_bytes(changed)
    new1, new2 = uniq("wt-rsync-"), uniq("wt-rsync-")
    (src / f"{new1}.json").write_bytes(pretty(identity_doc("charlie")))
    (src / f"{new2}.json").write_bytes(pretty(identity_doc("delta", actions=["s3:PutObject"])))
    # rsync's quick check compares size and whole-second mtimes: make both
    # existing ones differ from the mount's (fixtures made this second).
    for n in (other, fx.policy):
        os.utime(src / f"{n}.json", (1_000_000_000, 1_000_000_000))

    before_names = local_policy_names(wiam)
    snap = snapshot(wraw)
    calls = wmount.api_calls()
    p = run(["rsync", "-a", "-i", f"{src}/", f"{wmount.p('policies')}/"], timeout=60)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    made = mutations(new_calls(calls, wmount.api_calls()))
    assert made == {"CreatePolicy": 2, "CreatePolicyVersion": 1}, (made, p.stdout)

    assert local_policy_names(wiam) == before_names | {new1, new2}
    assert managed_doc(wraw, new1) == identity_doc("charlie")
    assert managed_doc(wraw, new2) == identity_doc("delta", actions=["s3:PutObject"])
    assert managed_doc(wraw, fx.policy) == identity_doc(NEW_TOKEN)
    after = snapshot(wraw)
    assert after["policies"][policy_arn(other)] == snap["policies"][policy_arn(other)]
    for name, want in ((new1, pretty(identity_doc("charlie"))), (fx.policy, changed)):
        assert json.loads(cat_bytes(wmount.p(f"policies/{name}.json"))) == json.loads(want)
    # rsync's temp files (.X.json.abc123) are gone and never reached IAM.
    listing = os.listdir(wmount.p("policies"))
    assert not [n for n in listing if n.startswith(".")], listing
