#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, when they are missing:
#   libopenblas-dev libjpeg-dev libpng-dev pkg-config   (build and run)
#   imagemagick-6-doc                                  (four of the real test images)
#   golang-go, cargo                                   (the Go and Rust embedding samples;
#                                                       a rustup toolchain on PATH is used if present)
# Uses sudo when not root. Does nothing when everything is present.
set -euo pipefail
need=()
pkg-config --exists openblas 2>/dev/null || need+=(libopenblas-dev)
pkg-config --exists libjpeg 2>/dev/null || need+=(libjpeg-dev)
pkg-config --exists libpng 2>/dev/null || need+=(libpng-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -d /usr/share/doc/imagemagick-6-common/html ] || need+=(imagemagick-6-doc)
command -v go >/dev/null || need+=(golang-go)
command -v cargo >/dev/null || need+=(cargo)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
