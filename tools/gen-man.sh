#!/bin/sh
# gen-man.sh E2B PAGE.scd - print the scdoc source with the generated parts
# filled in: @SYNOPSIS@ and @OPTIONS@ from `e2b __man`, which reads the
# command table, and @COMMANDS@ (e2b.1) listing every command.
set -eu
e2b=$1
src=$2
page=$(basename "$src" .1.scd)
words=$(echo "${page#e2b}" | sed 's/^-//')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "$words" ]; then
    "$e2b" __man synopsis "$words" > "$tmp/synopsis"
    "$e2b" __man options "$words" > "$tmp/options"
fi
"$e2b" __man commands > "$tmp/commands"
while IFS= read -r line || [ -n "$line" ]; do
    case $line in
    @SYNOPSIS@) cat "$tmp/synopsis" ;;
    @OPTIONS@) cat "$tmp/options" ;;
    @COMMANDS@) cat "$tmp/commands" ;;
    *) printf '%s\n' "$line" ;;
    esac
done < "$src"
