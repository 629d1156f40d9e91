/* dl-curl.h - libcurl, opened on first use (see dl.h).
 *
 * Include this instead of <curl/curl.h>. To call a function of the library
 * that is not used yet, add it to E2B_CURL_FUNCS and to the redirects.
 * curl.h makes curl_easy_setopt and curl_easy_getinfo macros of their own
 * (type checks, or an argument count check): off here, the redirects take
 * those names.
 */
#pragma once

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "dl.h"

#define E2B_CURL_FUNCS(X) \
    X(curl_global_init) \
    X(curl_easy_init) \
    X(curl_easy_setopt) \
    X(curl_easy_perform) \
    X(curl_easy_getinfo) \
    X(curl_easy_cleanup) \
    X(curl_easy_reset) \
    X(curl_easy_strerror) \
    X(curl_slist_append) \
    X(curl_slist_free_all)

E2B_DL_DECLARE(curl, E2B_CURL_FUNCS)

#undef curl_easy_setopt
#undef curl_easy_getinfo

#ifndef E2B_DL_CURL_IMPL
#define E2B_CURL_CALL(f) (e2b_dl_need(&e2b_curl_lib), e2b_curl_api.f)
#define curl_global_init E2B_CURL_CALL(curl_global_init)
#define curl_easy_init E2B_CURL_CALL(curl_easy_init)
#define curl_easy_setopt E2B_CURL_CALL(curl_easy_setopt)
#define curl_easy_perform E2B_CURL_CALL(curl_easy_perform)
#define curl_easy_getinfo E2B_CURL_CALL(curl_easy_getinfo)
#define curl_easy_cleanup E2B_CURL_CALL(curl_easy_cleanup)
#define curl_easy_reset E2B_CURL_CALL(curl_easy_reset)
#define curl_easy_strerror E2B_CURL_CALL(curl_easy_strerror)
#define curl_slist_append E2B_CURL_CALL(curl_slist_append)
#define curl_slist_free_all E2B_CURL_CALL(curl_slist_free_all)
#endif
