#!/usr/bin/env bash
# Checks for the Debian packages the build, the tests and `make lint` need, and installs the
# missing ones when run as root (`make deps`; CI containers run as root):
#   libopenblas-dev libjpeg-dev libpng-dev pkg-config   (build and run)
#   clang-format                                       (make lint / make format, C sources)
#   imagemagick-6-doc                                  (four of the real test images)
#   golang-go, cargo                                   (the Go and Rust embedding samples;
#                                                       a rustup toolchain on PATH is used if present)
# As another user it installs nothing: it prints the apt-get command to run and fails, so that
# no make target calls sudo behind the user's back. Does nothing when everything is present.
set -euo pipefail
need=()
pkg-config --exists openblas 2>/dev/null || need+=(libopenblas-dev)
pkg-config --exists libjpeg 2>/dev/null || need+=(libjpeg-dev)
pkg-config --exists libpng 2>/dev/null || need+=(libpng-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v clang-format >/dev/null || need+=(clang-format)
[ -d /usr/share/doc/imagemagick-6-common/html ] || need+=(imagemagick-6-doc)
command -v go >/dev/null || need+=(golang-go)
command -v cargo >/dev/null || need+=(cargo)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${need[*]}" >&2
    echo "install-deps: install them with:  sudo apt-get install --no-install-recommends ${need[*]}" >&2
    echo "install-deps: (or run 'sudo make deps'), then run make again" >&2
    exit 1
fi
echo "install-deps: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
