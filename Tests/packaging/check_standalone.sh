#!/usr/bin/env bash
# `make test-standalone`: the shipped binaries are self-contained (README "Python", "C").
#   1. build/lib/libullme.so exports exactly the ullme_* functions of its version script (nm -D), and it and
#      build/bin/ullme need no Swift library at run time (NEEDED within libc, libm, libgcc_s, libstdc++,
#      OpenBLAS, libyaml; no RUNPATH into the toolchain).
#   2. The wheel (`make wheel`) installs with pip, and so does `pip install ./bindings/python`; the wheel
#      carries lib/libullme.so and, when adapters/default exists, the default adapter at the path the library
#      looks it up (never a made-up one).
#   3. With the Swift toolchain hidden (a mount namespace with a tmpfs over /opt/swift), from a directory
#      outside the checkout: the installed wheel's embed, the C example (built against build/include and
#      build/lib), the Go example (build/bin/ullme-example-go, `make test-go`) and the CLI run, and the
#      wheel's vectors equal the C example's, and its default model (with the adapter it carries) the CLI's.
# Needs root for unshare -m (as CI runs); every failure is an error, nothing is skipped.
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
cd "$(dirname "$0")/../.."
REPO="$PWD"
BUILD="$REPO/build"
MODEL="${MODEL:-${ULLME_CACHE:-$HOME/.cache/ullme}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
SWIFT_ROOT="${SWIFT_ROOT:-/opt/swift}"
OUT="$BUILD/standalone"
fail() { echo "test-standalone: FAIL: $*" >&2; exit 1; }

LIB="$BUILD/lib/libullme.so"
CLI="$BUILD/bin/ullme"
GO_EXAMPLE="$BUILD/bin/ullme-example-go"
for f in "$LIB" "$CLI" "$BUILD/include/ullme.h" "$GO_EXAMPLE"; do [ -f "$f" ] || fail "$f missing (make lib test-go)"; done
[ -s "$MODEL" ] || fail "$MODEL missing (scripts/fetch_models.sh)"
[ -d "$SWIFT_ROOT/usr/lib/swift" ] || fail "$SWIFT_ROOT is not a Swift toolchain (set SWIFT_ROOT): nothing to hide"
wheels=("$BUILD"/wheel/ullme-*.whl)
[ ${#wheels[@]} = 1 ] && [ -f "${wheels[0]}" ] || fail "expected one wheel in $BUILD/wheel (make wheel): ${wheels[*]}"
WHEEL="${wheels[0]}"

echo "== exported symbols and run-time dependencies"
want="$(sed -n 's/^ *\(ullme_[a-z0-9_]*\);$/\1/p' Sources/ULLMESwift/CAPI/exports.map | sort)"
got="$(nm -D --defined-only "$LIB" | awk '{print $NF}' | sort)"
[ -n "$want" ] || fail "no ullme_* names read from exports.map"
[ "$got" = "$want" ] || fail "nm -D --defined-only $LIB differs from exports.map:
$(diff <(echo "$want") <(echo "$got") || true)"
echo "$LIB: exports exactly the $(echo "$want" | wc -l) ullme_* functions"
allowed='^(libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libstdc\+\+\.so\.6|ld-linux-x86-64\.so\.2|libopenblas\.so\.0|libyaml-0\.so\.2)$'
for bin in "$LIB" "$CLI"; do
    needed="$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
    bad="$(echo "$needed" | grep -Ev "$allowed" || true)"
    [ -z "$bad" ] || fail "$bin needs $(echo $bad) (only libc, libm, libgcc_s, libstdc++, OpenBLAS, libyaml allowed)"
    ! readelf -d "$bin" | grep -E 'R(UN)?PATH' | grep -q "$SWIFT_ROOT" || fail "$bin has a run path into $SWIFT_ROOT"
    echo "$bin: NEEDED $(echo $needed)"
done

echo "== install the wheel and the source package"
rm -rf "$OUT" && mkdir -p "$OUT"
pip_target() { python3 -m pip install -q --no-deps --no-build-isolation --target "$1" "$2"; }
pip_target "$OUT/site-wheel" "$WHEEL"
pip_target "$OUT/site-src" "$REPO/bindings/python"
NATIVE="ullme/_native"
for site in "$OUT/site-wheel" "$OUT/site-src"; do
    cmp "$site/$NATIVE/lib/libullme.so" "$LIB" || fail "$site/$NATIVE/lib/libullme.so is not build/lib/libullme.so"
    if [ -d adapters/default ]; then
        diff -r adapters/default "$site/$NATIVE/share/ullme/adapters/default" || fail "$site: adapter differs from adapters/default"
    else
        [ ! -e "$site/$NATIVE/share" ] || fail "$site: carries $NATIVE/share although adapters/default does not exist"
    fi
done
case "$(basename "$WHEEL")" in *-py3-none-linux_x86_64.whl) ;; *) fail "wheel tag: $(basename "$WHEEL")";; esac
# One version: the wheel's, the installed .pc's and the library's are the Swift source's libraryVersion.
version="$(sed -n 's/^public let libraryVersion = "\(.*\)"/\1/p' Sources/ULLMESwift/CAPI/Status.swift)"
case "$(basename "$WHEEL")" in "ullme-$version-"*) ;; *) fail "wheel $(basename "$WHEEL") is not version $version";; esac
make -s install PREFIX="$OUT/prefix" >/dev/null
pc_version="$(PKG_CONFIG_PATH="$OUT/prefix/lib/pkgconfig" pkg-config --modversion ullme)"
[ "$pc_version" = "$version" ] || fail "ullme.pc says version $pc_version, the library $version"
echo "version $version: wheel, ullme.pc"

