#!/bin/sh
# deps.sh - install the Debian packages e2b needs to build, test and run,
# when they are missing. Idempotent and quiet when all are there.
# Usage: tools/deps.sh [build|test|bench|fuzz|all]   (default: all = build and test)
set -eu
what=${1:-all}

build_pkgs="gcc make pkg-config libcurl4-openssl-dev libjansson-dev libarchive-dev
libgit2-dev libevent-dev libseccomp-dev scdoc libnftables-dev libssl-dev"
# Tests and benchmarks use real peers: a registry, skopeo, user-mode networking
# (nftables: its nft command reads the rules a sandbox's egress filter loads),
# Redis as the cluster's catalog (and Kubernetes' Python models to check its manifests),
# e2fsprogs for ext4, node/npm for the official SDK, and the shells whose
# completions are checked. The code interpreter's tests run real Jupyter
# kernels on this machine (python3-ipykernel; jupyter_client for the
# benchmark's peer) without building a template first.
test_pkgs="perl curl python3 e2fsprogs man-db bash-completion zsh fish iproute2 procps
util-linux slirp4netns nftables openssl docker-registry skopeo apache2-utils busybox-static debootstrap libcap2-bin git
dpkg-dev systemd qemu-system-x86 linux-image-cloud-amd64
python3-ipykernel python3-jupyter-client python3-matplotlib python3-pandas criu
redis-server python3-kubernetes"
# The vm runtime boots QEMU (qemu-system-x86) with Debian's cloud kernel and
# its modules: the kernel package is only where e2b finds a guest kernel,
# e2b never boots the host with it. Where the distribution has no such
# package (Ubuntu), the vm tests skip themselves.
optional_pkgs="linux-image-cloud-amd64"

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
# The cluster's packaging test renders its manifests with kubectl (Debian's
# kubernetes-client where no kubectl is installed already).
case $what in build|fuzz) ;; *) command -v kubectl >/dev/null 2>&1 || pkgs="$pkgs kubernetes-client" ;; esac
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"

# The ns runtime's checkpoints run CRIU: Debian's, or where this kernel needs
# a newer one, Debian testing's beside it (tools/criu.sh says why).
criu_ok() {
    case $what in build | fuzz) return 0 ;; esac
    [ "$(id -u)" = 0 ] || return 0
    sh "$(dirname "$0")/criu.sh" ||
        echo "deps.sh: no CRIU that works on this kernel (ns snapshots and pause --to-disk fail, their tests skip)" >&2
}

missing=""
for p in $pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && { criu_ok; exit 0; }
if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages:$missing (run as root, or install them)" >&2
    exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
required=""
optional=""
for p in $missing; do
    case " $optional_pkgs " in *" $p "*) optional="$optional $p" ;; *) required="$required $p" ;; esac
done
# shellcheck disable=SC2086
[ -z "$required" ] || apt-get install -y -qq --no-install-recommends $required >/dev/null
for p in $optional; do
    apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 ||
        echo "deps.sh: cannot install $p here (the tests that need it are skipped)" >&2
done
criu_ok
