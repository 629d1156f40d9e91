#!/bin/sh
# debian-image.sh [CACHE_DIR] - a local Debian 12 base image for templates
# when no registry is reachable: `debootstrap --variant=minbase bookworm`
# from Debian's mirrors made into an OCI layout (tag bookworm), once a day,
# under CACHE_DIR (default /var/cache/e2b). Prints the layout's directory:
#   base=$(tools/debian-image.sh)
#   e2b template build --build-arg BASE="oci:$base:bookworm" templates/code-interpreter
# Needs root and debootstrap (tools/deps.sh installs it). The image is the
# one the tests use (tests/e2e/lib-image.sh, img_debian).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
export E2B_TEST_CACHE=${1:-/var/cache/e2b}
# shellcheck source=../tests/e2e/lib-image.sh
. "$top/tests/e2e/lib-image.sh"
img_debian
