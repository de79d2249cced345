#!/bin/sh
# Writes the CMake package that `make install` installs (a CMake build
# generates its own): ka_clientConfig.cmake, ka_clientConfigVersion.cmake and
# ka_clientTargets.cmake in OUT, from the templates beside this script.
#
# Usage: cmake/make-package.sh OUT CMAKEDIR PREFIX LIBDIR INCDIR VERSION SHLIB SONAME STLIB [SIZEOF_VOID_P]
#   CMAKEDIR, LIBDIR, INCDIR   where the files will live, without DESTDIR
#   SHLIB, SONAME, STLIB       the shared library's real file and soname, the static library
# LIBDIR and INCDIR are written relative to CMAKEDIR when all three are under
# PREFIX, so that a staged (DESTDIR) or moved tree still finds its files.
set -eu
[ $# -ge 9 ] || { echo "usage: $0 OUT CMAKEDIR PREFIX LIBDIR INCDIR VERSION SHLIB SONAME STLIB [SIZEOF_VOID_P]" >&2; exit 2; }
out=$1 cmakedir=$2 prefix=${3%/} libdir=$4 incdir=$5 version=$6 shlib=$7 soname=$8 stlib=$9
sizeof_ptr=${10:-}
here=$(dirname "$0")

# where DIR: DIR as the targets file should name it
where() {
    case $cmakedir/ in "$prefix"/*) ;; *) echo "$1"; return ;; esac
    case $1/ in "$prefix"/*) ;; *) echo "$1"; return ;; esac
    up=$(echo "${cmakedir#"$prefix"/}" | sed 's|[^/][^/]*|..|g')
    rest=${1#"$prefix"}; rest=${rest#/}
    echo "\${_ka_here}/$up${rest:+/$rest}"
}

subst() {  # TEMPLATE OUTPUT
    sed -e "s|@KA_VERSION@|$version|g" -e "s|@KA_MAJOR@|${version%%.*}|g" \
        -e "s|@KA_SIZEOF_VOID_P@|$sizeof_ptr|g" \
        -e "s|@KA_LIBDIR@|$(where "$libdir")|g" -e "s|@KA_INCDIR@|$(where "$incdir")|g" \
        -e "s|@KA_SHLIB@|$shlib|g" -e "s|@KA_SONAME@|$soname|g" -e "s|@KA_STLIB@|$stlib|g" \
        -e "s|^@PACKAGE_INIT@\$|# Written by make install.|" "$1" > "$2"
}

mkdir -p "$out"
subst "$here/ka_clientConfig.cmake.in" "$out/ka_clientConfig.cmake"
subst "$here/ka_clientConfigVersion.cmake.in" "$out/ka_clientConfigVersion.cmake"
subst "$here/ka_clientTargets.cmake.in" "$out/ka_clientTargets.cmake"
