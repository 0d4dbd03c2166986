#!/usr/bin/env python3
"""Run a command as root inside a VM booted on a Debian kernel package, over this host's root.

    scripts/vmtest.py --kernel 6.12 [--memory 6G] [--timeout 1800] -- COMMAND [ARG...]

The kernel package is fetched with `apt-get download` (a series such as `6.12` or `6.1` is
resolved to the newest `linux-image-*-amd64-unsigned` package of that series the archive has; a
full package name is taken as it is) and cached, with the initramfs built for it, under
--cache (default /var/cache/bpfdepot-vm). qemu boots it under TCG (KVM guests die on the nested
hosts we run on); a busybox initramfs loads the 9p modules from the package, mounts this host's
root read-only over 9p, gives it fresh tmpfs on /tmp, /run, /boot (holding the package's
config, which the loader reads for __kconfig externs) and /dev/shm, a bpffs at /sys/fs/bpf and
a writable 9p share for results, then chroots and runs COMMAND from the current directory with
this environment's PATH and HOME. The current directory (and each --keep path) stays visible
even under /tmp or /run. COMMAND's output is streamed here; its exit status is ours.
Files the command writes under $VMTEST_RESULTS (the writable share) are kept in --results.

Exit status: COMMAND's, or 125 when the VM failed (no package, boot failure, timeout).
"""
from __future__ import annotations

import argparse
import hashlib
import lzma
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VM_FAILED = 125
# Modules the init needs, by name; their dependencies are found with depmod. virtio and
# virtio_pci are built in on 6.12 and modules on 6.1: absent names are skipped.
WANTED_MODULES = ["virtio_pci", "9pnet_virtio", "9p", "veth"]
RESULTS_MOUNT = "/tmp/vmtest-results"
# qboot starts a -kernel guest faster than SeaBIOS and prints nothing on the serial console.
QBOOT = "/usr/share/qemu/qboot.rom"

INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /newroot /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod "/modules/$m" || echo "vmtest: insmod $m failed"; done
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /newroot; then
    echo "vmtest: cannot mount the host root"; poweroff -f
fi
mkdir -p /results /host
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /results
# A second view of the host root that the tmpfs below do not cover: paths under /tmp or /run
# that the command needs (its working directory, say) are bound back from it.
mount --bind /newroot /host
mount -t tmpfs -o mode=1777 tmp /newroot/tmp
mount -t tmpfs run /newroot/run
mount -t tmpfs boot /newroot/boot && cp /config-* /newroot/boot/
for p in $(cat /results/keep-paths 2>/dev/null); do
    mkdir -p "/newroot$p" && mount --bind "/host$p" "/newroot$p" || echo "vmtest: cannot keep $p"
