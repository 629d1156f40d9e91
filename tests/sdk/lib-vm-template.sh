# lib-vm-template.sh - sourced by the SDK runners that start VM sandboxes
# (run-vm.sh, run-snapshots.sh): vm_template_context DIR makes DIR a build
# context (e2b.Dockerfile and root/) of a template with bash, python3 and
# its standard library, busybox's applets for everything else, and the
# libraries they load, all from this machine. Needs busybox and
# /usr/bin/python3 (the runners check).
vm_template_context() {
    _ctx=$1 _py=/usr/bin/python3
    _root=$_ctx/root
    _pyver=$($_py -c 'import sys; print("python%d.%d" % sys.version_info[:2])') || return 1
    mkdir -p "$_root/bin" "$_root/usr/bin" "$_root/usr/lib" "$_root/etc" "$_root/tmp" &&
        cp "$(command -v busybox)" "$_root/bin/busybox" &&
        for _a in $("$_root/bin/busybox" --list); do
            [ -e "$_root/bin/$_a" ] || ln -s busybox "$_root/bin/$_a"
        done &&
        rm -f "$_root/bin/bash" && cp /bin/bash "$_root/bin/bash" &&
        cp "$(readlink -f $_py)" "$_root/usr/bin/$_pyver" && ln -s "$_pyver" "$_root/usr/bin/python3" &&
        cp -a "/usr/lib/$_pyver" "$_root/usr/lib/" && rm -rf "$_root/usr/lib/$_pyver/test" &&
        for _l in $( { ldd /bin/bash; ldd $_py; for _so in /usr/lib/$_pyver/lib-dynload/*.so; do ldd "$_so"; done; } 2>/dev/null |
            grep -o '/[^ ]*' | sort -u); do
            [ -e "$_root$_l" ] || { mkdir -p "$_root$(dirname "$_l")" && cp -L "$_l" "$_root$_l"; }
        done &&
        printf 'root:x:0:0:root:/root:/bin/bash\n' > "$_root/etc/passwd" && printf 'root:x:0:\n' > "$_root/etc/group" &&
        printf 'FROM scratch\nCOPY root/ /\n' > "$_ctx/e2b.Dockerfile"
}
