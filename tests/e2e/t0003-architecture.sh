#!/bin/sh
# docs/ARCHITECTURE.md stays true to the tree: its module map names every
# file of lib/ and cmd/ exactly once and nothing that is gone; the README
# links it; the modules stack in layers (no include circle).
. "$(dirname "$0")/test-lib.sh"

DOC=$SRC_DIR/docs/ARCHITECTURE.md

# The first column of the module map's tables, as lib/NAME or cmd/NAME (the
# `cmd/` section names cmd/ files, the others lib/ files).
map_names() {
    awk '/^## Module map/ { on = 1; next } /^## / { on = 0 }
         on && /^### / { dir = index($0, "cmd/") ? "cmd/" : "lib/" }
         on && /^\| `[^`]*` \|/ { split($0, f, "`"); print dir f[2] }' "$DOC"
}

# The files the map must name: every .c and .def, and each header that has
# no .c of its own.
tree_names() {
    for f in "$SRC_DIR"/lib/*.c "$SRC_DIR"/cmd/*.c "$SRC_DIR"/cmd/*.def; do
        echo "${f#$SRC_DIR/}"
    done
    for h in "$SRC_DIR"/lib/*.h "$SRC_DIR"/cmd/*.h; do
        [ -f "${h%.h}.c" ] || echo "${h#$SRC_DIR/}"
    done
}

test_expect_success 'the module map names every file of lib/ and cmd/' '
    map_names | sort > named && tree_names | sort > files &&
    test -s named && comm -13 named files > missing &&
    { test ! -s missing || { echo "not in docs/ARCHITECTURE.md: $(cat missing)"; false; }; }
'

test_expect_success 'it names each once, and nothing that is not there' '
    map_names | sort | uniq -d > twice &&
    { test ! -s twice || { echo "named twice: $(cat twice)"; false; }; } &&
    map_names | sort > named && tree_names | sort > files &&
    comm -23 named files > stale &&
    { test ! -s stale || { echo "named but not in the tree: $(cat stale)"; false; }; }
'

test_expect_success 'a new lib file missing from the map is caught' '
    mkdir -p fake/lib fake/cmd fake/docs && cp "$DOC" fake/docs/ &&
    for f in "$SRC_DIR"/lib/* "$SRC_DIR"/cmd/*; do : > "fake/${f#$SRC_DIR/}"; done &&
    : > fake/lib/brand-new-module.c &&
    SRC_DIR=$TRASH/fake DOC=$TRASH/fake/docs/ARCHITECTURE.md &&
    tree_names | sort > files && map_names | sort > named &&
    comm -13 named files > missing && test_grep lib/brand-new-module.c missing
'

test_expect_success 'the tree has no include circle, and the check finds one' '
    "$SRC_DIR/tools/include-graph.sh" > graph && test_grep "no circles" graph &&
    mkdir -p circ/lib circ/cmd &&
    printf "#include \"b.h\"\n" > circ/lib/a.h && printf "#include \"c.h\"\n" > circ/lib/b.c &&
    printf "#include \"a.h\"\n" > circ/lib/c.h && : > circ/lib/b.h &&
    test_expect_code 1 "$SRC_DIR/tools/include-graph.sh" "$TRASH/circ" > graph &&
    test_grep "include circle: lib/a -> lib/b -> lib/c -> lib/a" graph
'

test_expect_success 'the README links it, not a path outside the repository' '
    test_grep "docs/ARCHITECTURE.md" "$SRC_DIR/README.md" &&
    test_grep -v "shared/DESIGN.md" "$SRC_DIR/README.md"
'

test_done
