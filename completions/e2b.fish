# fish completion for e2b: candidates come from `e2b __complete` (the command table).
function __e2b_complete
    set -l words (commandline -opc)
    set -e words[1]
    set -l out (e2b __complete -- $words (commandline -ct) 2>/dev/null)
    switch "$out[1]"
        case @files @dirs
            __fish_complete_path (commandline -ct)
        case '*'
            printf '%s\n' $out
    end
end
complete -c e2b -f -a '(__e2b_complete)'
