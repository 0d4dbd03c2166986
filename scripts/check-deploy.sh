#!/usr/bin/env bash
# Checks deploy/ against a built bpfdepot binary:
#
#  1. systemd: `systemd-analyze verify` on each unit in deploy/systemd, with the binary at the
#     path its ExecStart= names (/usr/local/bin/bpfdepot): the binary is put there inside a
#     private mount namespace (a tmpfs over /usr/local/bin), so the host is left as it was and
#     the unit is checked unchanged. Then `systemd-analyze security --offline` with a threshold.
#  2. The unit's sandbox, approximated without a running systemd (there is none in CI): the
#     settings are read from the unit itself. uid 0 with only CapabilityBoundingSet=,
#     NoNewPrivileges=, a seccomp allow list built from SystemCallFilter= (expanded by
#     `systemd-analyze syscall-filter`), RestrictAddressFamilies= and MemoryDenyWriteExecute=
#     as seccomp rules like systemd's, and a mount namespace in which everything but /dev and
#     /proc is read-only, /tmp and /var/tmp are private and only ReadWritePaths= and the state
#     directory are writable. In it, a real `bpfdepot serve` uploads, patches, loads, runs,
#     reads and unloads an arena object and an XDP/TC object, pinning under bpffs.
#  3. Each capability in CapabilityBoundingSet= is needed: without it, a fixture that needs it
#     fails to load (and with the whole set it loads).
#  4. Kubernetes: `kubernetes-validate --strict` on deploy/kubernetes/*.yaml, for the oldest
#     Kubernetes the manifests support (1.30: securityContext.appArmorProfile) and the newest.
#
# Usage: scripts/check-deploy.sh BPFDEPOT_BINARY      (as root; Debian 12)
# Installs what it lacks: the `systemd` and `python3-seccomp` Debian packages, and
# kubernetes-validate from PyPI. Ends with one line "check-deploy: N passed, N failed" and exits
# 1 when a check failed (2 when it could not run at all).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

