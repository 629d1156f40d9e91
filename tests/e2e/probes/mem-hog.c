/* mem-hog KIB COUNT [ADJ]: COUNT processes that each touch KIB KiB and wait.
 * Each is smaller than envd, so when together they exhaust the sandbox's
 * memory, only the oom_score_adj envd gives its children keeps the OOM
 * killer off envd. ADJ, when given, is written first (a probe of the
 * control case: 0 puts them level with envd). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mem-hog KIB COUNT [ADJ]\n");
        return 2;
    }
    size_t size = (size_t)atol(argv[1]) << 10;
    int count = atoi(argv[2]);
    if (argc > 3) {
        int fd = open("/proc/self/oom_score_adj", O_WRONLY);
        if (fd < 0 || write(fd, argv[3], strlen(argv[3])) < 0)
            perror("oom_score_adj");
        if (fd >= 0)
            close(fd);
    }
    for (int i = 0; i < count; i++) {
        pid_t pid = fork();
        if (pid < 0)
            break;
        if (pid == 0) {
            volatile char *p = malloc(size); /* volatile: the stores must happen */
            for (size_t off = 0; p && off < size; off += 4096)
                p[off] = 1;
            pause();
            _exit(0);
        }
    }
    sleep(30); /* the test's exec --timeout ends it */
    return 0;
}
