/* dl-git.c - see dl-git.h */
#define E2B_DL_GIT_IMPL
#include "dl-git.h"

#ifndef E2B_GIT_SONAME
#define E2B_GIT_SONAME "libgit2.so.1.5"
#endif

static int git_after_load(void)
{
    return e2b_git_api.git_libgit2_init() < 0 ? -1 : 0;
}

E2B_DL_DEFINE(git, E2B_GIT_FUNCS, E2B_GIT_SONAME, git_after_load);
