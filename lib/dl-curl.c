/* dl-curl.c - see dl-curl.h */
#define E2B_DL_CURL_IMPL
#include "dl-curl.h"

#ifndef E2B_CURL_SONAME
#define E2B_CURL_SONAME "libcurl.so.4"
#endif

/* Once, under the loader's lock, before any transfer: what main() did when
 * libcurl was linked. */
static int curl_after_load(void)
{
    return e2b_curl_api.curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

E2B_DL_DEFINE(curl, E2B_CURL_FUNCS, E2B_CURL_SONAME, curl_after_load);
