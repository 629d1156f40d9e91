/* dl-archive.h - libarchive, opened on first use (see dl.h).
 *
 * Include this instead of the library's header. To call a function of the
 * library that is not used yet, add it to E2B_ARCHIVE_FUNCS and to the redirects.
 */
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "dl.h"

#define E2B_ARCHIVE_FUNCS(X) \
    X(archive_entry_atime) \
    X(archive_entry_atime_is_set) \
    X(archive_entry_atime_nsec) \
    X(archive_entry_filetype) \
    X(archive_entry_gid) \
    X(archive_entry_hardlink) \
    X(archive_entry_mtime) \
    X(archive_entry_mtime_is_set) \
    X(archive_entry_mtime_nsec) \
    X(archive_entry_pathname) \
    X(archive_entry_perm) \
    X(archive_entry_rdevmajor) \
    X(archive_entry_rdevminor) \
    X(archive_entry_size) \
    X(archive_entry_size_is_set) \
    X(archive_entry_symlink) \
    X(archive_entry_uid) \
    X(archive_entry_xattr_next) \
    X(archive_entry_xattr_reset) \
    X(archive_errno) \
    X(archive_error_string) \
    X(archive_read_data) \
    X(archive_read_data_block) \
    X(archive_read_free) \
    X(archive_read_new) \
    X(archive_read_next_header) \
    X(archive_read_open) \
    X(archive_read_open_fd) \
    X(archive_read_open_filename) \
    X(archive_read_support_filter_all) \
    X(archive_read_support_filter_gzip) \
    X(archive_read_support_filter_none) \
    X(archive_read_support_filter_zstd) \
    X(archive_read_support_format_raw) \
    X(archive_read_support_format_tar) \
    X(archive_set_error) \
    X(archive_write_close) \
    X(archive_write_data_block) \
    X(archive_write_disk_new) \
    X(archive_write_disk_set_options) \
    X(archive_write_disk_set_standard_lookup) \
    X(archive_write_finish_entry) \
    X(archive_write_header) \
    X(archive_entry_copy_stat) \
    X(archive_entry_free) \
    X(archive_entry_new) \
    X(archive_entry_set_pathname) \
    X(archive_entry_set_symlink) \
    X(archive_write_add_filter_gzip) \
    X(archive_write_data) \
    X(archive_write_free) \
    X(archive_write_new) \
    X(archive_write_open_fd) \
    X(archive_write_set_format_pax_restricted) \
    X(archive_write_set_filter_option) \
    X(archive_entry_set_hardlink) \
    X(archive_entry_set_size) \
    X(archive_entry_xattr_add_entry)

E2B_DL_DECLARE(archive, E2B_ARCHIVE_FUNCS)

/* Calls keep their names; entry points still call e2b_archive_load() first, so
 * that a missing library is an error they can report. */
