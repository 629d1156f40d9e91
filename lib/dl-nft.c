/* dl-nft.c - see dl-nft.h */
#define E2B_DL_NFT_IMPL
#include "dl-nft.h"

#ifndef E2B_NFT_SONAME
#define E2B_NFT_SONAME "libnftables.so.1"
#endif

E2B_DL_DEFINE(nft, E2B_NFT_FUNCS, E2B_NFT_SONAME, NULL);
