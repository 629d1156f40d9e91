/* dl-ssl.c - see dl-ssl.h */
#define E2B_DL_SSL_IMPL
#include "dl-ssl.h"

#ifndef E2B_SSL_SONAME
#define E2B_SSL_SONAME "libssl.so.3"
#endif

E2B_DL_DEFINE(ssl, E2B_SSL_FUNCS, E2B_SSL_SONAME, NULL);