echo "== with $SWIFT_ROOT hidden"
cc -O2 -Wall -Wextra -I"$BUILD/include" examples/c/embed.c -L"$BUILD/lib" -lullme -Wl,-rpath,"$BUILD/lib" -o "$OUT/ullme-example"
printf '%s\n' "The lighthouse keeper lit the lamp." "Ships use charts at night." > "$OUT/texts.txt"
mkdir -p "$OUT/elsewhere"
export OUT MODEL LIB CLI GO_EXAMPLE SWIFT_ROOT
unshare -m sh -euc '
    mount -t tmpfs none "$SWIFT_ROOT"
    [ -z "$(ls -A "$SWIFT_ROOT")" ] || { echo "toolchain still visible" >&2; exit 1; }
    cd "$OUT/elsewhere"
    for bin in "$LIB" "$CLI" "$OUT/ullme-example" "$GO_EXAMPLE"; do
        if ldd "$bin" | grep -E "not found|swift"; then echo "$bin: unresolved or Swift libraries" >&2; exit 1; fi
    done
    "$OUT/ullme-example" "$MODEL" >/dev/null
    "$GO_EXAMPLE" "$MODEL" >/dev/null
    "$OUT/ullme-example" "$MODEL" --dump "$OUT/texts.txt" "$OUT/c.bin"
    "$CLI" embed "The lighthouse keeper lit the lamp." > "$OUT/cli.json"
    env -u ULLME_LIB PYTHONPATH="$OUT/site-wheel" python3 - <<"PY"
import json, os
import numpy as np
import ullme
site = os.path.join(os.environ["OUT"], "site-wheel")
assert ullme.library_path().startswith(site + "/"), ullme.library_path()
texts = open(os.path.join(os.environ["OUT"], "texts.txt")).read().splitlines()
e = ullme.Model(os.environ["MODEL"]).encode(texts)
c = np.fromfile(os.path.join(os.environ["OUT"], "c.bin"), dtype=np.float32).reshape(e.shape)
cli = np.array(json.loads(open(os.path.join(os.environ["OUT"], "cli.json")).readline())["embedding"], dtype=np.float32)
assert e.shape == (2, 576) and np.all(np.isfinite(e)), e.shape
assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
assert np.array_equal(e, c), f"wheel vs C example: max diff {np.abs(e - c).max()}"
# the default model (base + shipped adapter), found by the library in the wheel and by the CLI beside build/share
with ullme.Model() as d:
    assert d.adapter and d.adapter.startswith(site + "/"), d.adapter
    dv = d.encode(texts[0])
assert np.allclose(dv, cli, atol=1e-6), f"wheel vs CLI (default model): max diff {np.abs(dv - cli).max()}"
assert ullme.__version__ == ullme.library_version(), (ullme.__version__, ullme.library_version())
print(f"wheel ({ullme.library_path()}), C example and CLI: same {e.shape[1]}-d vectors; Go example ran")
PY
'
echo "test-standalone: OK"