done
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -t tmpfs -o mode=1777 shm /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t bpf bpf /newroot/sys/fs/bpf
mkdir -p /newroot@RESULTS@
mount --move /results /newroot@RESULTS@
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
echo "vmtest: kernel $(uname -r) up after $(cut -d' ' -f1 /newroot/proc/uptime) s"
chroot /newroot /bin/sh @RESULTS@/run.sh
echo "vmtest: command exited $?"
sync
poweroff -f
"""


def log(msg: str) -> None:
    print(f"vmtest: {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kw)


def resolve_package(kernel: str) -> str:
    """`6.12` → the newest linux-image-6.12.*-amd64-unsigned the archive has; a name as it is."""
    if kernel.startswith("linux-image-"):
        return kernel
    if not re.fullmatch(r"\d+\.\d+", kernel):
        raise SystemExit(f"vmtest: --kernel takes a series such as 6.12 or a package name, not {kernel!r}")
    out = subprocess.run(["apt-cache", "search", "--names-only", f"^linux-image-{re.escape(kernel)}[.-].*-amd64-unsigned$"],
                         capture_output=True, text=True).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    # Only plain amd64 flavours: cloud kernels have no 9p, rt and dbg are not what we test.
    names = [n for n in names if not re.search(r"-(cloud|rt)-amd64", n)]
    if not names:
        raise SystemExit(f"vmtest: no linux-image-{kernel}* -amd64-unsigned package in the apt lists "
                         "(run apt-get update)")

    def key(name: str) -> list[int]:
        return [int(x) for x in re.findall(r"\d+", name)]
    return max(names, key=key)


def prepare_kernel(package: str, cache: Path) -> Path:
    """Download and unpack the package once; build its initramfs once. Returns the cache folder."""
    init_hash = hashlib.sha256((INIT + ",".join(WANTED_MODULES)).encode()).hexdigest()[:12]
    folder = cache / package
    ready = folder / f"ready-{init_hash}"
    if ready.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "deb").mkdir(parents=True)
    log(f"fetching {package}")
    # As root into a folder _apt cannot write: no sandbox user, or apt warns on every fetch.
    run(["apt-get", "-o", "APT::Sandbox::User=root", "download", package], cwd=folder / "deb",
        stdout=subprocess.DEVNULL)
    deb = next((folder / "deb").glob("*.deb"))
    tree = folder / "tree"
    run(["dpkg-deb", "-x", str(deb), str(tree)])
    deb.unlink()
    vmlinuz = next((tree / "boot").glob("vmlinuz-*"))
    release = vmlinuz.name[len("vmlinuz-"):]
    shutil.copy(vmlinuz, folder / "vmlinuz")
    build_initramfs(tree, release, folder / "initrd.gz")
    # Keep the config beside the kernel; drop the rest of the unpacked tree (about 400 MB).
    shutil.copy(tree / "boot" / f"config-{release}", folder / f"config-{release}")
    shutil.rmtree(tree)
    ready.touch()
    return folder


def build_initramfs(tree: Path, release: str, out: Path) -> None:
    modroot = tree / "lib" / "modules" / release
    run(["depmod", "-b", str(tree), release])
    deps: dict[str, list[str]] = {}
    for line in (modroot / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
    by_name = {re.sub(r"\.ko(\.xz|\.zst|\.gz)?$", "", Path(p).name).replace("-", "_"): p for p in deps}
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)
    for name in WANTED_MODULES:
        if name in by_name:
            visit(by_name[name])

    with tempfile.TemporaryDirectory() as staging:
        root = Path(staging)
        for d in ["bin", "modules", "proc", "sys", "dev", "newroot"]:
            (root / d).mkdir()
        shutil.copy("/bin/busybox", root / "bin" / "busybox")
        names = []
        for path in order:
            src = modroot / path
            name = re.sub(r"\.(xz|zst|gz)$", "", src.name)
            data = src.read_bytes()
            if src.suffix == ".xz":
                data = lzma.decompress(data)
            elif src.suffix in (".zst", ".gz"):
                raise SystemExit(f"vmtest: {src.name}: only .ko and .ko.xz modules are handled")
            (root / "modules" / name).write_bytes(data)
            names.append(name)
        (root / "modules.order").write_text("\n".join(names) + "\n")
        shutil.copy(tree / "boot" / f"config-{release}", root / f"config-{release}")
        init = root / "init"
        init.write_text(INIT.replace("@RESULTS@", RESULTS_MOUNT))
        init.chmod(0o755)
        files = subprocess.run(["find", ".", "-mindepth", "1"], cwd=root, capture_output=True, text=True,
                               check=True).stdout
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=files.encode(),
                              capture_output=True, check=True).stdout
        out.write_bytes(__import__("gzip").compress(cpio, compresslevel=6))
    log(f"initramfs for {release}: modules {', '.join(names) or 'none needed'}")


# What the guest covers with fresh tmpfs: host paths below these are bound back when kept.
COVERED = ("/tmp/", "/run/", "/boot/")


def write_keep_paths(results: Path, keep: list[str]) -> None:
    paths = sorted({os.path.realpath(p) for p in keep})
    paths = [p for p in paths if p.startswith(COVERED) and not p.startswith(str(results.resolve()))]
    (results / "keep-paths").write_text("".join(p + "\n" for p in paths))


def write_run_script(results: Path, command: list[str], env: dict[str, str]) -> None:
    lines = ["#!/bin/sh"]
    for k, v in env.items():
        lines.append(f"export {k}={shlex.quote(v)}")
    lines.append(f"export VMTEST_RESULTS={RESULTS_MOUNT}")
    lines.append(f"cd {shlex.quote(os.getcwd())} || exit 125")
    lines.append(f"{shlex.join(command)} </dev/null")
    lines.append(f"echo $? > {RESULTS_MOUNT}/.exit-status")
    (results / "run.sh").write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", required=True, help="a series (6.12, 6.1) or a linux-image package name")
    ap.add_argument("--memory", default="6G")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before the VM is killed")
    ap.add_argument("--cache", default=os.environ.get("VMTEST_CACHE", "/var/cache/bpfdepot-vm"))
    ap.add_argument("--results", help="folder to keep what the command wrote under $VMTEST_RESULTS")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra environment")
    ap.add_argument("--keep", action="append", default=[], metavar="PATH",
                    help="a host path under /tmp or /run the command needs (the guest has fresh ones); "
                         "the current directory is always kept")
    ap.add_argument("--prepare-only", action="store_true", help="fetch and build the kernel's files, boot nothing")
    ap.add_argument("command", nargs="*")
    args = ap.parse_args()
    if not args.prepare_only and not args.command:
        ap.error("a command is needed after --")
    if shutil.which("qemu-system-x86_64") is None:
        log("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
        return VM_FAILED

    package = resolve_package(args.kernel)
    folder = prepare_kernel(package, Path(args.cache))
    if args.prepare_only:
        print(folder)
        return 0

    results = Path(args.results) if args.results else Path(tempfile.mkdtemp(prefix="vmtest-"))
    results.mkdir(parents=True, exist_ok=True)
    (results / ".exit-status").unlink(missing_ok=True)
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "CI", "TERM") if k in os.environ}
    for item in args.env:
        k, sep, v = item.partition("=")
        if not sep:
            ap.error(f"--env takes NAME=VALUE, not {item!r}")
        env[k] = v
    write_run_script(results, args.command, env)
    write_keep_paths(results, [os.getcwd(), *args.keep])

    # thread=single: every vCPU on one host thread. With thread=multi, a guest kernel patching
    # its own code (text_poke_bp: int3 first, then the new bytes, synced by IPIs) while another
    # vCPU runs stale translated code died with "Oops: int3" in syscall_trace_enter when tests
    # attached and detached sys_enter hooks in parallel; real x86 keeps that coherent.
    qemu = ["qemu-system-x86_64", "-accel", "tcg,thread=single", "-cpu", "max", "-m", args.memory,
            "-smp", str(args.cpus), "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
            *(["-bios", QBOOT] if Path(QBOOT).exists() else []),
            "-kernel", str(folder / "vmlinuz"), "-initrd", str(folder / "initrd.gz"),
            "-append", "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init",
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap",
            "-virtfs", f"local,path={results},mount_tag=results,security_model=none"]
    started = time.monotonic()
    log(f"booting {package} ({args.memory}, {args.cpus} cpus, TCG)")
    proc = subprocess.Popen(qemu, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log(f"timed out after {args.timeout:.0f} s; VM killed")
        return VM_FAILED
    finally:
        # The serial console leaves the terminal in raw mode when qemu dies early.
        if sys.stdout.isatty():
            subprocess.run(["stty", "sane"], check=False)
    elapsed = time.monotonic() - started
    status_file = results / ".exit-status"
    if not status_file.exists():
        log(f"the VM stopped after {elapsed:.0f} s without the command's exit status (qemu exit {proc.returncode})")
        return VM_FAILED
    status = int(status_file.read_text().strip() or VM_FAILED)
    log(f"{package}: command exited {status} after {elapsed:.0f} s (boot included)")
    if not args.results:
        shutil.rmtree(results, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
