#!/bin/sh
# Installs the Debian packages named on the command line that are missing.
# Needs root (CI is root); otherwise it says what to install and goes on, and
# the suites that need them say they were skipped.
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "deps: not root, not installing:$missing (suites needing them will skip)"
    exit 0
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null || {
    echo "deps: apt-get failed for:$missing"; exit 1; }
