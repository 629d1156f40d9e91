/* dl-crypto.h - OpenSSL's libcrypto, opened on first use (see dl.h): the
 * AES-256-GCM that seals the secrets `e2b serve` keeps.
 *
 * Include this instead of the library's headers. To call a function of the
 * library that is not used yet, add it to E2B_CRYPTO_FUNCS and to the redirects.
 */
#pragma once

#include <openssl/evp.h>

#include "dl.h"

#define E2B_CRYPTO_FUNCS(X)            \
    X(EVP_CIPHER_CTX_new)              \
    X(EVP_CIPHER_CTX_free)             \
    X(EVP_CIPHER_CTX_ctrl)             \
    X(EVP_aes_256_gcm)                 \
    X(EVP_EncryptInit_ex)              \
    X(EVP_EncryptUpdate)               \
    X(EVP_EncryptFinal_ex)             \
    X(EVP_DecryptInit_ex)              \
    X(EVP_DecryptUpdate)               \
    X(EVP_DecryptFinal_ex)

E2B_DL_DECLARE(crypto, E2B_CRYPTO_FUNCS)

#ifndef E2B_DL_CRYPTO_IMPL
#define E2B_CRYPTO_CALL(f)            (e2b_dl_need(&e2b_crypto_lib), e2b_crypto_api.f)
#define EVP_CIPHER_CTX_new            E2B_CRYPTO_CALL(EVP_CIPHER_CTX_new)
#define EVP_CIPHER_CTX_free           E2B_CRYPTO_CALL(EVP_CIPHER_CTX_free)
#define EVP_CIPHER_CTX_ctrl           E2B_CRYPTO_CALL(EVP_CIPHER_CTX_ctrl)
#define EVP_aes_256_gcm               E2B_CRYPTO_CALL(EVP_aes_256_gcm)
#define EVP_EncryptInit_ex            E2B_CRYPTO_CALL(EVP_EncryptInit_ex)
#define EVP_EncryptUpdate             E2B_CRYPTO_CALL(EVP_EncryptUpdate)
#define EVP_EncryptFinal_ex           E2B_CRYPTO_CALL(EVP_EncryptFinal_ex)
#define EVP_DecryptInit_ex            E2B_CRYPTO_CALL(EVP_DecryptInit_ex)
#define EVP_DecryptUpdate             E2B_CRYPTO_CALL(EVP_DecryptUpdate)
#define EVP_DecryptFinal_ex           E2B_CRYPTO_CALL(EVP_DecryptFinal_ex)
#endif
