#!/usr/bin/env bash
# The test command: installs what the tests need, builds, runs the unit
# tests (cargo test) and the integration tests (pytest, against moto_server
# on loopback, through a real FUSE mount).
#   scripts/test.sh                 everything
#   scripts/test.sh -k cache -x     extra arguments go to pytest
# Environment: IAMFS_SKIP_CARGO_TEST=1 skips `cargo test` (unit tests);
# IAMFS_SKIP_PORTABLE=1 skips the portable build (the non-Linux platform
# code, built on Linux with --cfg iamfs_portable in target/portable);
# IAMFS_UNIT_TIMEOUT / IAMFS_PORTABLE_TIMEOUT / IAMFS_PYTEST_TIMEOUT bound
# each phase (seconds), so a hung test fails the run instead of stalling it.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

"$repo/scripts/install-deps.sh"

# Hermetic AWS environment: dummy credentials, never instance metadata (a
# non-loopback address), never the developer's ~/.aws.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ENDPOINT_URL AWS_SESSION_TOKEN AWS_ROLE_ARN \
    AWS_WEB_IDENTITY_TOKEN_FILE AWS_ENDPOINT_URL_IAM AWS_ENDPOINT_URL_STS
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
export PYTHONDONTWRITEBYTECODE=1
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

work=""
status=0
echo "== cargo build --all-targets"
cargo build --all-targets --quiet

# The committed man page is what the code (clap, the README's tables) makes.
echo "== doc/iamfs.1 is current"
IAMFS_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/iamfs" "$repo/scripts/gen-man.sh" --check || status=1

if [[ ${IAMFS_SKIP_CARGO_TEST:-0} != 1 ]]; then
    echo "== cargo test"
    timeout --kill-after=10 "${IAMFS_UNIT_TIMEOUT:-300}" cargo test --quiet || {
        rc=$?
        ((rc == 124)) && echo "test.sh: cargo test did not finish in ${IAMFS_UNIT_TIMEOUT:-300}s" >&2
        status=1
    }
fi

if [[ ${IAMFS_SKIP_PORTABLE:-0} != 1 ]]; then
    # What a Mac compiles (src/platform/portable.rs instead of linux.rs),
    # built here: the binary, and the library's unit tests run. Its own
    # target directory, since other RUSTFLAGS rebuild every dependency; the
    # first run compiles them, unoptimised (opt-level 1 takes three times
    # the CPU: 11 minutes of it here against under 4), later runs only iamfs.
    echo "== cargo test --lib --bins (portable: --cfg iamfs_portable)"
    started=$SECONDS
    RUSTFLAGS="${RUSTFLAGS:-} --cfg iamfs_portable" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}/portable" \
        timeout --kill-after=10 "${IAMFS_PORTABLE_TIMEOUT:-900}" \
        cargo test --lib --bins --quiet --config 'profile.dev.package."*".opt-level=0' || {
        rc=$?
        ((rc == 124)) && echo "test.sh: the portable build did not finish in ${IAMFS_PORTABLE_TIMEOUT:-900}s" >&2
        status=1
    }
    echo "== portable build and tests: $((SECONDS - started)) s"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/iamfs-test.XXXXXX")
# The write tests mount outside /tmp: Debian's vim (backupskip=/tmp/*) and
# emacs skip their rename-to-backup there, which a real ~/iam mount sees.
wmounts=$(mktemp -d /var/tmp/iamfs-wt.XXXXXX)
export IAMFS_WRITE_MOUNT_BASE=$wmounts
cleanup() {
    local rc=$? m pidf
    [[ -n ${work:-} ]] || return 0
    # Anything pytest left mounted or running (if pytest itself died).
    while read -r _ m _; do
        case $m in "$work"/* | "$wmounts"/*) fusermount3 -uz "$m" 2>/dev/null || true ;; esac
    done </proc/mounts
    find "$wmounts" -mindepth 1 -maxdepth 1 -type d -empty -delete 2>/dev/null
    rmdir "$wmounts" 2>/dev/null || true
    while IFS= read -r -d '' pidf; do
        kill "$(cat "$pidf")" 2>/dev/null || true
    done < <(find "$work" -xdev -name 'moto-*.pid' -print0 2>/dev/null)
    if ((rc == 0)); then
        rm -rf "$work"
    else
        echo "test.sh: logs kept in $work" >&2
    fi
}
trap cleanup EXIT

echo "== pytest tests/integration"
timeout --kill-after=30 "${IAMFS_PYTEST_TIMEOUT:-1500}" \
    "$repo/.venv/bin/python" -m pytest "$repo/tests/integration" --basetemp="$work/pytest" \
    -q "$@" || status=1

exit $status
