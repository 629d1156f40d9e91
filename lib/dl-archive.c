/* dl-archive.c - see dl-archive.h */
#define E2B_DL_ARCHIVE_IMPL
#include "dl-archive.h"

#ifndef E2B_ARCHIVE_SONAME
#define E2B_ARCHIVE_SONAME "libarchive.so.13"
#endif

E2B_DL_DEFINE(archive, E2B_ARCHIVE_FUNCS, E2B_ARCHIVE_SONAME, NULL);
