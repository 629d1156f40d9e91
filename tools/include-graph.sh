#!/bin/sh
# include-graph.sh [DIR] - report include circles between modules of lib/ and cmd/.
#
# A module is a file's path without its extension: lib/X.c and lib/X.h are
# one module, lib/X. An edge A -> B is an `#include "B.h"` line in a file of
# A, resolved as the compiler does: the including file's own directory
# first, then lib/ (-Ilib); system headers, <...>, are not modules. Prints a
# circle for every include that closes one (`lib/a -> lib/b -> lib/a`) and
# exits 1 if there is any, 0 when the modules stack in layers.
set -u
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top" || exit 2

# One "from to" line per include of a module that exists here.
for f in lib/*.c lib/*.h cmd/*.c cmd/*.h; do
    [ -f "$f" ] || continue
    awk -v file="$f" '
        /^[ \t]*#[ \t]*include[ \t]*"/ {
            s = $0
            sub(/^[^"]*"/, "", s); sub(/".*$/, "", s)
            print file, s
        }' "$f"
done | while read -r file hdr; do
    dir=${file%/*}
    if [ -f "$dir/$hdr" ]; then to="$dir/$hdr"
    elif [ -f "lib/$hdr" ]; then to="lib/$hdr"
    else continue   # not a header of this tree
    fi
    from=${file%.*} to=${to%.*}
    [ "$from" = "$to" ] || echo "$from $to"
done | sort -u | awk '
    { adj[$1] = adj[$1] " " $2; nodes[$1] = 1; nodes[$2] = 1 }
    # Depth-first search; colour 1 = on the stack, 2 = done. A back edge to a
    # module on the stack closes a circle, printed from that module on.
    function visit(v,    i, n, next_, list, j, path) {
        colour[v] = 1; stack[++depth] = v
        n = split(adj[v], list, " ")
        for (i = 1; i <= n; i++) {
            next_ = list[i]
            if (colour[next_] == 1) {
                path = ""
                for (j = depth; j >= 1 && stack[j] != next_; j--) ;
                for (; j <= depth; j++) path = path stack[j] " -> "
                path = path next_
                print "include circle: " path
                found = 1
            } else if (!colour[next_]) {
                visit(next_)
            }
        }
        depth--; colour[v] = 2
    }
    END {
        # Visit in a fixed order so the output is stable.
        m = 0; for (v in nodes) order[++m] = v
        for (i = 2; i <= m; i++) {      # insertion sort: awk has no sort()
            x = order[i]
            for (j = i - 1; j >= 1 && order[j] > x; j--) order[j + 1] = order[j]
            order[j + 1] = x
        }
        for (i = 1; i <= m; i++) if (!colour[order[i]]) visit(order[i])
        if (found) exit 1
        print "include graph: " m " modules, no circles"
    }'
