# bash completion for e2b. Candidates come from `e2b __complete`, which reads
# the same command table as --help and the man pages.
_e2b() {
    local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\n' out
    out=$("${COMP_WORDS[0]}" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return
    case $out in
    @files) COMPREPLY=($(compgen -f -- "$cur")) ;;
    @dirs) COMPREPLY=($(compgen -d -- "$cur")) ;;
    *) COMPREPLY=($out) ;;
    esac
}
complete -o default -F _e2b e2b
