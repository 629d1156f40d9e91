/* runtime.c - the runtimes this e2b has; see runtime.h */
#include "runtime.h"
#include "vm-accel.h"
#include "vm-kernel.h"

/* A second runtime is one more line here (and its module). */
static const struct e2b_runtime_ops *const runtimes[] = {
    &e2b_runtime_ns,
    &e2b_runtime_vm,
    NULL,
};

const struct e2b_runtime_ops *e2b_runtime_default(void)
{
    return runtimes[0];
}

/* By name; NULL if this e2b has no such runtime. */
static const struct e2b_runtime_ops *find_runtime(const char *name)
{
    for (size_t i = 0; name && runtimes[i]; i++)
        if (STREQ(runtimes[i]->name, name))
            return runtimes[i];
    return NULL;
}

/* auto: a VM only where it is fast (KVM) and has a kernel to boot */
static bool vm_worth_it(const char *kernel)
{
    struct e2b_vm_kernel k;
    if (!e2b_vm_kvm_usable(NULL) || e2b_vm_kernel_find(kernel, &k, NULL) < 0)
        return false;
    e2b_vm_kernel_release(&k);
    return true;
}

const struct e2b_runtime_ops *e2b_runtime_pick(const char *name, bool host_template, const char *kernel,
                                               struct e2b_error **err)
{
    if (!name || STREQ(name, "auto"))
        return !host_template && vm_worth_it(kernel) ? &e2b_runtime_vm : &e2b_runtime_ns;
    const struct e2b_runtime_ops *rt = find_runtime(name);
    if (!rt)
        e2b_error_set(err, E2B_ERR_INVALID, "unknown runtime '%s' (ns, vm or auto)", name);
    return rt;
}

const struct e2b_runtime_ops *e2b_runtime_of(const json_t *state, struct e2b_error **err)
{
    const char *name = e2b_json_str(state, "runtime");
    const struct e2b_runtime_ops *rt = find_runtime(name ? name : e2b_runtime_ns.name);
    if (!rt)
        e2b_error_set(err, E2B_ERR_UNSUPPORTED, "sandbox '%s' runs on the '%s' runtime, which this e2b does not have",
                      e2b_json_str(state, "sandboxID") ? e2b_json_str(state, "sandboxID") : "", name);
    return rt;
}
