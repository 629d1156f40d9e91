#!/bin/sh
# The test library itself: a body that is not one &&-chain stops the script
# (chain-lint), prerequisites skip what they guard, a failing test prints its
# output where prove shows it.
. "$(dirname "$0")/test-lib.sh"

# Runs a throwaway test script (its body on stdin) with this test-lib. It
# works in a trash directory of its own: its bodies leave marks in $OUTER.
run_script() { # name
    export OUTER="$TRASH" &&
    { echo ". \"$TEST_DIR/test-lib.sh\""; cat; echo "test_done"; } > "$1.sh" &&
    sh "$1.sh" > "$1.out" 2> "$1.err"
}

test_expect_success 'a body whose lines are not joined by && fails, unrun; the lint runs no program' '
    cat > broken.body <<-\EOF &&
	test_expect_success "broken" "
	    false && touch $OUTER/ran-first
	    touch $OUTER/ran-second
	"
	EOF
    test_expect_code 1 run_script broken < broken.body &&
    test_grep "^not ok 1 - broken" broken.out && test_grep "broken &&-chain" broken.err &&
    test ! -e ran-first && test ! -e ran-second
'

test_expect_success 'an unchained command hidden by ; is caught too' '
    printf "test_expect_success semi \"true; touch \$OUTER/ran-semi && true\"\n" > semi.body &&
    test_expect_code 1 run_script semi < semi.body && test_grep "broken &&-chain" semi.out &&
    test ! -e ran-semi
'

test_expect_success 'a chained body with compound commands passes the lint and runs' '
    cat > good.body <<-\EOF &&
	test_expect_success "good" "
	    for i in 1 2; do echo \$i; done > n &&
	    { false || true; } &&
	    if true; then touch $OUTER/ran-good; fi
	"
	EOF
    run_script good < good.body && test_grep "^ok 1 - good" good.out && test -e ran-good
'

test_expect_success 'a missing prerequisite skips the test and says which' '
    cat > pre.body <<-\EOF &&
	test_lazy_prereq NEVER false
	test_set_prereq ALWAYS
	test_expect_success NEVER "guarded" "touch $OUTER/ran-guarded"
	test_expect_success ALWAYS,NEVER "both" "touch $OUTER/ran-both"
	test_expect_success ALWAYS "met" "touch $OUTER/ran-met"
	EOF
    run_script pre < pre.body &&
    test_grep "^ok 1 - guarded # SKIP missing NEVER" pre.out &&
    test_grep "^ok 2 - both # SKIP missing NEVER" pre.out &&
    test_grep "^ok 3 - met$" pre.out &&
    test ! -e ran-guarded && test ! -e ran-both && test -e ran-met
'

test_expect_success 'a failing test is reported not ok, with its output on stderr' '
    printf "test_expect_success sad \"echo the-reason && false\"\n" > sad.body &&
    test_expect_code 1 run_script sad < sad.body &&
    test_grep "^not ok 1 - sad" sad.out && test_grep "the-reason" sad.err
'

test_done
