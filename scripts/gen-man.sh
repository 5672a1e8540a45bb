#!/usr/bin/env bash
# Writes doc/iamfs.1, the man page, from the clap definition and the
# README's tree, write table and errno table (`iamfs --man`).
#   scripts/gen-man.sh            regenerate doc/iamfs.1 (commit it)
#   scripts/gen-man.sh --check    fail if doc/iamfs.1 differs (scripts/test.sh runs this)
# IAMFS_BIN names a built binary to use instead of `cargo run`.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
page=doc/iamfs.1

generate() {
    if [[ -n ${IAMFS_BIN:-} ]]; then
        "$IAMFS_BIN" --man
    else
        cargo run --quiet -- --man
    fi
}

if [[ ${1:-} == --check ]]; then
    if ! diff -u "$page" <(generate) >/dev/null; then
        echo "gen-man: $page is not what the code generates (options, README's tree or tables changed): run scripts/gen-man.sh and commit $page" >&2
        diff -u "$page" <(generate) | head -40 >&2 || true
        exit 1
    fi
    exit 0
fi
generate >"$page.tmp"
mv "$page.tmp" "$page"
echo "gen-man: wrote $page"
