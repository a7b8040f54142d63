#!/usr/bin/env bash
# Prints the Debian packages that provide the shared libraries BINARY links to, one a line,
# sorted: what a runtime image must install for BINARY to start. Fails when a library is not
# found or belongs to no package. Its own pipefail, so no caller's shell settings matter (the
# Dockerfile calls it from a plain RUN). Usage: scripts/runtime-packages.sh BINARY
set -euo pipefail
binary=${1:?usage: $0 BINARY}

deps=$(ldd "$binary")
if grep -q "not found" <<<"$deps"; then
    echo "runtime-packages: $binary: a library is missing:" >&2
    grep "not found" <<<"$deps" >&2
    exit 1
fi
# Lines "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)"; the vDSO and the loader
# have no "=> /path" (the loader comes with libc6, which provides the libc linked here).
libs=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$deps")
for lib in $libs; do
    real=$(readlink -f "$lib")
    # dpkg records some libraries under /lib and others under /usr/lib (merged /usr): match
    # either.
    dpkg -S "*${real#/usr}" | cut -d: -f1
done | sort -u
