/* envd-init.h - the guest `init` applet: pid 1 of a microVM (or of any new
 * pid namespace) whose only job is to give envd a working system and keep it
 * running. Mounts /proc, /sys, /dev, /dev/pts, /dev/shm, /tmp and /run when
 * missing, sets the hostname, brings loopback up, starts envd (restarting it
 * if it dies), reaps orphans, and on SIGTERM stops everything and powers off. */
#ifndef E2B_ENVD_INIT_H
#define E2B_ENVD_INIT_H

/* init [--hostname NAME] [--envd PATH] [-- ENVD-ARGS...], or
 * init --vm: pid 1 of an e2b microVM (envd-vm.h), or
 * init --ns --envd-pid PID [--thaw-fd FD]: pid 1 of an e2b `ns` sandbox,
 * exec'd by the host's setup once envd runs (reaps; ends with envd) */
int e2b_init_main(int argc, char **argv);

#endif