die() { echo "check-deploy.sh: $*" >&2; exit 2; }
[[ $# -eq 1 ]] || die "usage: scripts/check-deploy.sh BPFDEPOT_BINARY"
[[ -x "$1" ]] || die "no executable bpfdepot at '$1'"
bin=$(realpath "$1")
[[ $(id -u) -eq 0 ]] || die "needs root (BPF loads, mount namespaces)"

KUBERNETES_VALIDATE_VERSION=1.37.0
KUBERNETES_VERSIONS=(1.30.0 1.37.0)
SECURITY_THRESHOLD=30 # systemd-analyze security exposure x 10: fail above 3.0 (the unit is at 2.2)
unit_dir=$root/deploy/systemd
manifests=("$root"/deploy/kubernetes/*.yaml)

# --- what it needs ---------------------------------------------------------------------------
missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v setpriv >/dev/null && command -v unshare >/dev/null || missing+=(util-linux)
command -v curl >/dev/null || missing+=(curl)
# The Debian python (python3-seccomp is built for it), whatever `python3` is on PATH.
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || missing+=(python3 python3-seccomp)
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "check-deploy.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"

clang=${CLANG:-}
if [[ -z "$clang" ]]; then
    swift=$(command -v swift || true)
    if [[ -n "$swift" && -x "$(dirname "$(realpath "$swift")")/clang" ]]; then
        clang=$(dirname "$(realpath "$swift")")/clang
    else
        clang=clang
    fi
fi

# --- bookkeeping -----------------------------------------------------------------------------
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
# shellcheck disable=SC2001 # (indents every line of a multi-line text)
fail() { failed=$((failed + 1)); echo "FAIL $1" >&2; [[ -z "${2:-}" ]] || sed 's/^/     /' <<<"$2" >&2; }
# check NAME COMMAND...: runs it, passes on exit 0, shows its output on failure.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}

# Not under /tmp: the sandbox mounts a private /tmp.
work=$(mktemp -d /run/bpfdepot-check.XXXXXX)
pin_root=/sys/fs/bpf/bpfdepot-check-$$
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$pin_root" "$work"
}
trap cleanup EXIT

# --- 1. systemd-analyze ----------------------------------------------------------------------
# In a private mount namespace: a tmpfs over /usr/local/bin holding only the binary.
with_binary_installed() {
    # shellcheck disable=SC2016 # (expanded by the inner bash)
    unshare --mount --propagation private -- bash -ec '
        mount -t tmpfs -o mode=0755 tmpfs /usr/local/bin
        install -m 0755 "$1" /usr/local/bin/bpfdepot
        shift
        "$@"' with_binary_installed "$bin" "$@"
}
units=("$unit_dir"/*.service)
for u in "${units[@]}"; do
    name=$(basename "$u")
    # verify exits 0 on a directive it ignores (an unknown key, a value it cannot parse) and only
    # says so, hence: anything it prints is a failure too.
    if out=$(with_binary_installed systemd-analyze verify --man=no "$u" 2>&1) && [[ -z "$out" ]]; then
        pass "systemd-analyze verify $name"
    else
        fail "systemd-analyze verify $name" "$out"
    fi
    if out=$(with_binary_installed systemd-analyze security --offline=true --threshold="$SECURITY_THRESHOLD" "$u" 2>&1); then
        pass "systemd-analyze security $name: $(grep -o 'Overall exposure level.*' <<<"$out")"
    else
        fail "systemd-analyze security $name (threshold $SECURITY_THRESHOLD)" "$out"
    fi
done

# --- 2. the unit's sandbox, around a live server ---------------------------------------------
unit=$unit_dir/bpfdepot.service
directive() { sed -n "s/^$1=//p" "$unit"; }
caps=$(directive CapabilityBoundingSet | xargs)
syscall_filter=$(directive SystemCallFilter)
families=$(directive RestrictAddressFamilies | xargs)
mdwe=$(directive MemoryDenyWriteExecute)
nnp=$(directive NoNewPrivileges)
read_write=$(directive ReadWritePaths | xargs)
[[ -n "$caps" && -n "$syscall_filter" && -n "$families" ]] ||
    die "$unit: expected CapabilityBoundingSet=, SystemCallFilter= and RestrictAddressFamilies="
[[ $(wc -l <<<"$syscall_filter") -eq 1 && "$syscall_filter" != "~"* ]] ||
    die "$unit: only one allow-list SystemCallFilter= line is emulated here, found: $syscall_filter"

# "CAP_BPF CAP_PERFMON" -> "-all,+bpf,+perfmon" for setpriv
setpriv_caps() {
    local out=-all c
    for c in "$@"; do c=${c,,}; out+=",+${c#cap_}"; done
    echo "$out"
}
# Syscall names of a filter, groups expanded recursively.
expand_syscalls() {
    local item
    for item in "$@"; do
        if [[ $item == @* ]]; then
            # shellcheck disable=SC2046
            expand_syscalls $(systemd-analyze syscall-filter "$item" | tail -n +2 | grep -v '^ *#')
        else
            echo "$item"
        fi
    done
}
# shellcheck disable=SC2086
expand_syscalls $syscall_filter | sort -u >"$work/allowed-syscalls"
# shellcheck disable=SC2086
family_numbers=$(/usr/bin/python3 -c 'import socket, sys; print(",".join(str(int(getattr(socket, f))) for f in sys.argv[1:]))' $families)

# seccomp like systemd's: an allow list (others fail with EPERM, as SystemCallErrorNumber=EPERM
# says), socket() outside the allowed families fails with EAFNOSUPPORT, and with
# MemoryDenyWriteExecute= mmap(PROT_WRITE|PROT_EXEC), mprotect/pkey_mprotect(PROT_EXEC) and
# shmat(SHM_EXEC) fail with EPERM.
cat >"$work/sandbox.py" <<'PY'
import errno, os, sys
import seccomp

allowed_file, families, mdwe = sys.argv[1], {int(f) for f in sys.argv[2].split(",")}, sys.argv[3] == "yes"
command = sys.argv[sys.argv.index("--") + 1:]

allow = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
for name in open(allowed_file).read().split():
    try:
        allow.add_rule(seccomp.ALLOW, name)
    except (RuntimeError, ValueError):
        pass  # a name this libseccomp or architecture does not know, as systemd skips it

deny = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
if mdwe:
    PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
    deny.add_rule(seccomp.ERRNO(errno.EPERM), "mmap",
                  seccomp.Arg(2, seccomp.MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC))
    for name in ("mprotect", "pkey_mprotect"):
        deny.add_rule(seccomp.ERRNO(errno.EPERM), name, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC))
    deny.add_rule(seccomp.ERRNO(errno.EPERM), "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC))
top = max(families)
for family in range(top):
    if family not in families:
        deny.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, family))
deny.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.GT, top))

deny.load()   # first: seccomp(2) itself is not on the allow list
allow.load()
os.execvp(command[0], command)
PY

# Mount namespace setup, then exec "$@": ProtectSystem=strict + ProtectKernelTunables= (all but
# /dev and /proc read-only), ProtectHome= (empty /home, /root), PrivateTmp=, ReadWritePaths=.
cat >"$work/mounts.sh" <<'SH'
set -e
rw=($1); shift
awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r m; do
    case $m in /dev | /dev/* | /proc | /proc/*) continue ;; esac
    mount -o remount,bind,ro "$m" 2>/dev/null || echo "mounts.sh: left $m as it was" >&2
done
for d in /tmp /var/tmp; do mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$d"; done
for d in /home /root; do [[ -d $d ]] && mount -t tmpfs -o mode=0755,ro tmpfs "$d"; done
for p in "${rw[@]}"; do
    mountpoint -q "$p" || mount --bind "$p" "$p"
    mount -o remount,bind,rw "$p"
done
exec "$@"
SH

mkdir -p "$work/state" "$work/fixtures"
install -m 0755 "$bin" "$work/bpfdepot"
cflags=(-target bpf -O2 -g -I "$root/Tests/Fixtures")
multiarch=$(gcc -print-multiarch 2>/dev/null || true)
[[ -n "$multiarch" && -d "/usr/include/$multiarch" ]] && cflags+=(-I "/usr/include/$multiarch")
for f in service_arena globals globals_run; do
    "$clang" "${cflags[@]}" -c "$root/Tests/Fixtures/$f.bpf.c" -o "$work/fixtures/$f.o"
done
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$token" >"$work/token"

# sandboxed CAPS COMMAND...: COMMAND as the unit would run it, with the capabilities CAPS.
# It execs (unshare, bash, setpriv and python each exec the next), so call it only in a
# subshell: $(...), or with & where $! is then COMMAND's own process.
sandboxed() {
    local caps=$1
    shift
    local nnp_flag=()
    [[ "$nnp" == yes ]] && nnp_flag=(--no-new-privs)
    # shellcheck disable=SC2086
    exec unshare --mount --propagation private -- bash "$work/mounts.sh" "$read_write $work/state" \
        setpriv --bounding-set="$(setpriv_caps $caps)" --inh-caps=-all "${nnp_flag[@]}" -- \
        /usr/bin/python3 "$work/sandbox.py" "$work/allowed-syscalls" "$family_numbers" "${mdwe:-no}" -- "$@"
}

# The sandbox holds: no netlink socket, no writable+executable memory, no write outside the
# writable paths. (Each must fail, or the emulation would prove nothing.)
sandbox_refuses() { # sandbox_refuses WHAT EXPECTED-ERROR COMMAND...
    local what=$1 expected=$2
    shift 2
    if out=$(sandboxed "$caps" "$@" 2>&1); then
        fail "sandbox refuses $what" "it succeeded: $out"
    elif grep -q "$expected" <<<"$out"; then
        pass "sandbox refuses $what ($expected)"
    else
        fail "sandbox refuses $what: failed, but without '$expected'" "$out"
    fi
}
sandbox_refuses "a netlink socket" "Address family not supported" \
    /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)'
if [[ "$mdwe" == yes ]]; then
    sandbox_refuses "a writable and executable mapping" "Operation not permitted" \
        /usr/bin/python3 -c 'import mmap; mmap.mmap(-1, 4096, prot=7)'
fi
sandbox_refuses "a write to /etc" "Read-only file system" touch /etc/bpfdepot-check-write-test

# shellcheck disable=SC2086
sandboxed "$caps" "$work/bpfdepot" serve --db "$work/state/bpfdepot.sqlite" --listen 127.0.0.1:0 \
    --pin-root "$pin_root" --token-file "$work/token" >"$work/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 100); do
    port=$(grep -oE 'address=127\.0\.0\.1:[0-9]+' "$work/server.log" | head -1 | cut -d: -f2 || true)
    [[ -n "$port" ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done

base=http://127.0.0.1:$port
auth=(-H "Authorization: Bearer $token")
json() { /usr/bin/python3 -c 'import json, sys; v = json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[k]
print(v)' "$1"; }

# The API steps, one check each; a step after a failed one is skipped (it would fail too).
api_ok=1
step() {
    local name=$1
    shift
    if [[ $api_ok -eq 0 ]]; then fail "$name (skipped: an earlier step failed)"; return; fi
    if out=$("$@" 2>&1); then pass "$name"; else api_ok=0; fail "$name" "$out"$'\n'"server log:"$'\n'"$(cat "$work/server.log")"; fi
}
serve_started() { [[ -n "$port" ]] && curl -fsS "$base/healthz" >/dev/null; }
arena_round_trip() {
    local id load pins
    id=$(curl -fsS -X POST "${auth[@]}" --data-binary "@$work/fixtures/service_arena.o" \
        "$base/v1/objects?name=service_arena.o" | json id)
    curl -fsS -X PATCH "${auth[@]}" -H 'Content-Type: application/json' -d '{"svc_counter": 41}' \
        "$base/v1/objects/$id/variables" >/dev/null
    load=$(curl -fsS -X POST "${auth[@]}" "$base/v1/objects/$id/loads" | json id)
    # `serve --pin-root R` pins load N under R/N.
    pins=$pin_root/$load
    [[ -d "$pins" && $(stat -f -c %T "$pins") == bpf_fs && -n $(ls "$pins") ]] || { echo "no pins on bpffs at $pins"; return 1; }
    local retval value
    retval=$(curl -fsS -X POST "${auth[@]}" "$base/v1/loads/$load/programs/svc_run/run" | json retval)
    value=$(curl -fsS "$base/v1/loads/$load/variables/svc_counter" | json value)
    [[ "$retval" == 42 && "$value" == 42 ]] || { echo "svc_run: expected retval 42 and svc_counter 42, found $retval and $value"; return 1; }
    curl -fsS -X DELETE "${auth[@]}" "$base/v1/loads/$load" >/dev/null
    [[ ! -e "$pins" ]] || { echo "$pins is still there after the unload"; return 1; }
    echo "load $load: retval $retval, pins at $pins, removed on unload"
}
xdp_tc_round_trip() {
    local id load
    id=$(curl -fsS -X POST "${auth[@]}" --data-binary "@$work/fixtures/globals.o" \
        "$base/v1/objects?name=globals.o" | json id)
    load=$(curl -fsS -X POST "${auth[@]}" "$base/v1/objects/$id/loads" | json id)
    curl -fsS -X POST "${auth[@]}" -H 'Content-Type: application/json' \
        -d "{\"data\": \"$(head -c 64 /dev/zero | base64 -w0)\"}" \
        "$base/v1/loads/$load/programs/xdp_prog/run" >/dev/null
    curl -fsS -X DELETE "${auth[@]}" "$base/v1/loads/$load" >/dev/null
}
# (In this shell, not in a step's subshell: the server is this shell's child.)
stop_server() {
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$server_pid" 2>/dev/null; then
        stop_result="still running 10 s after SIGTERM"
        kill -KILL "$server_pid"
    fi
    local status=0
    wait "$server_pid" || status=$?
    server_pid=""
    [[ $status -eq 0 ]] || stop_result="exited $status after SIGTERM"
}
step "sandboxed serve starts and answers /healthz" serve_started
step "sandboxed serve: arena object patched, loaded, pinned, run, read, unloaded" arena_round_trip
step "sandboxed serve: XDP/TC object loaded, XDP program run, unloaded" xdp_tc_round_trip
stop_result=""
stop_server
# shellcheck disable=SC2016 # (expanded by the inner bash)
step "sandboxed serve stops cleanly on SIGTERM, no handler errors logged" \
    bash -c '[[ -z "$1" ]] || { echo "$1"; exit 1; }; ! grep -n "failed:" "$2"' _ "$stop_result" "$work/server.log"

# --- 3. every capability is needed -----------------------------------------------------------
# The fixture that needs each capability, and what the kernel says without it.
declare -A needs=(
    [CAP_BPF]="globals_run:BPF_MAP_CREATE.*EPERM"
    [CAP_PERFMON]="service_arena:CAP_BPF and CAP_PERFMON are required to use arena"
    [CAP_NET_ADMIN]="globals:BPF_PROG_LOAD.*EPERM"
)
# shellcheck disable=SC2016 # (expanded by the inner bash)
check "sandboxed bpfdepot load with $caps: every fixture loads" \
    sandboxed "$caps" bash -ec 'for f in "$@"; do "'"$work"'/bpfdepot" load "$f"; done' _ \
    "$work"/fixtures/{globals_run,service_arena,globals}.o
for cap in $caps; do
    if [[ -z "${needs[$cap]:-}" ]]; then
        fail "$cap: no fixture here shows it is needed (add one to scripts/check-deploy.sh or drop it from the unit)"
        continue
    fi
    fixture=${needs[$cap]%%:*} expected=${needs[$cap]#*:}
    # shellcheck disable=SC2086
    less=$(for c in $caps; do [[ $c == "$cap" ]] || echo "$c"; done)
    # shellcheck disable=SC2086
    if out=$(sandboxed "$less" "$work/bpfdepot" load "$work/fixtures/$fixture.o" 2>&1); then
        fail "$cap is needed: $fixture.o loaded without it"
    elif grep -qE "$expected" <<<"$out"; then
        pass "$cap is needed: without it $fixture.o fails ($(grep -oE "$expected" <<<"$out" | head -1))"
    else
        fail "$cap is needed: $fixture.o failed without it, but not with /$expected/" "$out"
    fi
done

# --- 4. Kubernetes manifests -----------------------------------------------------------------
for v in "${KUBERNETES_VERSIONS[@]}"; do
    for m in "${manifests[@]}"; do
        check "kubernetes-validate --strict -k $v $(basename "$m")" \
            python3 -m kubernetes_validate --strict --quiet -k "$v" "$m"
    done
done

echo "check-deploy: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
