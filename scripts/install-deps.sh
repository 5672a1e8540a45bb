#!/usr/bin/env bash
# Install what iamfs's tests and scripts/try.sh need, on a fresh Debian
# machine. Idempotent and quiet: a second run is a fast no-op.
#   - Debian packages (only those missing; `apt-get update` at most once)
#   - a repo-local virtualenv .venv/ with moto[server], boto3, awscli, pytest
# Environment: IAMFS_VENV overrides the venv location; PYTHON the interpreter
# used to create it (default python3).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${IAMFS_VENV:-$repo/.venv}
python=${PYTHON:-python3}
reqs=$repo/scripts/requirements-test.txt

log() { printf 'install-deps: %s\n' "$*" >&2; }

# ---- Debian packages -------------------------------------------------------
# fuse3 gives fusermount3 (mount/unmount as the fuser crate does it);
# libfuse3-dev + pkg-config only matter if the crate is built with a libfuse
# feature, but are small; the editors and tools are what the tests drive;
# man-db and groff-base render the generated man page (`man -l doc/iamfs.1`);
# util-linux gives mount(8), umount and unshare (the mount(8)/fstab tests).
apt_pkgs=(fuse3 libfuse3-dev pkg-config jq rsync tmux vim nano emacs-nox procps psmisc python3-venv
    man-db groff-base util-linux)
missing=()
for p in "${apt_pkgs[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    sudo=()
    if ((EUID != 0)); then sudo=(sudo -n); fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq >/dev/null
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ ! -e /dev/fuse ]]; then
    log "warning: /dev/fuse is missing; mounts will fail (modprobe fuse?)"
fi

# ---- Python virtualenv ------------------------------------------------------
stamp=$venv/.iamfs-requirements.sha256
want=$(sha256sum "$reqs" | cut -d' ' -f1)
if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]] &&
    "$venv/bin/python" -c 'import moto, boto3, pytest, flask' 2>/dev/null &&
    [[ -x $venv/bin/moto_server && -x $venv/bin/aws ]]; then
    exit 0
fi
if [[ ! -x $venv/bin/python ]]; then
    log "creating virtualenv $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
# Keep the venv out of git whatever the repo's .gitignore says.
printf '*\n' >"$venv/.gitignore"
log "installing Python packages into $venv (moto, boto3, awscli, pytest)"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
"$venv/bin/python" -m pip install -q -r "$reqs"
printf '%s\n' "$want" >"$stamp"
