#!/usr/bin/env bash
# Builds libullme (release) into build/lib and the C tests of Tests/c into $OUT (default /tmp/build-rel/c).
#   Tests/c/build.sh            # then: $OUT/concurrency MODEL, $OUT/load_cycle MODEL N, $OUT/bad_input MODEL
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/build-rel/c}
SCRATCH=${ULLME_SCRATCH:-/tmp/build-rel}
mkdir -p build/lib "$OUT"
if [ -z "${ULLME_NO_BUILD:-}" ]; then
  nice swift build -c release --product ullme --scratch-path "$SCRATCH" 2>&1 | tail -1
  cp "$SCRATCH/release/libullme.so" build/lib/libullme.so.tmp && mv build/lib/libullme.so.tmp build/lib/libullme.so
fi
for t in concurrency load_cycle bad_input; do
  cc -O1 -g -Wall -Wextra -Wno-unused-function -Wno-unused-parameter -pthread -Iinclude "Tests/c/$t.c" \
    -Lbuild/lib -lullme -Wl,-rpath,"$PWD/build/lib" -o "$OUT/$t"
done
# A copy of the library without DWARF for valgrind 3.19, which cannot read Swift 6.3's DWARF 5.
mkdir -p "$OUT/vg"
strip --strip-debug -o "$OUT/vg/libullme.so" build/lib/libullme.so
cc -O1 -g -Wall -Wno-unused-function -pthread -Iinclude Tests/c/load_cycle.c -L"$OUT/vg" -lullme \
  -Wl,-rpath,"$OUT/vg" -o "$OUT/vg/load_cycle"
echo "C tests built in $OUT"
