#include "COpenSSL.h"
#include <openssl/ssl.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

// TLS through libssl in one library context (the appliance's FIPS one): the policy every TLS
// context of Portcullis gets, server or client. TLS 1.2 and 1.3 only; ECDHE on P-256/P-384;
// AES-GCM suites; ECDSA or RSA-PSS signatures with SHA-2; no renegotiation, compression,
// session tickets or server-side session cache (a ticket key would not come from the
// provider's DRBG, and the API is not worth resuming).
SSL_CTX *pc_tls_context(OSSL_LIB_CTX *libctx, int server) {
    SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) return NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1
        || SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1
        || SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384") != 1
        || SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384") != 1
        || SSL_CTX_set1_groups_list(ctx, "P-256:P-384") != 1
        || SSL_CTX_set1_sigalgs_list(ctx, "ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:"
                                          "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:"
                                          "rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512") != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

int pc_tls_use_identity(SSL_CTX *ctx, OSSL_LIB_CTX *libctx, const char *certificates_pem, const char *key_pem) {
    BIO *bio = BIO_new_mem_buf(certificates_pem, -1);
    if (bio == NULL) return 0;
    X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    int ok = leaf != NULL && SSL_CTX_use_certificate(ctx, leaf) == 1;
    X509_free(leaf);
    while (ok) {
        X509 *extra = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (extra == NULL) { ERR_clear_error(); break; }
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) { X509_free(extra); ok = 0; }
    }
    BIO_free(bio);
    if (!ok) return 0;
    bio = BIO_new_mem_buf(key_pem, -1);
    if (bio == NULL) return 0;
    EVP_PKEY *key = PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, NULL, libctx, NULL);
    BIO_free(bio);
    ok = key != NULL && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    return ok;
}

int pc_tls_trust(SSL_CTX *ctx, const char *certificates_pem, int verify) {
    if (!verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (certificates_pem == NULL) return SSL_CTX_set_default_verify_paths(ctx);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *bio = BIO_new_mem_buf(certificates_pem, -1);
    if (bio == NULL) return 0;
    int added = 0;
    X509 *cert;
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, cert) == 1) added++;
        X509_free(cert);
    }
    ERR_clear_error();
    BIO_free(bio);
    return added > 0;
}

SSL *pc_tls_new(SSL_CTX *ctx, const char *host) {
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) return NULL;
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    if (in == NULL || out == NULL) { BIO_free(in); BIO_free(out); SSL_free(ssl); return NULL; }
    // An empty memory BIO reads as "retry", not end of file.
    BIO_set_mem_eof_return(in, -1);
    BIO_set_mem_eof_return(out, -1);
    SSL_set_bio(ssl, in, out);
    // A verifying client must have a name to check the certificate against.
    if (!SSL_is_server(ssl) && SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE && (host == NULL || host[0] == 0)) { SSL_free(ssl); return NULL; }
    if (host != NULL && host[0] != 0) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1) {
            ERR_clear_error();
            if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1) { SSL_free(ssl); return NULL; }
        }
    }
    return ssl;
}

int pc_tls_feed(SSL *ssl, const void *bytes, int count) { return BIO_write(SSL_get_rbio(ssl), bytes, count); }
size_t pc_tls_pending_output(SSL *ssl) { return BIO_ctrl_pending(SSL_get_wbio(ssl)); }
int pc_tls_take_output(SSL *ssl, void *bytes, int count) { return BIO_read(SSL_get_wbio(ssl), bytes, count); }

int pc_tls_describe(SSL *ssl, char *version, size_t version_len, char *cipher, size_t cipher_len, char *group, size_t group_len) {
    snprintf(version, version_len, "%s", SSL_get_version(ssl));
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    snprintf(cipher, cipher_len, "%s", c ? SSL_CIPHER_get_name(c) : "");
    int nid = SSL_get_negotiated_group(ssl);
    const char *name = nid ? OBJ_nid2sn(nid) : NULL;
    snprintf(group, group_len, "%s", name ? name : "");
    return 1;
}

const char *pc_tls_verify_error(SSL *ssl) {
    // Only a client that asked for verification has a refusal to report.
    if (SSL_get_verify_mode(ssl) == SSL_VERIFY_NONE) return NULL;
    long result = SSL_get_verify_result(ssl);
    return result == X509_V_OK ? NULL : X509_verify_cert_error_string(result);
}

int pc_tls_has_extended_master_secret(SSL *ssl) {
    return SSL_version(ssl) != TLS1_2_VERSION || SSL_get_extms_support(ssl) == 1;
}
