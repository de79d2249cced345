# CMake toolchain file for Windows x86-64 with MinGW-w64 from Linux
# (Debian: gcc-mingw-w64-x86-64):
#
#   cmake -S . -B build-mingw -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake
#
# The compiler, resource compiler and target root follow KA_MINGW_TRIPLET.
# Packages installed elsewhere are found through <Package>_DIR or by adding
# their prefix to CMAKE_FIND_ROOT_PATH.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(KA_MINGW_TRIPLET "x86_64-w64-mingw32" CACHE STRING "MinGW-w64 target triplet")
set(CMAKE_C_COMPILER "${KA_MINGW_TRIPLET}-gcc")
set(CMAKE_CXX_COMPILER "${KA_MINGW_TRIPLET}-g++")
set(CMAKE_RC_COMPILER "${KA_MINGW_TRIPLET}-windres")

# Headers, libraries and packages from the target's root, programs from the host.
list(APPEND CMAKE_FIND_ROOT_PATH "/usr/${KA_MINGW_TRIPLET}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
