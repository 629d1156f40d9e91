/* vm-accel.h - which accelerator QEMU gets: KVM where /dev/kvm can run a
 * stock guest kernel, TCG (QEMU's own translation) elsewhere.
 *
 * KVM counts when /dev/kvm opens, speaks API 12 and makes a VM, and is not
 * PVM (the kvm_pvm module without kvm_intel or kvm_amd: a stock kernel
 * hangs at boot under it). E2B_VM_ACCEL=kvm|tcg overrides the test (kvm is
 * then an error where it is not usable).
 */
#ifndef E2B_VM_ACCEL_H
#define E2B_VM_ACCEL_H

#include "error.h"

/* "kvm" or "tcg"; why (if not NULL) gets why KVM is not used. */
int e2b_vm_accel(const char **ret, char **why, struct e2b_error **err);
/* Can KVM run the guest here (the test above, without the override)? */
bool e2b_vm_kvm_usable(char **why);

/* The host's TSC rate in kHz, measured (0 where there is no TSC). Under
 * TCG the guest's TSC is the host's, and a loaded host makes the guest
 * kernel's own calibration fail (no HPET or PM timer on microvm to check
 * against) and hang at boot: the guest is told it (tsc_early_khz=). */
unsigned long e2b_vm_tsc_khz(void);

#endif
