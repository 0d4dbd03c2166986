#!/bin/sh
# build-oracle.sh OUTDIR — builds the libbpf oracle (libbpf_dump.c) for LibbpfOracleTests.
#
#   OUTDIR/libbpf_dump_debian  linked against Debian's libbpf (apt: libbpf-dev, 1.1.x).
#   OUTDIR/libbpf_dump_16      linked against the newer libbpf (1.6) built into the PyPI wheel
#                              pylibbpf==0.0.7, when that wheel is installed.
#
# Both compile against Debian's <bpf/libbpf.h>: the dumper uses only libbpf 1.1 API, which the
# newer library still exports with the same ABI.
#
# The wheel has no standalone libbpf: libbpf is linked statically into its Python extension
# pylibbpf/pylibbpf.cpython-*.so, which exports the libbpf API. We link the dumper directly
# against that file. It also references CPython's C API (never called outside Python), so we
# generate OUTDIR/pystubs.c with one dummy definition per undefined Py* symbol and export them
# from the executable (-rdynamic) so the dynamic loader can bind them. It needs zlib too (gz*,
# for /proc/config.gz) but does not list it, so we link libz. Its own libelf comes from the
# wheel's pylibbpf.libs/ through the extension's RPATH.
#
# The wheel is found in $PYLIBBPF_DIR (a directory holding pylibbpf/, e.g. a `pip install
# --target` dir) or else on python3's site-packages/sys.path. Always exits 0 (unless OUTDIR
# can't be made); prints "built: NAME (libbpf version)" for each oracle that built and runs,
# and "missing: NAME (why)" for each that did not.
set -u
out=${1:?usage: build-oracle.sh OUTDIR}
src=$(cd "$(dirname "$0")" && pwd)/libbpf_dump.c
cc=${CC:-cc}
mkdir -p "$out" || exit 1
rm -f "$out/libbpf_dump_debian" "$out/libbpf_dump_16"

# (a) Debian's libbpf.
if $cc -O1 -Wall -o "$out/libbpf_dump_debian" "$src" -lbpf >"$out/debian.log" 2>&1 \
   && v=$("$out/libbpf_dump_debian" --version 2>>"$out/debian.log"); then
    echo "built: libbpf_dump_debian ($v)"
else
    rm -f "$out/libbpf_dump_debian"
    echo "missing: libbpf_dump_debian (needs apt libbpf-dev; see $out/debian.log)"
fi

# (b) libbpf inside the pylibbpf wheel.
dirs="${PYLIBBPF_DIR:-}
$(python3 -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))' 2>/dev/null)"
lib=
IFS='
'
for d in $dirs; do
    for f in "$d"/pylibbpf/pylibbpf.cpython-*.so; do
        [ -f "$f" ] && { lib=$f; break 2; }
    done
done
if [ -z "$lib" ]; then
    echo "missing: libbpf_dump_16 (pylibbpf not found; pip install it or set PYLIBBPF_DIR)"
    exit 0
fi
nm -D --undefined-only "$lib" | awk '$1 == "U" && $2 ~ /^_?Py/ { print "char " $2 "[512];" }' \
    >"$out/pystubs.c"
if $cc -O1 -Wall -rdynamic -o "$out/libbpf_dump_16" "$src" "$out/pystubs.c" "$lib" -l:libz.so.1 \
       -Wl,-rpath-link,"${lib%/*}/../pylibbpf.libs" \
       >"$out/libbpf16.log" 2>&1 \
   && v=$("$out/libbpf_dump_16" --version 2>>"$out/libbpf16.log"); then
    echo "built: libbpf_dump_16 ($v, from $lib)"
else
    rm -f "$out/libbpf_dump_16"
    echo "missing: libbpf_dump_16 (linking against $lib failed; see $out/libbpf16.log)"
fi
exit 0
