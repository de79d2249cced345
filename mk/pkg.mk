# Packaging: the shared library, make install, the CMake package, the
# Windows DLL and the ABI check. Each suite is a script in test/pkg/ that
# ends with "N passed, N failed, N skipped" and skips, saying why, when its
# tool is missing.
#
#   suite-shared       the installed .so: names, soname, exports, a program
#                      linked with -L/-rpath and with pkg-config runs it
#   suite-install      make install DESTDIR=... PREFIX=... lays out every
#                      file (manual pages once they exist, linted), and
#                      make uninstall removes them all
#   suite-cmake        find_package (after make install and after a CMake
#                      install), add_subdirectory and FetchContent consumers
#   suite-mingw-cmake  the CMake build cross-compiled with
#                      cmake/mingw-w64-x86_64.cmake, and Makefile.win's DLL
#   suite-abi          the shared library's ABI against abi/ka_client.abi
#
# The ABI baseline. abi/ka_client.abi is the ABI of the shared library as the
# latest release ships it: 1.1.0, the first with a shared library, which is
# this tree (no release is tagged yet; later ones get a vX.Y.Z tag), written
# by `make abi-dump` and committed with it. suite-abi fails on any change abidiff
# reports except added functions and appended enum values: a removed
# function, a changed parameter or return type, a changed struct layout
# (ka_config is allocated by the caller, so a new field changes its size)
# or a new soname. A change that is meant to break the ABI goes with a new
# KA_VERSION_MAJOR (hence a new soname) and a fresh `make abi-dump`; a
# release that only adds runs `make abi-dump` before it is tagged, so the
# next release is checked against it.

SUITES    += shared install cmake mingw-cmake abi
DEPS_PKGS += cmake pkgconf mandoc abigail-tools binutils-mingw-w64-x86-64

ABI_BASELINE = abi/ka_client.abi

suite-shared: $(LIB) $(SHLIBS) demo/kacat
	@MAKE="$(MAKE)" CC="$(CC)" sh test/pkg/shared.sh

suite-install: $(LIB) $(SHLIBS) demo/kacat
	@MAKE="$(MAKE)" sh test/pkg/install.sh

suite-cmake: $(LIB) $(SHLIBS) demo/kacat
	@MAKE="$(MAKE)" sh test/pkg/cmake.sh

suite-mingw-cmake:
	@MAKE="$(MAKE)" sh test/pkg/mingw.sh

suite-abi:
	@sh test/pkg/abi.sh check $(ABI_BASELINE)

# Rewrites the baseline from this tree; see above for when.
abi-dump:
	@sh test/pkg/abi.sh dump $(ABI_BASELINE)

clean: clean-pkg
clean-pkg:
	rm -rf build/abi

.PHONY: suite-shared suite-install suite-cmake suite-mingw-cmake suite-abi abi-dump clean-pkg
