/* vm-kernel.h - what a microVM boots: the guest kernel, found on this
 * machine (Debian's linux-image-cloud-amd64 by default), and the initramfs
 * e2b makes for it: the static guest binary as /init (envd-vm.h) and the
 * kernel's own modules the guest needs, in load order.
 *
 * The initramfs is a cpio archive ("newc", uncompressed) holding /init,
 * /dev/console, /lib/modules/<file>.ko for each module with boot.list and
 * net.list naming them in the order modules.dep gives (a module after its
 * dependencies; what modules.builtin lists is skipped). It is cached under
 * <data dir>/cache/vm/, keyed by the kernel's version, the guest binary's
 * SHA-256 and the module files, and written atomically, so many creates
 * share one and a new guest binary or kernel gets a new one; what no
 * create used for a week goes when a new one is made.
 */
#ifndef E2B_VM_KERNEL_H
#define E2B_VM_KERNEL_H

#include "error.h"

struct e2b_vm_kernel {
    char *path;    /* the kernel image (bzImage) */
    char *version; /* its release, as uname -r says it inside */
    char *modules; /* /lib/modules/<version> */
};

/* The kernel to boot: `path` when given (--kernel), else $E2B_VM_KERNEL,
 * else the newest /boot/vmlinuz-*-cloud-amd64, else the newest
 * /boot/vmlinuz-*. E2B_ERR_NOT_FOUND with what to install when there is
 * none, or when its modules are missing. */
int e2b_vm_kernel_find(const char *path, struct e2b_vm_kernel *ret, struct e2b_error **err);
void e2b_vm_kernel_release(struct e2b_vm_kernel *k);

/* What QEMU boots for kernel k: the uncompressed vmlinux (an ELF with a
 * PVH entry note, which QEMU starts directly: no decompression in the
 * guest, which under TCG takes about half a second) taken out of the
 * bzImage once with the host's own decompressor (gzip, xz, zstd, lz4,
 * bzip2, lzma) and cached; else the bzImage itself. Never fails: *ret is
 * one or the other. */
void e2b_vm_kernel_boot_image(const struct e2b_vm_kernel *k, char **ret);

/* The initramfs for kernel k with `init` (the static guest binary) as
 * /init: its path in the cache, made first when missing. */
int e2b_vm_initramfs(const struct e2b_vm_kernel *k, const char *init, char **ret_path,
                     struct e2b_error **err);

#endif
