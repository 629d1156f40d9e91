/* chroot-escape.c - the classic way out of a chroot for root: chroot into a
 * subdirectory without entering it, climb "..", chroot "." and write FILE
 * (a path on the host). Prints "ESCAPED" or "BLOCKED <step> (<reason>)".
 * Built statically by tests/e2e/t2010-build-run-isolation.sh. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: chroot-escape HOST-FILE\n");
        return 2;
    }
    mkdir("/jail", 0755);
    if (chroot("/jail") < 0) {
        printf("BLOCKED chroot (%s)\n", strerror(errno));
        return 0;
    }
    for (int i = 0; i < 64; i++)
        if (chdir("..") < 0)
            break;
    if (chroot(".") < 0) {
        printf("BLOCKED chroot back (%s)\n", strerror(errno));
        return 0;
    }
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        printf("BLOCKED open %s (%s)\n", argv[1], strerror(errno));
        return 0;
    }
    dprintf(fd, "escaped\n");
    close(fd);
    printf("ESCAPED\n");
    return 0;
}
