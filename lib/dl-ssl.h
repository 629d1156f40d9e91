/* dl-ssl.h - OpenSSL's libssl, opened on first use (see dl.h): the TLS of
 * the egress filter's interception (egress-tls.h); its keys and
 * certificates are libcrypto's (dl-crypto.h).
 *
 * Include this instead of the library's header. To call a function of the
 * library that is not used yet, add it to E2B_SSL_FUNCS and to the redirects.
 */
#pragma once

#include <openssl/ssl.h>

#include "dl.h"

#define E2B_SSL_FUNCS(X)                \
    X(TLS_server_method)                \
    X(TLS_client_method)                \
    X(SSL_CTX_new)                      \
    X(SSL_CTX_free)                     \
    X(SSL_CTX_ctrl)                     \
    X(SSL_CTX_set_alpn_select_cb)       \
    X(SSL_CTX_set_alpn_protos)          \
    X(SSL_CTX_set_verify)               \
    X(SSL_CTX_set_default_verify_paths) \
    X(SSL_CTX_load_verify_locations)    \
    X(SSL_select_next_proto)            \
    X(SSL_new)                          \
    X(SSL_free)                         \
    X(SSL_set_fd)                       \
    X(SSL_use_certificate)              \
    X(SSL_use_PrivateKey)               \
    X(SSL_ctrl)                         \
    X(SSL_set1_host)                    \
    X(SSL_accept)                       \
    X(SSL_connect)                      \
    X(SSL_read)                         \
    X(SSL_write)                        \
    X(SSL_pending)                      \
    X(SSL_shutdown)                     \
    X(SSL_get_error)                    \
    X(SSL_get_verify_result)

E2B_DL_DECLARE(ssl, E2B_SSL_FUNCS)

#ifndef E2B_DL_SSL_IMPL
#define E2B_SSL_CALL(f)                  (e2b_dl_need(&e2b_ssl_lib), e2b_ssl_api.f)
#define TLS_server_method                E2B_SSL_CALL(TLS_server_method)
#define TLS_client_method                E2B_SSL_CALL(TLS_client_method)
#define SSL_CTX_new                      E2B_SSL_CALL(SSL_CTX_new)
#define SSL_CTX_free                     E2B_SSL_CALL(SSL_CTX_free)
#define SSL_CTX_ctrl                     E2B_SSL_CALL(SSL_CTX_ctrl)
#define SSL_CTX_set_alpn_select_cb       E2B_SSL_CALL(SSL_CTX_set_alpn_select_cb)
#define SSL_CTX_set_alpn_protos          E2B_SSL_CALL(SSL_CTX_set_alpn_protos)
#define SSL_CTX_set_verify               E2B_SSL_CALL(SSL_CTX_set_verify)
#define SSL_CTX_set_default_verify_paths E2B_SSL_CALL(SSL_CTX_set_default_verify_paths)
#define SSL_CTX_load_verify_locations    E2B_SSL_CALL(SSL_CTX_load_verify_locations)
#define SSL_select_next_proto            E2B_SSL_CALL(SSL_select_next_proto)
#define SSL_new                          E2B_SSL_CALL(SSL_new)
#define SSL_free                         E2B_SSL_CALL(SSL_free)
#define SSL_set_fd                       E2B_SSL_CALL(SSL_set_fd)
#define SSL_use_certificate              E2B_SSL_CALL(SSL_use_certificate)
#define SSL_use_PrivateKey               E2B_SSL_CALL(SSL_use_PrivateKey)
#define SSL_ctrl                         E2B_SSL_CALL(SSL_ctrl)
#define SSL_set1_host                    E2B_SSL_CALL(SSL_set1_host)
#define SSL_accept                       E2B_SSL_CALL(SSL_accept)
#define SSL_connect                      E2B_SSL_CALL(SSL_connect)
#define SSL_read                         E2B_SSL_CALL(SSL_read)
#define SSL_write                        E2B_SSL_CALL(SSL_write)
#define SSL_pending                      E2B_SSL_CALL(SSL_pending)
#define SSL_shutdown                     E2B_SSL_CALL(SSL_shutdown)
#define SSL_get_error                    E2B_SSL_CALL(SSL_get_error)
#define SSL_get_verify_result            E2B_SSL_CALL(SSL_get_verify_result)
#endif