#ifndef E2B_DL_ARCHIVE_IMPL
#define E2B_ARCHIVE_CALL(f) (e2b_dl_need(&e2b_archive_lib), e2b_archive_api.f)
#define archive_entry_atime E2B_ARCHIVE_CALL(archive_entry_atime)
#define archive_entry_atime_is_set E2B_ARCHIVE_CALL(archive_entry_atime_is_set)
#define archive_entry_atime_nsec E2B_ARCHIVE_CALL(archive_entry_atime_nsec)
#define archive_entry_filetype E2B_ARCHIVE_CALL(archive_entry_filetype)
#define archive_entry_gid E2B_ARCHIVE_CALL(archive_entry_gid)
#define archive_entry_hardlink E2B_ARCHIVE_CALL(archive_entry_hardlink)
#define archive_entry_mtime E2B_ARCHIVE_CALL(archive_entry_mtime)
#define archive_entry_mtime_is_set E2B_ARCHIVE_CALL(archive_entry_mtime_is_set)
#define archive_entry_mtime_nsec E2B_ARCHIVE_CALL(archive_entry_mtime_nsec)
#define archive_entry_pathname E2B_ARCHIVE_CALL(archive_entry_pathname)
#define archive_entry_perm E2B_ARCHIVE_CALL(archive_entry_perm)
#define archive_entry_rdevmajor E2B_ARCHIVE_CALL(archive_entry_rdevmajor)
#define archive_entry_rdevminor E2B_ARCHIVE_CALL(archive_entry_rdevminor)
#define archive_entry_size E2B_ARCHIVE_CALL(archive_entry_size)
#define archive_entry_size_is_set E2B_ARCHIVE_CALL(archive_entry_size_is_set)
#define archive_entry_symlink E2B_ARCHIVE_CALL(archive_entry_symlink)
#define archive_entry_uid E2B_ARCHIVE_CALL(archive_entry_uid)
#define archive_entry_xattr_next E2B_ARCHIVE_CALL(archive_entry_xattr_next)
#define archive_entry_xattr_reset E2B_ARCHIVE_CALL(archive_entry_xattr_reset)
#define archive_errno E2B_ARCHIVE_CALL(archive_errno)
#define archive_error_string E2B_ARCHIVE_CALL(archive_error_string)
#define archive_read_data E2B_ARCHIVE_CALL(archive_read_data)
#define archive_read_data_block E2B_ARCHIVE_CALL(archive_read_data_block)
#define archive_read_free E2B_ARCHIVE_CALL(archive_read_free)
#define archive_read_new E2B_ARCHIVE_CALL(archive_read_new)
#define archive_read_next_header E2B_ARCHIVE_CALL(archive_read_next_header)
#define archive_read_open E2B_ARCHIVE_CALL(archive_read_open)
#define archive_read_open_fd E2B_ARCHIVE_CALL(archive_read_open_fd)
#define archive_read_open_filename E2B_ARCHIVE_CALL(archive_read_open_filename)
#define archive_read_support_filter_all E2B_ARCHIVE_CALL(archive_read_support_filter_all)
#define archive_read_support_filter_gzip E2B_ARCHIVE_CALL(archive_read_support_filter_gzip)
#define archive_read_support_filter_none E2B_ARCHIVE_CALL(archive_read_support_filter_none)
#define archive_read_support_filter_zstd E2B_ARCHIVE_CALL(archive_read_support_filter_zstd)
#define archive_read_support_format_raw E2B_ARCHIVE_CALL(archive_read_support_format_raw)
#define archive_read_support_format_tar E2B_ARCHIVE_CALL(archive_read_support_format_tar)
#define archive_set_error E2B_ARCHIVE_CALL(archive_set_error)
#define archive_write_close E2B_ARCHIVE_CALL(archive_write_close)
#define archive_write_data_block E2B_ARCHIVE_CALL(archive_write_data_block)
#define archive_write_disk_new E2B_ARCHIVE_CALL(archive_write_disk_new)
#define archive_write_disk_set_options E2B_ARCHIVE_CALL(archive_write_disk_set_options)
#define archive_write_disk_set_standard_lookup E2B_ARCHIVE_CALL(archive_write_disk_set_standard_lookup)
#define archive_write_finish_entry E2B_ARCHIVE_CALL(archive_write_finish_entry)
#define archive_write_header E2B_ARCHIVE_CALL(archive_write_header)
#define archive_entry_copy_stat E2B_ARCHIVE_CALL(archive_entry_copy_stat)
#define archive_entry_free E2B_ARCHIVE_CALL(archive_entry_free)
#define archive_entry_new E2B_ARCHIVE_CALL(archive_entry_new)
#define archive_entry_set_pathname E2B_ARCHIVE_CALL(archive_entry_set_pathname)
#define archive_entry_set_symlink E2B_ARCHIVE_CALL(archive_entry_set_symlink)
#define archive_write_add_filter_gzip E2B_ARCHIVE_CALL(archive_write_add_filter_gzip)
#define archive_write_data E2B_ARCHIVE_CALL(archive_write_data)
#define archive_write_free E2B_ARCHIVE_CALL(archive_write_free)
#define archive_write_new E2B_ARCHIVE_CALL(archive_write_new)
#define archive_write_open_fd E2B_ARCHIVE_CALL(archive_write_open_fd)
#define archive_write_set_format_pax_restricted E2B_ARCHIVE_CALL(archive_write_set_format_pax_restricted)
#define archive_write_set_filter_option E2B_ARCHIVE_CALL(archive_write_set_filter_option)
#define archive_entry_set_hardlink E2B_ARCHIVE_CALL(archive_entry_set_hardlink)
#define archive_entry_set_size E2B_ARCHIVE_CALL(archive_entry_set_size)
#define archive_entry_xattr_add_entry E2B_ARCHIVE_CALL(archive_entry_xattr_add_entry)
#endif
