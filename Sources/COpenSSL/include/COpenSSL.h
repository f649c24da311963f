#ifndef PORTCULLIS_COPENSSL_H
#define PORTCULLIS_COPENSSL_H

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/self_test.h>
#include <openssl/ec.h>
#include <openssl/x509.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

// Everything here exists because Swift cannot call it directly: function-like macros, variadic
// functions, and OSSL_PARAM arrays (OpenSSL keeps the key and data pointers it is given, which
// Swift's call-scoped pointer bridging would leave dangling).

/// Self-test events seen by the callback of one library context. Counters are updated atomically
/// because conditional self-tests (pair-wise consistency on key generation, continuous RNG test)
/// run on whichever thread uses the provider.
typedef struct pc_selftest_log {
    int passed;
    int failed;
    char last_failure[256];
    char last_phase[64];
} pc_selftest_log;

void pc_selftest_install(OSSL_LIB_CTX *ctx, pc_selftest_log *log);
int pc_selftest_passed(const pc_selftest_log *log);
int pc_selftest_failed(const pc_selftest_log *log);

/// Reads name, version, build info and status of a loaded provider into caller buffers.
int pc_provider_info(OSSL_PROVIDER *prov, char *name, size_t name_len, char *version, size_t version_len,
                     char *buildinfo, size_t buildinfo_len, int *status);

/// Drains the thread's OpenSSL error queue into `buf` as "reason; reason; …". Returns the count.
int pc_drain_errors(char *buf, size_t len);

int pc_pbkdf2(OSSL_LIB_CTX *ctx, const char *digest, const unsigned char *pass, size_t pass_len,
              const unsigned char *salt, size_t salt_len, uint64_t iterations, unsigned char *out, size_t out_len);

int pc_hkdf(OSSL_LIB_CTX *ctx, const char *digest, const unsigned char *key, size_t key_len,
            const unsigned char *salt, size_t salt_len, const unsigned char *info, size_t info_len,
            unsigned char *out, size_t out_len);

int pc_hmac(OSSL_LIB_CTX *ctx, const char *digest, const unsigned char *key, size_t key_len,
            const unsigned char *data, size_t data_len, unsigned char *out, size_t out_size, size_t *out_len);
/// An HMAC context keyed once (digest by name), to be duplicated per message with EVP_MAC_CTX_dup.
EVP_MAC_CTX *pc_hmac_context(OSSL_LIB_CTX *ctx, const char *digest, const unsigned char *key, size_t key_len);

/// Generates a key of `type` ("EC" with `group` "P-256"/"P-384", or "ED25519", "X25519").
EVP_PKEY *pc_generate_key(OSSL_LIB_CTX *ctx, const char *type, const char *group);

/// Builds an EC public key from an uncompressed SEC1 point.
EVP_PKEY *pc_ec_public_from_point(OSSL_LIB_CTX *ctx, const char *group, const unsigned char *point, size_t point_len);

/// Writes the uncompressed SEC1 public point of an EC key. Returns the length, or 0.
size_t pc_ec_public_point(const EVP_PKEY *pkey, unsigned char *out, size_t out_size);

/// Curve name of an EC key ("prime256v1"/"P-256" style as OpenSSL reports it), or 0.
int pc_ec_group_name(const EVP_PKEY *pkey, char *out, size_t out_size);

/// DER ECDSA-Sig-Value <-> big-endian r and s, each padded to `field_len` bytes.
int pc_ecdsa_der_to_rs(const unsigned char *der, size_t der_len, unsigned char *r, unsigned char *s, size_t field_len);
int pc_ecdsa_rs_to_der(const unsigned char *r, size_t r_len, const unsigned char *s, size_t s_len,
                       unsigned char *out, size_t out_size, size_t *out_len);

/// Private key as PKCS#8 DER (in a buffer the caller wipes, then frees with pc_free), and back.
int pc_private_to_der(const EVP_PKEY *pkey, unsigned char **out, size_t *out_len);
EVP_PKEY *pc_private_from_der(OSSL_LIB_CTX *ctx, const unsigned char *der, size_t der_len);

/* A self-signed X.509 server certificate for `key` (SHA-256 signature in `ctx`), valid from an
   hour ago for `days`; `alt_names` in OpenSSL's form ("DNS:localhost,IP:127.0.0.1"). DER in
   *out (OPENSSL_free it). Returns 1 on success. */
int pc_self_signed_certificate(OSSL_LIB_CTX *ctx, EVP_PKEY *key, const char *common_name, const char *alt_names,
                               long days, unsigned char **out, size_t *out_len);
void pc_free(void *p);

/* TLS (tls.c): a context in `libctx` with Portcullis's policy (TLS 1.2/1.3, P-256/P-384,
   AES-GCM, ECDSA/RSA-PSS with SHA-2, no renegotiation, compression or tickets). */
SSL_CTX *pc_tls_context(OSSL_LIB_CTX *libctx, int server);
/// The certificate chain (leaf first) and private key, both PEM. Returns 1 on success.
int pc_tls_use_identity(SSL_CTX *ctx, OSSL_LIB_CTX *libctx, const char *certificates_pem, const char *key_pem);
/// A client's trust: only the PEM certificates given, the system's when NULL, none when `verify` is 0.
int pc_tls_trust(SSL_CTX *ctx, const char *certificates_pem, int verify);
/// A connection over two memory BIOs; a client's `host` (DNS name or address) is sent as SNI and
/// checked against the server's certificate.
SSL *pc_tls_new(SSL_CTX *ctx, const char *host);
int pc_tls_feed(SSL *ssl, const void *bytes, int count);
size_t pc_tls_pending_output(SSL *ssl);
int pc_tls_take_output(SSL *ssl, void *bytes, int count);
int pc_tls_describe(SSL *ssl, char *version, size_t version_len, char *cipher, size_t cipher_len, char *group, size_t group_len);
/// Why the peer's certificate was refused (a client that verifies), or NULL.
const char *pc_tls_verify_error(SSL *ssl);
/// 1 unless the connection is TLS 1.2 without the extended master secret.
int pc_tls_has_extended_master_secret(SSL *ssl);

#endif
