#!/bin/sh
# check.sh BUILD_DIR - everything `make check` runs, after the build:
# the include graph (no circles), clang's view of the sources, no global that only its own file uses
# (tools/unused-symbols.sh), unit tests, the unit tests again under
# ASan+UBSan, the fuzz corpus replay, end-to-end tests, and the official SDK
# against our envd and server.
set -u
B=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
export E2B_BUILD_DIR="$top/$B"
export E2B_ENVD="$top/$B/envd"   # the real server some unit tests talk to
status=0

echo "# include graph"
tools/include-graph.sh || status=1

echo "# the sources through clang too"
make -s check-clang B="$B" || status=1

echo "# globals nothing else uses"
tools/unused-symbols.sh "$B" || status=1

echo "# unit tests"
prove -f "$B"/tests/unit/t-* || status=1

echo "# unit tests under AddressSanitizer and UndefinedBehaviorSanitizer"
make -s check-asan B="$B" >/dev/null || status=1

echo "# Dockerfile fuzz corpus replayed under ASan+UBSan"
make -s fuzz-replay B="$B" || status=1

echo "# end-to-end tests"
prove -f tests/e2e/t[0-9]*.sh || status=1

# Each runner takes the build directory (run-envd.sh: the envd binary in it).
for sdk in tests/sdk/run-*.sh; do
    [ -x "$sdk" ] || continue
    echo "# official SDK: $sdk"
    case $sdk in
    */run-envd.sh) "$sdk" "$E2B_ENVD" || status=1 ;;
    *) "$sdk" "$top/$B" || status=1 ;;
    esac
done
exit $status
