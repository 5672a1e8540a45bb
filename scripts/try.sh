#!/usr/bin/env bash
# Try iamfs without an AWS account: starts moto_server (an IAM emulator) on
# loopback, seeds a sample account, mounts it, and waits; Ctrl-C unmounts
# and cleans up.
#   scripts/try.sh [--foreground] [--bulk] [MOUNTPOINT]
#     --foreground  run iamfs attached to this terminal (its log on stderr)
#     --bulk        also seed 110 roles and 110 policies
#     MOUNTPOINT    default: a new temporary directory
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
foreground=0 bulk=()
mnt=""
while (($#)); do
    case $1 in
    --foreground) foreground=1 ;;
    --bulk) bulk=(--bulk) ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "try.sh: unknown option $1" >&2; exit 2 ;;
    *) mnt=$1 ;;
    esac
    shift
done

cd "$repo"
scripts/install-deps.sh
echo "building iamfs (cargo build)..." >&2
cargo build --quiet
bin=$repo/target/debug/iamfs

# Dummy credentials for moto; never instance metadata, never ~/.aws.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ENDPOINT_URL AWS_SESSION_TOKEN
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/iamfs-try.XXXXXX")
export IAMFS_MOTO_STATE=$work/moto
made_mnt=0
if [[ -z $mnt ]]; then
    mnt=$work/mnt
    mkdir "$mnt"
    made_mnt=1
elif [[ ! -d $mnt ]]; then
    mkdir -p "$mnt"
    made_mnt=1
fi
mnt=$(cd "$mnt" && pwd)
log=$work/iamfs.log
fg_pid=""
url=""

cleanup() {
    trap - EXIT INT TERM
    echo >&2
    echo "cleaning up..." >&2
    if grep -qs " $mnt fuse" /proc/mounts; then
        fusermount3 -u "$mnt" 2>/dev/null || { sleep 1; fusermount3 -uz "$mnt" 2>/dev/null || true; }
    fi
    if [[ -n $fg_pid ]]; then
        kill "$fg_pid" 2>/dev/null || true
        wait "$fg_pid" 2>/dev/null || true
    fi
    [[ -n $url ]] && scripts/moto.sh stop >/dev/null 2>&1 || true
    ((made_mnt)) && rmdir "$mnt" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

url=$(scripts/moto.sh start)
.venv/bin/python scripts/seed_sample.py --endpoint-url "$url" "${bulk[@]}"

args=(--endpoint-url "$url" --region us-east-1)
if ((foreground)); then
    "$bin" --foreground "${args[@]}" "$mnt" &
    fg_pid=$!
    for _ in $(seq 1 100); do
        grep -qs " $mnt fuse" /proc/mounts && break
        kill -0 "$fg_pid" 2>/dev/null || { echo "iamfs exited" >&2; exit 1; }
        sleep 0.1
    done
else
    "$bin" "${args[@]}" --log-file "$log" "$mnt"
fi
grep -qs " $mnt fuse" /proc/mounts || { echo "try.sh: $mnt is not mounted" >&2; exit 1; }

aws=$repo/.venv/bin/aws
cat <<MSG

iamfs: moto's sample account is mounted at
  $mnt
(moto_server at $url; iamfs log: $( ((foreground)) && echo "this terminal" || echo "$log"))

Try, in another terminal:
  ls $mnt
  ls -l $mnt/roles/ $mnt/users/user1/
  cat $mnt/users/user1/user.json
  cat $mnt/roles/marketingadminrole/trust-policy.json
  readlink $mnt/users/user1/attached/s3-read-reports
  cat $mnt/users/user1/attached/s3-read-reports
  ls $mnt/groups/developers/members/ $mnt/users/user1/groups/
  grep -r s3: $mnt/policies/ $mnt/users/
  jq -r '.Statement[].Action' $mnt/aws-policies/AmazonS3ReadOnlyAccess.json
  jq . $mnt/users/user1/access-keys.json $mnt/users/user1/tags.json
  cat $mnt/roles/marketingadminrole/credentials
  jq . $mnt/.iamfs/status
Change IAM behind its back, then drop the cache:
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true \\
    $aws --endpoint-url $url --region us-east-1 iam create-user --user-name bob
  echo 1 > $mnt/.iamfs/refresh; ls $mnt/users/

Press Ctrl-C here to unmount and stop.
MSG

if ((foreground)); then
    wait "$fg_pid" || true
    fg_pid=""
else
    while grep -qs " $mnt fuse" /proc/mounts; do
        sleep 1
    done
    echo "try.sh: $mnt was unmounted" >&2
fi
