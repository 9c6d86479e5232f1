#!/usr/bin/env bash
# Quick host check of the guest init: the real build is static and warning-free, and the
# host-test variant (see PROTOCOL.md) runs a job: stdin frames in, stdout and 'X' out.
# The thorough tests are Tests/SandboxTests/GuestInitHostTests.swift.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

init=$(SVM_CACHE_DIR="$tmp/cache" "$here/../../scripts/build-init" | sed -n 's/^svm-init=//p')
file -L "$init" | grep -q 'statically linked' || { echo "FAIL: $init is not statically linked" >&2; exit 1; }

gcc -DSVM_INIT_HOST_TEST -O1 -Wall -Wextra -Werror -o "$tmp/init-host" "$here/svm-init.c"

le32() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 24 & 255)))"; }
str() { le32 ${#1}; printf '%s' "$1"; }
{   # job: /bin/sh -c 'cat; exit 5', has_stdin, uid/gid 0, workdir /
    printf SVMJ; le32 1; le32 1; le32 0; le32 0; le32 0; le32 0
    le32 3; str /bin/sh; str -c; str 'cat; exit 5'
    le32 0; str /; le32 0
} >"$tmp/job"
{ printf I; le32 6; printf 'hello\n'; printf E; le32 0; } >"$tmp/ctl-in"

"$tmp/init-host" "$tmp/job" >"$tmp/out" 2>"$tmp/err" 3<"$tmp/ctl-in" 4>"$tmp/ctl-out"
[ "$(cat "$tmp/out")" = hello ] || { echo "FAIL: stdout was: $(cat "$tmp/out")" >&2; exit 1; }
expected=$( { printf R; le32 0; printf X; le32 5; printf e; le32 5; } | od -An -tx1)
[ "$(od -An -tx1 <"$tmp/ctl-out")" = "$expected" ] || { echo "FAIL: control output: $(od -An -tx1 <"$tmp/ctl-out")" >&2; exit 1; }
echo "ok: $init ($(stat -c %s "$init") bytes, static); host run passed"
