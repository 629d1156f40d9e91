/* dl-git.h - libgit2, opened on first use (see dl.h).
 *
 * Include this instead of the library's header. To call a function of the
 * library that is not used yet, add it to E2B_GIT_FUNCS and to the redirects.
 */
#pragma once

#include <git2.h>

#include "dl.h"

#define E2B_GIT_FUNCS(X) \
    X(git_libgit2_init) \
    X(git_error_last) \
    X(git_clone_options_init) \
    X(git_clone) \
    X(git_revparse_single) \
    X(git_object_peel) \
    X(git_object_free) \
    X(git_checkout_options_init) \
    X(git_checkout_tree) \
    X(git_repository_set_head_detached) \
    X(git_object_id) \
    X(git_repository_free)

E2B_DL_DECLARE(git, E2B_GIT_FUNCS)

/* Calls keep their names; entry points still call e2b_git_load() first, so
 * that a missing library is an error they can report. */
#ifndef E2B_DL_GIT_IMPL
#define E2B_GIT_CALL(f) (e2b_dl_need(&e2b_git_lib), e2b_git_api.f)
#define git_libgit2_init E2B_GIT_CALL(git_libgit2_init)
#define git_error_last E2B_GIT_CALL(git_error_last)
#define git_clone_options_init E2B_GIT_CALL(git_clone_options_init)
#define git_clone E2B_GIT_CALL(git_clone)
#define git_revparse_single E2B_GIT_CALL(git_revparse_single)
#define git_object_peel E2B_GIT_CALL(git_object_peel)
#define git_object_free E2B_GIT_CALL(git_object_free)
#define git_checkout_options_init E2B_GIT_CALL(git_checkout_options_init)
#define git_checkout_tree E2B_GIT_CALL(git_checkout_tree)
#define git_repository_set_head_detached E2B_GIT_CALL(git_repository_set_head_detached)
#define git_object_id E2B_GIT_CALL(git_object_id)
#define git_repository_free E2B_GIT_CALL(git_repository_free)
#endif
