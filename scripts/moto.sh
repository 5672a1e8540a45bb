#!/usr/bin/env bash
# Start or stop a moto_server (IAM/STS emulator) on a loopback port.
#   scripts/moto.sh start [PORT]   start in the background (a free port if
#                                  none given), wait until it answers, print
#                                  its URL (http://127.0.0.1:PORT) on stdout
#   scripts/moto.sh stop [PORT]    stop it (the last one started if no PORT)
#   scripts/moto.sh url [PORT]     print the URL of a running one
# State (pid, log) lives in $IAMFS_MOTO_STATE (default /tmp/iamfs-moto-$UID).
# Only ever binds 127.0.0.1.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${IAMFS_VENV:-$repo/.venv}
state=${IAMFS_MOTO_STATE:-/tmp/iamfs-moto-$UID}
host=127.0.0.1
# Without this moto 5 knows no AWS-managed policies (aws-policies/ would be
# empty and attaching arn:aws:iam::aws:policy/... fails).
export MOTO_IAM_LOAD_MANAGED_POLICIES=${MOTO_IAM_LOAD_MANAGED_POLICIES:-true}

die() { printf 'moto.sh: %s\n' "$*" >&2; exit 1; }

free_port() {
    "$venv/bin/python" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

answers() { # port -> 0 when moto answers an HTTP request
    "$venv/bin/python" - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
port = sys.argv[1]
# moto_server's own dashboard endpoint; any HTTP answer means it is up.
try:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2).read()
except urllib.error.HTTPError:
    pass
PY
}

pick_port() { # [PORT] -> PORT, defaulting to the last started
    if [[ -n ${1:-} ]]; then
        printf '%s\n' "$1"
    elif [[ -f $state/last ]]; then
        cat "$state/last"
    else
        die "no PORT given and no moto_server started by this script"
    fi
}

running() { # port -> 0 if our pidfile points at a live process
    local pidf=$state/$1.pid
    [[ -f $pidf ]] && kill -0 "$(cat "$pidf")" 2>/dev/null
}

cmd=${1:-}
case $cmd in
start)
    [[ -x $venv/bin/moto_server ]] || die "$venv/bin/moto_server missing: run scripts/install-deps.sh"
    port=${2:-$(free_port)}
    [[ $port =~ ^[0-9]+$ ]] || die "bad port: $port"
    mkdir -p "$state"
    if running "$port"; then
        die "a moto_server started by this script already runs on port $port"
    fi
    # setsid: own session, so a Ctrl-C in the caller's terminal does not
    # reach it; stop kills it by pid.
    setsid "$venv/bin/moto_server" -H "$host" -p "$port" \
        >"$state/$port.log" 2>&1 </dev/null &
    pid=$!
    printf '%s\n' "$pid" >"$state/$port.pid"
    for _ in $(seq 1 150); do # 15 s
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$state/$port.log" >&2
            rm -f "$state/$port.pid"
            die "moto_server exited at start (port $port in use?)"
        fi
        if answers "$port"; then
            printf '%s\n' "$port" >"$state/last"
            printf 'http://%s:%s\n' "$host" "$port"
            exit 0
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$state/$port.pid"
    die "moto_server did not answer on port $port within 15 s (log: $state/$port.log)"
    ;;
stop)
    if [[ -z ${2:-} && ! -f $state/last ]]; then
        exit 0 # nothing of ours running: stopping is a no-op
    fi
    port=$(pick_port "${2:-}")
    pidf=$state/$port.pid
    if [[ -f $pidf ]]; then
        pid=$(cat "$pidf")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidf" "$state/$port.log"
    fi
    if [[ -f $state/last && $(cat "$state/last") == "$port" ]]; then
        rm -f "$state/last"
    fi
    ;;
url)
    port=$(pick_port "${2:-}")
    running "$port" || die "no moto_server of ours on port $port"
    printf 'http://%s:%s\n' "$host" "$port"
    ;;
*)
    die "usage: moto.sh start [PORT] | stop [PORT] | url [PORT]"
    ;;
esac
