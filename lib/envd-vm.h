/* envd-vm.h - init's microVM half: pid 1 of a VM that e2b booted (the
 * `vm` runtime, runtime-vm.c), run from the initramfs e2b made for it
 * (vm-kernel.c) as `/init --vm`.
 *
 * It loads the kernel modules the initramfs lists (virtio-mmio, -blk,
 * -console, overlay; -net when the sandbox has internet), opens the link
 * to the host (a virtio-serial port named E2B_VM_PORT_NAME, vmlink.h),
 * says HELLO and takes its CONFIG: the template's ext4 image read-only
 * (the disk with serial E2B_VM_ROOT_SERIAL) under the sandbox's writable
 * disk (E2B_VM_DISK_SERIAL) as an overlay, which becomes the root, and
 * each volume's disk (its own ext4) mounted at the path CONFIG names; /dev,
 * /proc, /sys moved into it; envd at /run/e2b/envd with the same
 * arguments and /init body as under the ns runtime, listening on
 * /run/e2b/envd.sock. Then READY, and from there the link's OPENs become
 * connections to envd (E2B_VMLINK_PORT_ENVD) or to a TCP port on the
 * guest's loopback, and envd's output goes to the host as LOG. init reaps
 * orphans, restarts envd if it dies, and powers off on SIGTERM. A failure
 * before the link exists ends init, which panics the kernel: the host
 * reports the console's last lines.
 */
#ifndef E2B_ENVD_VM_H
#define E2B_ENVD_VM_H

#define E2B_VM_PORT_NAME   "org.e2b.link"
#define E2B_VM_ROOT_SERIAL "e2b-root"
#define E2B_VM_DISK_SERIAL "e2b-disk"
/* A volume's disk: this and its index (CONFIG's "volumes": [{serial, path}]). */
#define E2B_VM_VOLUME_SERIAL "e2b-vol-"
/* In the initramfs: the modules to load, one file name a line, in order. */
#define E2B_VM_MODULES_BOOT "/lib/modules/boot.list"
#define E2B_VM_MODULES_NET  "/lib/modules/net.list"
/* The guest's address with internet (QEMU's user-mode network). */
#define E2B_VM_GUEST_IP "10.0.2.15"
#define E2B_VM_GATEWAY  "10.0.2.2"
#define E2B_VM_DNS      "10.0.2.3"

/* Never returns while it is pid 1 of a VM. */
int e2b_init_vm_main(void);

#endif
