# The Windows port: cross-build with MinGW-w64 and run the
# loopback suite under Wine. test/wine.sh builds with Makefile.win
# (-Wall -Wextra -Werror), boots a fresh headless WINEPREFIX, runs
# test/unit.exe, then the demos (test/wine_demos.sh: kacat.exe, own_loop.exe
# and flaky_server.exe against Linux servers on loopback; the Linux kacat
# and flaky_server take part, hence the prerequisites), and ends with one
# "N passed, N failed, N skipped" line; without the cross compiler or Wine
# it prints why and counts one skip.

SUITES    += wine
# wine64 is only the 64-bit loader (/usr/lib/wine/wine64); the wine,
# wineboot and wineserver commands come from "wine", which wine64 merely
# Recommends (and CI images often install without recommends).
DEPS_PKGS += gcc-mingw-w64-x86-64 wine wine64

WIN_OUT    = test/unit.exe build-win/ka_client.o build-win/libka_client.a \
             demo/kacat.exe demo/own_loop.exe demo/flaky_server.exe
CLEAN     += $(WIN_OUT)

suite-wine: demo/kacat demo/flaky_server
	@sh test/wine.sh "$(MAKE)"

# Makefile.win keeps its objects in build-win/; clean removes the directory.
clean: clean-wine
clean-wine:
	rm -rf build-win

.PHONY: suite-wine clean-wine
