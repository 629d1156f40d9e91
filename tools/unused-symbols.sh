#!/bin/sh
# unused-symbols.sh [-a] [BUILD_DIR] - functions and variables of lib/ and
# cmd/ that are global but need not be.
#
# Every symbol a lib/X.o or cmd/X.o defines with external linkage (nm, so
# macros and static inlines are not counted) is looked for, as a word, in the
# sources of lib/, cmd/, tests/unit/ and tests/fuzz/ with their comments
# taken out (the C preprocessor's -fpreprocessed, which expands nothing):
#
#   unused  lib/X.c NAME   nothing uses it, lib/X.c itself neither: delete it
#   static  lib/X.c NAME   only lib/X.c uses it: make it static, out of X.h
#   tests   lib/X.c NAME   only tests use it (with -a; not a fault)
#
# A use in X.h beyond its declaration (an inline wrapper, a cleanup macro)
# counts as a use from outside; a name that X.c does not spell out (made by
# token pasting, as dl.h's are) is not judged, nor are main and the cmd_<id>
# and opts_<id> that cmd/table.c pastes from commands.def. Exits 1 if any
# `unused` or `static` line is printed. Needs a build's objects (make).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
all=0
[ "${1:-}" = -a ] && all=1 && shift
B=${1:-build}
[ -d "$B/lib" ] || { echo "unused-symbols.sh: no objects in $B/lib (make first)" >&2; exit 2; }

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
for f in lib/*.[ch] cmd/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch]; do
    [ -f "$f" ] || continue
    mkdir -p "$tmp/${f%/*}"
    ${CC:-cc} -fpreprocessed -dD -E -P -x c "$f" >"$tmp/$f" 2>/dev/null || cp "$f" "$tmp/$f"
done

found=0
for o in "$B"/lib/*.o "$B"/cmd/*.o; do
    d=$(basename "$(dirname "$o")") m=$(basename "$o" .o)
    c=$d/$m.c h=$d/$m.h
    for s in $(nm --defined-only -g "$o" | awk '$2 ~ /^[TDRB]$/ {print $3}'); do
        mine=$(grep -ow -- "$s" "$tmp/$c" 2>/dev/null | wc -l)
        [ "$mine" -gt 0 ] || continue # made by a macro (dl.h's ##): not judged
        case $d/$s in cmd/main | cmd/cmd_* | cmd/opts_*) continue ;; esac # commands.def's, pasted
        users=$(cd "$tmp" && grep -lw -- "$s" lib/*.[ch] cmd/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch] \
            2>/dev/null | grep -vx -e "$c" -e "$h")
        if [ -f "$tmp/$h" ] && { [ "$(grep -ow -- "$s" "$tmp/$h" | wc -l)" -gt 1 ] ||
            grep -w -- "$s" "$tmp/$h" | grep -q '^#define'; }; then
            continue # used by the header's own inline functions or macros
        fi
        if [ -n "$users" ]; then
            [ $all = 1 ] && ! echo "$users" | grep -qv '^tests/' && echo "tests   $c $s"
            continue
        fi
        if [ "$mine" -gt 1 ]; then
            echo "static  $c $s"
        else
            echo "unused  $c $s"
        fi
        found=1
    done
done
exit $found
