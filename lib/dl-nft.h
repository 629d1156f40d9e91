/* dl-nft.h - libnftables (Debian's nftables, on libnftnl), opened on first
 * use (see dl.h): only a sandbox with outbound rules loads it.
 *
 * Include this instead of the library's header. To call a function of the
 * library that is not used yet, add it to E2B_NFT_FUNCS and to the redirects.
 */
#pragma once

#include <nftables/libnftables.h>

#include "dl.h"

#define E2B_NFT_FUNCS(X)               \
    X(nft_ctx_new)                     \
    X(nft_ctx_free)                    \
    X(nft_ctx_buffer_error)            \
    X(nft_ctx_get_error_buffer)        \
    X(nft_ctx_buffer_output)           \
    X(nft_ctx_get_output_buffer)       \
    X(nft_run_cmd_from_buffer)

E2B_DL_DECLARE(nft, E2B_NFT_FUNCS)

#ifndef E2B_DL_NFT_IMPL
#define E2B_NFT_CALL(f)               (e2b_dl_need(&e2b_nft_lib), e2b_nft_api.f)
#define nft_ctx_new                   E2B_NFT_CALL(nft_ctx_new)
#define nft_ctx_free                  E2B_NFT_CALL(nft_ctx_free)
#define nft_ctx_buffer_error          E2B_NFT_CALL(nft_ctx_buffer_error)
#define nft_ctx_get_error_buffer      E2B_NFT_CALL(nft_ctx_get_error_buffer)
#define nft_ctx_buffer_output         E2B_NFT_CALL(nft_ctx_buffer_output)
#define nft_ctx_get_output_buffer     E2B_NFT_CALL(nft_ctx_get_output_buffer)
#define nft_run_cmd_from_buffer       E2B_NFT_CALL(nft_run_cmd_from_buffer)
#endif
