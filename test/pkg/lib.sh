# Shared by the packaging suites (test/pkg/*.sh): counters, a scratch
# directory removed on exit, and the one summary line. Source it from the
# top directory; $MAKE names the make program (default make).
#
#   check WHAT CMD...   runs CMD; ok, or FAIL with its output indented
#   ok WHAT / bad WHAT / skip WHAT WHY
#   summary             prints "N passed, N failed, N skipped", returns 1 on failures
MAKE=${MAKE:-make}
# cmake --build: both cores unless told otherwise.
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
export CMAKE_BUILD_PARALLEL_LEVEL
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ka-pkg.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
pass=0 fail=0 skipped=0
t_start=$(date +%s)

ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; }
skip() { skipped=$((skipped + 1)); echo "skip $1: $2"; }
check() {
    what=$1; shift
    if "$@" >"$tmp/out" 2>&1; then ok "$what"
    else bad "$what"; sed 's/^/    /' "$tmp/out" | tail -n 40; fi
}
have() { command -v "$1" >/dev/null 2>&1; }

# cmake_step LOG CMD...: a cmake configure/build/install, quiet unless it fails.
cmake_step() {
    log=$1; shift
    "$@" >>"$log" 2>&1 || { tail -n 40 "$log"; return 1; }
}

summary() {
    echo "($(( $(date +%s) - t_start )) s)"
    echo "$pass passed, $fail failed, $skipped skipped"
    [ "$fail" -eq 0 ]
}

# The version the header declares: what every installed piece must say.
KA_VERSION=$(sed -n 's/^.define KA_VERSION_STRING "\(.*\)"/\1/p' ka_client.h)
KA_MAJOR=${KA_VERSION%%.*}
