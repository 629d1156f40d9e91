/* dl-crypto.h - OpenSSL's libcrypto, opened on first use (see dl.h): the
 * AES-256-GCM that seals the secrets `e2b serve` keeps, and the keys and
 * certificates of the egress filter's TLS (egress-tls.h).
 *
 * Include this instead of the library's headers. To call a function of the
 * library that is not used yet, add it to E2B_CRYPTO_FUNCS and to the redirects.
 */
#pragma once

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "dl.h"

#define E2B_CRYPTO_FUNCS(X)       \
    X(EVP_CIPHER_CTX_new)         \
    X(EVP_CIPHER_CTX_free)        \
    X(EVP_CIPHER_CTX_ctrl)        \
    X(EVP_aes_256_gcm)            \
    X(EVP_EncryptInit_ex)         \
    X(EVP_EncryptUpdate)          \
    X(EVP_EncryptFinal_ex)        \
    X(EVP_DecryptInit_ex)         \
    X(EVP_DecryptUpdate)          \
    X(EVP_DecryptFinal_ex)        \
    X(EVP_PKEY_Q_keygen)          \
    X(EVP_PKEY_free)              \
    X(EVP_sha256)                 \
    X(X509_new)                   \
    X(X509_free)                  \
    X(X509_set_version)           \
    X(X509_get_serialNumber)      \
    X(ASN1_INTEGER_set_uint64)    \
    X(X509_getm_notBefore)        \
    X(X509_getm_notAfter)         \
    X(X509_gmtime_adj)            \
    X(X509_set_pubkey)            \
    X(X509_get_subject_name)      \
    X(X509_NAME_add_entry_by_txt) \
    X(X509_set_issuer_name)       \
    X(X509_sign)                  \
    X(X509V3_set_ctx)             \
    X(X509V3_EXT_nconf_nid)       \
    X(X509_add_ext)               \
    X(X509_EXTENSION_free)        \
    X(X509_check_private_key)     \
    X(PEM_write_bio_X509)         \
    X(PEM_write_bio_PrivateKey)   \
    X(PEM_read_bio_X509)          \
    X(PEM_read_bio_PrivateKey)    \
    X(BIO_new)                    \
    X(BIO_new_mem_buf)            \
    X(BIO_s_mem)                  \
    X(BIO_free)                   \
    X(BIO_ctrl)                   \
    X(RAND_bytes)                 \
    X(ERR_get_error)              \
    X(ERR_error_string_n)         \
    X(ERR_clear_error)            \
    X(X509_verify_cert_error_string)

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
#define EVP_PKEY_Q_keygen             E2B_CRYPTO_CALL(EVP_PKEY_Q_keygen)
#define EVP_PKEY_free                 E2B_CRYPTO_CALL(EVP_PKEY_free)
#define EVP_sha256                    E2B_CRYPTO_CALL(EVP_sha256)
#define X509_new                      E2B_CRYPTO_CALL(X509_new)
#define X509_free                     E2B_CRYPTO_CALL(X509_free)
#define X509_set_version              E2B_CRYPTO_CALL(X509_set_version)
#define X509_get_serialNumber         E2B_CRYPTO_CALL(X509_get_serialNumber)
#define ASN1_INTEGER_set_uint64       E2B_CRYPTO_CALL(ASN1_INTEGER_set_uint64)
#define X509_getm_notBefore           E2B_CRYPTO_CALL(X509_getm_notBefore)
#define X509_getm_notAfter            E2B_CRYPTO_CALL(X509_getm_notAfter)
#define X509_gmtime_adj               E2B_CRYPTO_CALL(X509_gmtime_adj)
#define X509_set_pubkey               E2B_CRYPTO_CALL(X509_set_pubkey)
#define X509_get_subject_name         E2B_CRYPTO_CALL(X509_get_subject_name)
#define X509_NAME_add_entry_by_txt    E2B_CRYPTO_CALL(X509_NAME_add_entry_by_txt)
#define X509_set_issuer_name          E2B_CRYPTO_CALL(X509_set_issuer_name)
#define X509_sign                     E2B_CRYPTO_CALL(X509_sign)
#define X509V3_set_ctx                E2B_CRYPTO_CALL(X509V3_set_ctx)
#define X509V3_EXT_nconf_nid          E2B_CRYPTO_CALL(X509V3_EXT_nconf_nid)
#define X509_add_ext                  E2B_CRYPTO_CALL(X509_add_ext)
#define X509_EXTENSION_free           E2B_CRYPTO_CALL(X509_EXTENSION_free)
#define X509_check_private_key        E2B_CRYPTO_CALL(X509_check_private_key)
#define PEM_write_bio_X509            E2B_CRYPTO_CALL(PEM_write_bio_X509)
#define PEM_write_bio_PrivateKey      E2B_CRYPTO_CALL(PEM_write_bio_PrivateKey)
#define PEM_read_bio_X509             E2B_CRYPTO_CALL(PEM_read_bio_X509)
#define PEM_read_bio_PrivateKey       E2B_CRYPTO_CALL(PEM_read_bio_PrivateKey)
#define BIO_new                       E2B_CRYPTO_CALL(BIO_new)
#define BIO_new_mem_buf               E2B_CRYPTO_CALL(BIO_new_mem_buf)
#define BIO_s_mem                     E2B_CRYPTO_CALL(BIO_s_mem)
#define BIO_free                      E2B_CRYPTO_CALL(BIO_free)
#define BIO_ctrl                      E2B_CRYPTO_CALL(BIO_ctrl)
#define RAND_bytes                    E2B_CRYPTO_CALL(RAND_bytes)
#define ERR_get_error                 E2B_CRYPTO_CALL(ERR_get_error)
#define ERR_error_string_n            E2B_CRYPTO_CALL(ERR_error_string_n)
#define ERR_clear_error               E2B_CRYPTO_CALL(ERR_clear_error)
#define X509_verify_cert_error_string E2B_CRYPTO_CALL(X509_verify_cert_error_string)
#endif
