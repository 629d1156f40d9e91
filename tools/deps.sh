#!/bin/sh
# deps.sh - install the Debian packages e2b needs to build, test and run,
# when they are missing. Idempotent and quiet when all are there.
# Usage: tools/deps.sh [build|test|bench|fuzz|all]   (default: all = build and test)
set -eu
what=${1:-all}

build_pkgs="gcc make pkg-config libcurl4-openssl-dev libjansson-dev libarchive-dev
libgit2-dev libevent-dev libseccomp-dev scdoc"
# Tests and benchmarks use real peers: a registry, skopeo, user-mode networking,
# e2fsprogs for ext4, node/npm for the official SDK, and the shells whose
# completions are checked. The code interpreter's tests run real Jupyter
# kernels on this machine (python3-ipykernel; jupyter_client for the
# benchmark's peer) without building a template first.
test_pkgs="perl curl python3 e2fsprogs man-db bash-completion zsh fish iproute2 procps
util-linux slirp4netns docker-registry skopeo apache2-utils busybox-static debootstrap libcap2-bin git
dpkg-dev systemd python3-ipykernel python3-jupyter-client python3-matplotlib python3-pandas"

# Benchmarks run peers side by side (make bench).
bench_pkgs="bubblewrap crun bc buildah"

# make fuzz uses libFuzzer, which comes with clang.
fuzz_pkgs="clang"

case $what in
build) pkgs=$build_pkgs ;;
test) pkgs=$test_pkgs ;;
bench) pkgs="$build_pkgs $test_pkgs $bench_pkgs" ;;
fuzz) pkgs="$build_pkgs $fuzz_pkgs" ;;
*) pkgs="$build_pkgs $test_pkgs" ;;
esac
command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"

missing=""
for p in $pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages:$missing (run as root, or install them)" >&2
    exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
