/* dl-crypto.c - see dl-crypto.h */
#define E2B_DL_CRYPTO_IMPL
#include "dl-crypto.h"

#ifndef E2B_CRYPTO_SONAME
#define E2B_CRYPTO_SONAME "libcrypto.so.3"
#endif

E2B_DL_DEFINE(crypto, E2B_CRYPTO_FUNCS, E2B_CRYPTO_SONAME, NULL);
