/* template-transfer.h - one build of a template as a tar, and back into a
 * store: how a cluster node gets a template from the node that has it.
 *
 * The tar holds template.json first, then the root tree under rootfs/
 * (owners, modes, times, hardlinks, symlinks, extended attributes). The
 * ext4 image is not sent: the importer makes its own from the tree, sized
 * as the template says. A VM snapshot is not sent either (a VM of the
 * imported template boots afresh until one is saved there).
 *
 * The import unpacks through layer.c, so nothing can land outside the
 * staged build, and commits through the store: a broken or cut transfer
 * leaves the store as it was.
 */
#ifndef E2B_TEMPLATE_TRANSFER_H
#define E2B_TEMPLATE_TRANSFER_H

#include "error.h"

/* The current build of template_id (NOT_FOUND unless it is build_id) as a
 * tar into fd. */
int e2b_template_export(const char *template_id, const char *build_id, int fd,
                        struct e2b_error **err);

/* A tar made by e2b_template_export into this machine's store, under its
 * template and build IDs and names. Nothing to do when the store has
 * that build already. */
int e2b_template_import(const char *tar_path, struct e2b_error **err);

#endif
