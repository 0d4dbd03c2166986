#!/usr/bin/env bash
# Checks deploy/ against a built bpfdepot binary:
#
#  1. systemd-analyze: `verify` on the units in deploy/systemd, with the binary at the path
#     ExecStart= names (/usr/local/bin/bpfdepot): it is put there inside a private mount
#     namespace (a tmpfs over /usr/local/bin), so the host is left as it was and the units are
#     checked unchanged; anything verify prints fails. Then `security --offline` with a threshold.
#  2. The units under a real systemd: a systemd-nspawn container boots the host's systemd with
#     the units installed as README.md says; inside, bpfdepot.service must run with exactly the
#     capabilities and mounts it asks for, take its token as a credential, upload, patch, load
#     (pinning on bpffs), run, read and unload an arena object and an XDP/TC object, come back
#     with its database after bpffs was unmounted (bpfdepot-bpffs.service mounts it again), and
#     stop cleanly.
#  3. The same sandbox approximated on the host without systemd, from the unit's own settings:
#     uid 0 with only CapabilityBoundingSet=, NoNewPrivileges=, a seccomp allow list built from
#     SystemCallFilter= (expanded by `systemd-analyze syscall-filter`), RestrictAddressFamilies=
#     and MemoryDenyWriteExecute= as seccomp rules like systemd's, and a mount namespace in
#     which all but /dev and /proc is read-only, /tmp is private and only ReadWritePaths= and the
#     state directory are writable; it must refuse what it should (netlink, W+X memory, writes
#     to /etc), and a real `bpfdepot serve` in it does the same round trips.
#  4. Each capability in CapabilityBoundingSet= is needed: without it, a fixture that needs it
#     fails to load (and with the whole set it loads).
#  5. Kubernetes: `kubernetes-validate --strict` on deploy/kubernetes/*.yaml, for the oldest
#     Kubernetes the manifests support (1.30: securityContext.appArmorProfile) and the newest.
#
# Usage: scripts/check-deploy.sh BPFDEPOT_BINARY      (as root; Debian 12)
# Installs what it lacks: the `systemd` and `python3-seccomp` Debian packages, and
# kubernetes-validate from PyPI. Ends with one line "check-deploy: N passed, N failed, N skipped"
# and exits 1 when a check failed (2 when it could not run at all). Where the kernel refuses BPF
# arena maps (`bpfdepot features`), the arena round trips are skipped with its reason; a
# global-data object makes the same round trips everywhere (patch, load with pins, run, live
# read, unload).
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
SECURITY_THRESHOLD=30 # systemd-analyze security exposure x 10: fail above 3.0 (the unit is at 2.4 offline)
unit_dir=$root/deploy/systemd
manifests=("$root"/deploy/kubernetes/*.yaml)

# --- what it needs ---------------------------------------------------------------------------
missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v setpriv >/dev/null && command -v unshare >/dev/null || missing+=(util-linux)
command -v curl >/dev/null || missing+=(curl)
command -v capsh >/dev/null || missing+=(libcap2-bin)
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
passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
skip() { skipped=$((skipped + 1)); echo "SKIP $1: $2"; }
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
    if [[ $name != bpfdepot.service ]]; then
        # The bpffs helper runs as root with CAP_SYS_ADMIN (to mount) and must stay in the host's
        # mount namespace, which rules out most sandboxing: its score is shown, not judged.
        echo "     (systemd-analyze security $name: $(with_binary_installed systemd-analyze security --offline=true "$u" 2>&1 | grep -o 'Overall exposure level.*'))"
        continue
    fi
    if out=$(with_binary_installed systemd-analyze security --offline=true --threshold="$SECURITY_THRESHOLD" "$u" 2>&1); then
        pass "systemd-analyze security $name: $(grep -o 'Overall exposure level.*' <<<"$out")"
    else
        fail "systemd-analyze security $name (threshold $SECURITY_THRESHOLD)" "$out"
    fi
done

# --- 2. the units under a real systemd, in a systemd-nspawn container --------------------------
# The container: the host's /usr (through an overlay that adds the binary at /usr/local/bin), a
# minimal /etc holding the units of deploy/systemd unchanged and a token, loopback networking
# only, and a bpffs instance of its own at /sys/fs/bpf. Its systemd (the host's, 252 on Debian
# 12) boots, starts bpfdepot.service, then deploy-check.service runs the checks below inside and
# writes one PASS/FAIL line each. systemd-nspawn comes from the Debian package, unpacked into the
# work folder rather than installed (installing it would upgrade the host's systemd).
container_checks() {
    local ctr=$work/container nspawn_root=$work/nspawn machine=bpfdepot-check-$$ version lib
    version=$(apt-cache policy systemd-container | awk '/Candidate:/ {print $2}')
    if [[ -z "$version" || "$version" == "(none)" ]]; then
        apt-get update -qq
        version=$(apt-cache policy systemd-container | awk '/Candidate:/ {print $2}')
    fi
    mkdir -p "$nspawn_root/debs"
    (cd "$nspawn_root/debs" && apt-get download -qq "systemd-container=$version" "libsystemd-shared=$version") 2>&1 |
        grep -v 'Download is performed unsandboxed' || true
    for deb in "$nspawn_root"/debs/*.deb; do dpkg -x "$deb" "$nspawn_root/root"; done
    lib=$(dirname "$(find "$nspawn_root/root" -name 'libsystemd-shared-*.so' | head -1)")
    [[ -x "$nspawn_root/root/usr/bin/systemd-nspawn" && -d "$lib" ]] ||
        { fail "real systemd: could not unpack systemd-nspawn $version"; return; }

    mkdir -p "$ctr"/{etc/systemd/system/multi-user.target.wants,etc/bpfdepot,usr,usr-upper/local/bin,var,run,tmp,proc,sys,dev,root,results}
    local l
    for l in bin sbin lib lib64; do ln -s "usr/$l" "$ctr/$l"; done
    cp /etc/passwd /etc/group /etc/nsswitch.conf "$ctr/etc/"
    cp -a /etc/alternatives "$ctr/etc/"
    cp /usr/lib/os-release "$ctr/etc/os-release"
    : >"$ctr/etc/machine-id"
    cp "$unit_dir"/*.service "$ctr/etc/systemd/system/"
    cat >"$ctr/etc/systemd/system/deploy-check.service" <<'UNIT'
[Unit]
After=bpfdepot.service
Wants=bpfdepot.service
[Service]
Type=oneshot
ExecStart=/bin/bash /results/check.sh
UNIT
    ln -s ../bpfdepot.service ../deploy-check.service "$ctr/etc/systemd/system/multi-user.target.wants/"
    # The tokens file as deploy/systemd/bpfdepot.service's install steps make it: an admin token
    # for the round trips and a read token, as dashboards get.
    (umask 077 && "$bin" token add operator --scope admin --file "$ctr/etc/bpfdepot/tokens" >"$ctr/results/admin-token" &&
        "$bin" token add dashboards --scope read --file "$ctr/etc/bpfdepot/tokens" >"$ctr/results/read-token") ||
        { fail "real systemd: bpfdepot token add"; return; }
    install -m 0755 "$bin" "$ctr/usr-upper/local/bin/bpfdepot"
    cp "$work/fixtures/service_arena.o" "$work/fixtures/globals.o" "$work/fixtures/globals_run.o" "$ctr/results/"
    printf '%s' "$arena_refused" >"$ctr/results/arena-refused"
    cat >"$ctr/results/check.sh" <<'CHECK'
exec >/results/report 2>&1
T=$(cat /results/admin-token) R=$(cat /results/read-token) B=http://127.0.0.1:8080
auth=(-H "Authorization: Bearer $T")
check() { local name=$1 out; shift; if out=$("$@" 2>&1); then echo "PASS $name"; else echo "FAIL $name"; sed 's/^/     /' <<<"$out"; fi; }
json() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
main_pid() { systemctl show -p MainPID --value bpfdepot.service; }
wait_active() { for _ in $(seq 1 50); do curl -fsS "$B/healthz" >/dev/null 2>&1 && return 0; sleep 0.2; done; systemctl status bpfdepot.service --no-pager; return 1; }

check "bpfdepot.service is active and answers /healthz" wait_active
pid=$(main_pid)
caps() {
    local eff; eff=$(awk '/^CapEff/ {print $2}' /proc/$pid/status)
    [[ $(capsh --decode="$eff") == *=cap_net_admin,cap_perfmon,cap_bpf ]] || { capsh --decode="$eff"; return 1; }
    grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$pid/status && grep -q '^Seccomp:[[:space:]]*2' /proc/$pid/status &&
        grep -q '^Uid:[[:space:]]*0' /proc/$pid/status
}
check "service process: uid 0, capabilities exactly cap_bpf cap_perfmon cap_net_admin, no_new_privs, seccomp filter" caps
# A writable bpffs at /sys/fs/bpf in the service's namespace (mountinfo: the type follows "-").
writable_bpffs() {
    awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { type = $(i + 1); break } }
         $5 == "/sys/fs/bpf" && $6 ~ /^rw/ && type == "bpf" { f = 1 } END { exit !f }' /proc/$pid/mountinfo
}
mounts() {
    local m=/proc/$pid/mountinfo
    awk '$5 == "/" && $6 ~ /^ro/ {f=1} END {exit !f}' $m || { echo "/ not read-only"; return 1; }
    awk '$5 == "/sys/fs/bpf" && $6 ~ /^ro/ {f=1} END {exit f}' $m || { echo "/sys/fs/bpf read-only"; grep bpf $m; return 1; }
    writable_bpffs || { echo "no writable bpffs at /sys/fs/bpf"; return 1; }
    awk '$5 == "/var/lib/bpfdepot" && $6 ~ /^rw/ {f=1} END {exit !f}' $m || { echo "state directory not writable"; return 1; }
    awk '$5 == "/proc/sys" && $6 ~ /^ro/ {f=1} END {exit !f}' $m || { echo "/proc/sys not read-only"; return 1; }
}
check "service mount namespace: / and /proc/sys read-only, /sys/fs/bpf and /var/lib/bpfdepot writable" mounts
check "the tokens file reaches the service as a credential" test -r /run/credentials/bpfdepot.service/tokens
unauthorized() { [[ $(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @/results/service_arena.o "$B/v1/objects?name=x.o") == 401 ]]; }
check "an upload without the token is refused (401)" unauthorized
anonymous_read() { [[ $(curl -s -o /dev/null -w '%{http_code}' "$B/v1/objects") == 401 ]]; }
check "a read without the token is refused too (401)" anonymous_read
dashboard_token() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $R" "$B/v1/objects") == 200 ]] || { echo "read token: GET not 200"; return 1; }
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $R" "$B/metrics") == 200 ]] || { echo "read token: /metrics not 200"; return 1; }
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $R" -X POST --data-binary @/results/globals.o "$B/v1/objects?name=x.o") == 403 ]] ||
        { echo "read token: upload not 403"; return 1; }
}
check "the dashboards' read token reads and /metrics, and is refused an upload (403)" dashboard_token

arena() {
    local id load retval value
    id=$(curl -fsS "${auth[@]}" --data-binary @/results/service_arena.o "$B/v1/objects?name=service_arena.o" | json id)
    curl -fsS -X PATCH "${auth[@]}" -d '{"svc_counter": 41}' "$B/v1/objects/$id/variables" >/dev/null
    load=$(curl -fsS -X POST "${auth[@]}" "$B/v1/objects/$id/loads" | json id)
    [[ -n $(ls /sys/fs/bpf/bpfdepot/$load/maps) ]] || { echo "no pins under /sys/fs/bpf/bpfdepot/$load"; return 1; }
    retval=$(curl -fsS -X POST "${auth[@]}" "$B/v1/loads/$load/programs/svc_run/run" | json retval)
    value=$(curl -fsS "${auth[@]}" "$B/v1/loads/$load/variables/svc_counter" | json value)
    [[ $retval == 42 && $value == 42 ]] || { echo "retval $retval, svc_counter $value (expected 42, 42)"; return 1; }
    curl -fsS -X DELETE "${auth[@]}" "$B/v1/loads/$load" >/dev/null
    [[ ! -e /sys/fs/bpf/bpfdepot/$load ]] || { echo "pins left after unload"; return 1; }
}
# A global-data object makes the same round trip everywhere: patched input 41, one run of
# compute gives 3*41-7 = 116 and leaves input at 42.
data() {
    local id load retval value
    id=$(curl -fsS "${auth[@]}" --data-binary @/results/globals_run.o "$B/v1/objects?name=globals_run.o" | json id)
    curl -fsS -X PATCH "${auth[@]}" -d '{"input": 41}' "$B/v1/objects/$id/variables" >/dev/null
    load=$(curl -fsS -X POST "${auth[@]}" "$B/v1/objects/$id/loads" | json id)
    [[ -n $(ls /sys/fs/bpf/bpfdepot/$load/maps) ]] || { echo "no pins under /sys/fs/bpf/bpfdepot/$load"; return 1; }
    retval=$(curl -fsS -X POST "${auth[@]}" "$B/v1/loads/$load/programs/compute/run" | json retval)
    value=$(curl -fsS "${auth[@]}" "$B/v1/loads/$load/variables/input" | json value)
    [[ $retval == 116 && $value == 42 ]] || { echo "retval $retval, input $value (expected 116, 42)"; return 1; }
    curl -fsS -X DELETE "${auth[@]}" "$B/v1/loads/$load" >/dev/null
    [[ ! -e /sys/fs/bpf/bpfdepot/$load ]] || { echo "pins left after unload"; return 1; }
}
arena_refused=$(cat /results/arena-refused)
# The arena round trip where the kernel has arenas; else the data one, and the reason.
round_trip() { if [[ -z $arena_refused ]]; then arena; else data; fi; }
if [[ -z $arena_refused ]]; then
    check "arena object: upload, patch, load with pins on bpffs, run (42), live read (42), unload" arena
else
    echo "SKIP arena object: upload, patch, load with pins on bpffs, run (42), live read (42), unload: $arena_refused"
fi
check "global-data object: upload, patch, load with pins on bpffs, run (116), live read (42), unload" data
xdp() {
    local id load
    id=$(curl -fsS "${auth[@]}" --data-binary @/results/globals.o "$B/v1/objects?name=globals.o" | json id)
    load=$(curl -fsS -X POST "${auth[@]}" "$B/v1/objects/$id/loads" | json id)
    curl -fsS -X POST "${auth[@]}" -d "{\"data\": \"$(head -c 64 /dev/zero | base64 -w0)\"}" \
        "$B/v1/loads/$load/programs/xdp_prog/run" >/dev/null
    curl -fsS -X DELETE "${auth[@]}" "$B/v1/loads/$load" >/dev/null
}
check "XDP/TC object: load, run the XDP program, unload" xdp

# bpffs gone (unmounted in this container's namespace): a restart mounts it again through
# bpfdepot-bpffs.service, and the database survives the restart.
remount() {
    umount /sys/fs/bpf && ! mountpoint -q /sys/fs/bpf || { echo "could not unmount bpffs"; return 1; }
    systemctl restart bpfdepot.service && wait_active || return 1
    mountpoint -q /sys/fs/bpf || { echo "bpffs not mounted again"; return 1; }
    pid=$(main_pid)
    writable_bpffs || { echo "service sees no writable bpffs"; grep bpf /proc/$pid/mountinfo; return 1; }
    [[ $(curl -fsS "${auth[@]}" "$B/v1/objects" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(len(d["objects"] if isinstance(d, dict) else d))') -ge 2 ]] ||
        { echo "objects lost across the restart"; return 1; }
    round_trip
}
check "after bpffs was unmounted: restart mounts it again, objects kept, $([[ -z $arena_refused ]] && echo arena || echo global-data) round trip" remount
stop() {
    systemctl stop bpfdepot.service
    [[ $(systemctl show -p Result --value bpfdepot.service) == success ]] || { systemctl status bpfdepot.service --no-pager; return 1; }
    ! journalctl -u bpfdepot.service -o cat | grep -n 'failed:'
}
check "systemctl stop: clean exit, no handler errors logged" stop
echo "exposure: $(systemd-analyze security bpfdepot.service --no-pager 2>/dev/null | tail -1)"
echo END
systemctl poweroff
CHECK
    # The binary's libraries outside /usr (the Swift runtime, say), read-only.
    local binds=() dir
    for dir in $(ldd "$bin" | awk '$3 ~ /^\// {print $3}' | xargs -n1 dirname | sort -u); do
        case $(realpath "$dir") in /usr/* | /lib/* | /lib64/*) ;; *) binds+=(--bind-ro="$(realpath "$dir")") ;; esac
    done
    mkdir -p "$work/bpffs"
    mount -t bpf -o mode=0700 bpf "$work/bpffs"
    local nspawn_state_existed=0
    [[ -e /run/systemd/nspawn ]] && nspawn_state_existed=1
    local status=0
    LD_LIBRARY_PATH=$lib timeout 300 "$nspawn_root/root/usr/bin/systemd-nspawn" --quiet \
        --directory="$ctr" --machine="$machine" --register=no --keep-unit --boot --console=pipe \
        --private-network --overlay=/usr:"$ctr/usr-upper":/usr "${binds[@]}" \
        --bind="$work/bpffs":/sys/fs/bpf --capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN \
        --system-call-filter='bpf perf_event_open' >"$work/nspawn.log" 2>&1 || status=$?
    umount "$work/bpffs" || true
    rm -rf "/run/systemd/nspawn/propagate/$machine"
    [[ $nspawn_state_existed -eq 1 ]] || rm -rf /run/systemd/nspawn
    local line report=$ctr/results/report
    if [[ ! -f "$report" ]] || ! grep -qx END "$report"; then
        fail "real systemd: the container run did not finish (systemd-nspawn exited $status)" \
            "$(tail -n 40 "$report" "$work/nspawn.log" 2>/dev/null)"
        return
    fi
    while IFS= read -r line; do
        case $line in
            "PASS "*) pass "real systemd: ${line#PASS }" ;;
            "FAIL "*) fail "real systemd: ${line#FAIL }" ;;
            "SKIP "*) skipped=$((skipped + 1)); echo "SKIP real systemd: ${line#SKIP }" ;;
            "     "*) echo "$line" >&2 ;;
            exposure:*) echo "     (inside the container) ${line}" ;;
        esac
    done <"$report"
}

# --- 3. the unit's sandbox, around a live server ---------------------------------------------
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
read -r -a rw <<<"$1"; shift
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
for f in service_arena globals globals_run perfmon; do
    "$clang" "${cflags[@]}" -c "$root/Tests/Fixtures/$f.bpf.c" -o "$work/fixtures/$f.o"
done
# Empty where this kernel creates BPF arena maps; else the probe's reason.
arena_refused=$("$bin" features --json | /usr/bin/python3 -c 'import json, sys
f = next(x for x in json.load(sys.stdin)["features"] if x["name"] == "arena_maps")
print("" if f["available"] else f["reason"])')
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
    value=$(curl -fsS "${auth[@]}" "$base/v1/loads/$load/variables/svc_counter" | json value)
    [[ "$retval" == 42 && "$value" == 42 ]] || { echo "svc_run: expected retval 42 and svc_counter 42, found $retval and $value"; return 1; }
    curl -fsS -X DELETE "${auth[@]}" "$base/v1/loads/$load" >/dev/null
    [[ ! -e "$pins" ]] || { echo "$pins is still there after the unload"; return 1; }
    echo "load $load: retval $retval, pins at $pins, removed on unload"
}
data_round_trip() {
    local id load pins retval value
    id=$(curl -fsS -X POST "${auth[@]}" --data-binary "@$work/fixtures/globals_run.o" \
        "$base/v1/objects?name=globals_run.o" | json id)
    curl -fsS -X PATCH "${auth[@]}" -H 'Content-Type: application/json' -d '{"input": 41}' \
        "$base/v1/objects/$id/variables" >/dev/null
    load=$(curl -fsS -X POST "${auth[@]}" "$base/v1/objects/$id/loads" | json id)
    pins=$pin_root/$load
    [[ -d "$pins" && $(stat -f -c %T "$pins") == bpf_fs && -n $(ls "$pins") ]] || { echo "no pins on bpffs at $pins"; return 1; }
    retval=$(curl -fsS -X POST "${auth[@]}" "$base/v1/loads/$load/programs/compute/run" | json retval)
    value=$(curl -fsS "${auth[@]}" "$base/v1/loads/$load/variables/input" | json value)
    [[ "$retval" == 116 && "$value" == 42 ]] || { echo "compute: expected retval 116 and input 42, found $retval and $value"; return 1; }
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
if [[ -z "$arena_refused" ]]; then
    step "sandboxed serve: arena object patched, loaded, pinned, run, read, unloaded" arena_round_trip
else
    skip "sandboxed serve: arena object patched, loaded, pinned, run, read, unloaded" "$arena_refused"
fi
step "sandboxed serve: global-data object patched, loaded, pinned, run, read, unloaded" data_round_trip
step "sandboxed serve: XDP/TC object loaded, XDP program run, unloaded" xdp_tc_round_trip
stop_result=""
stop_server
# shellcheck disable=SC2016 # (expanded by the inner bash)
step "sandboxed serve stops cleanly on SIGTERM, no handler errors logged" \
    bash -c '[[ -z "$1" ]] || { echo "$1"; exit 1; }; ! grep -n "failed:" "$2"' _ "$stop_result" "$work/server.log"

container_checks

# --- 4. every capability is needed -----------------------------------------------------------
# The fixture that needs each capability, and what the kernel says without it.
# CAP_PERFMON: tracing program types need it on every kernel; arenas need it too (checked
# below where the kernel has them).
declare -A needs=(
    [CAP_BPF]="globals_run:BPF_MAP_CREATE.*EPERM"
    [CAP_PERFMON]="perfmon:count_entries.*BPF_PROG_LOAD.*EPERM"
    [CAP_NET_ADMIN]="globals:BPF_PROG_LOAD.*EPERM"
)
fixtures=("$work"/fixtures/{globals_run,globals,perfmon}.o)
[[ -n "$arena_refused" ]] || fixtures+=("$work/fixtures/service_arena.o")
# shellcheck disable=SC2016 # (expanded by the inner bash)
check "sandboxed bpfdepot load with $caps: every fixture loads" \
    sandboxed "$caps" bash -ec 'for f in "$@"; do "'"$work"'/bpfdepot" load "$f"; done' _ \
    "${fixtures[@]}"
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
if [[ -z "$arena_refused" && " $caps " == *" CAP_PERFMON "* ]]; then
    # shellcheck disable=SC2086
    less=$(for c in $caps; do [[ $c == CAP_PERFMON ]] || echo "$c"; done)
    # shellcheck disable=SC2086
    if out=$(sandboxed "$less" "$work/bpfdepot" load "$work/fixtures/service_arena.o" 2>&1); then
        fail "CAP_PERFMON is needed for arenas: service_arena.o loaded without it"
    elif grep -q "CAP_BPF and CAP_PERFMON are required to use arena" <<<"$out"; then
        pass "CAP_PERFMON is needed for arenas: without it service_arena.o fails"
    else
        fail "CAP_PERFMON is needed for arenas: service_arena.o failed without it, but not for that" "$out"
    fi
else
    skip "CAP_PERFMON is needed for arenas" "${arena_refused:-the unit has no CAP_PERFMON}"
fi

# --- 5. Kubernetes manifests -----------------------------------------------------------------
for v in "${KUBERNETES_VERSIONS[@]}"; do
    for m in "${manifests[@]}"; do
        check "kubernetes-validate --strict -k $v $(basename "$m")" \
            python3 -m kubernetes_validate --strict --quiet -k "$v" "$m"
    done
done

echo "check-deploy: $passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
