#include <openssl/x509v3.h>
#include "COpenSSL.h"
#include <string.h>
#include <openssl/ecdsa.h>
#include <openssl/bn.h>

static int selftest_callback(const OSSL_PARAM params[], void *arg) {
    pc_selftest_log *log = (pc_selftest_log *)arg;
    const char *phase = NULL, *type = NULL, *desc = NULL;
    const OSSL_PARAM *p;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PROV_PARAM_SELF_TEST_PHASE)) != NULL) OSSL_PARAM_get_utf8_string_ptr(p, &phase);
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PROV_PARAM_SELF_TEST_TYPE)) != NULL) OSSL_PARAM_get_utf8_string_ptr(p, &type);
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PROV_PARAM_SELF_TEST_DESC)) != NULL) OSSL_PARAM_get_utf8_string_ptr(p, &desc);
    if (phase == NULL) return 1;
    if (strcmp(phase, OSSL_SELF_TEST_PHASE_PASS) == 0) {
        __atomic_fetch_add(&log->passed, 1, __ATOMIC_RELAXED);
    } else if (strcmp(phase, OSSL_SELF_TEST_PHASE_FAIL) == 0) {
        if (__atomic_fetch_add(&log->failed, 1, __ATOMIC_RELAXED) == 0) {
            snprintf(log->last_failure, sizeof log->last_failure, "%s (%s)", type ? type : "?", desc ? desc : "?");
        }
    }
    return 1;
}

void pc_selftest_install(OSSL_LIB_CTX *ctx, pc_selftest_log *log) {
    OSSL_SELF_TEST_set_callback(ctx, selftest_callback, log);
}

int pc_selftest_passed(const pc_selftest_log *log) { return __atomic_load_n(&log->passed, __ATOMIC_RELAXED); }
int pc_selftest_failed(const pc_selftest_log *log) { return __atomic_load_n(&log->failed, __ATOMIC_RELAXED); }

int pc_provider_info(OSSL_PROVIDER *prov, char *name, size_t name_len, char *version, size_t version_len,
                     char *buildinfo, size_t buildinfo_len, int *status) {
    const char *n = NULL, *v = NULL, *b = NULL;
    int st = 0;
    OSSL_PARAM params[5];
    params[0] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_NAME, (char **)&n, 0);
    params[1] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_VERSION, (char **)&v, 0);
    params[2] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, (char **)&b, 0);
    params[3] = OSSL_PARAM_construct_int(OSSL_PROV_PARAM_STATUS, &st);
    params[4] = OSSL_PARAM_construct_end();
    if (!OSSL_PROVIDER_get_params(prov, params)) return 0;
    snprintf(name, name_len, "%s", n ? n : "");
    snprintf(version, version_len, "%s", v ? v : "");
    snprintf(buildinfo, buildinfo_len, "%s", b ? b : "");
    *status = OSSL_PARAM_modified(&params[3]) ? st : 1;
    return 1;
}

int pc_drain_errors(char *buf, size_t len) {
    int count = 0;
    size_t used = 0;
    unsigned long e;
    const char *data = NULL;
    int flags = 0;
    if (len > 0) buf[0] = 0;
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof one);
        if (len > used + 1) {
            int w;
            if ((flags & ERR_TXT_STRING) && data != NULL && data[0] != 0)
                w = snprintf(buf + used, len - used, "%s%s (%s)", count ? "; " : "", one, data);
            else
                w = snprintf(buf + used, len - used, "%s%s", count ? "; " : "", one);
            if (w > 0) used += (size_t)w < len - used ? (size_t)w : len - used - 1;
        }
        count++;
    }
    return count;
}

static EVP_KDF_CTX *new_kdf(OSSL_LIB_CTX *ctx, const char *name) {
    EVP_KDF *kdf = EVP_KDF_fetch(ctx, name, NULL);
    if (kdf == NULL) return NULL;
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    return kctx;
}

int pc_pbkdf2(OSSL_LIB_CTX *ctx, const char *digest, const unsigned char *pass, size_t pass_len,
              const unsigned char *salt, size_t salt_len, uint64_t iterations, unsigned char *out, size_t out_len) {
    EVP_KDF_CTX *kctx = new_kdf(ctx, "PBKDF2");
    if (kctx == NULL) return 0;
    OSSL_PARAM params[5];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pass, pass_len);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_ITER, &iterations);
    params[3] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0);
    params[4] = OSSL_PARAM_construct_end();
    int ok = EVP_KDF_derive(kctx, out, out_len, params);
    EVP_KDF_CTX_free(kctx);
    return ok;
}

int pc_hkdf(OSSL_LIB_CTX *ctx, const char *digest, const unsigned char *key, size_t key_len,
            const unsigned char *salt, size_t salt_len, const unsigned char *info, size_t info_len,
            unsigned char *out, size_t out_len) {
    EVP_KDF_CTX *kctx = new_kdf(ctx, "HKDF");
    if (kctx == NULL) return 0;
    OSSL_PARAM params[5];
    int n = 0;
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
    if (salt_len > 0) params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    params[n] = OSSL_PARAM_construct_end();
    int ok = EVP_KDF_derive(kctx, out, out_len, params);
    EVP_KDF_CTX_free(kctx);
    return ok;
}

int pc_hmac(OSSL_LIB_CTX *ctx, const char *digest, const unsigned char *key, size_t key_len,
            const unsigned char *data, size_t data_len, unsigned char *out, size_t out_size, size_t *out_len) {
    return EVP_Q_mac(ctx, "HMAC", NULL, digest, NULL, key, key_len, data, data_len, out, out_size, out_len) != NULL;
}

EVP_MAC_CTX *pc_hmac_context(OSSL_LIB_CTX *ctx, const char *digest, const unsigned char *key, size_t key_len) {
    EVP_MAC *mac = EVP_MAC_fetch(ctx, "HMAC", NULL);
    if (mac == NULL) return NULL;
    EVP_MAC_CTX *mctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);   /* the context keeps its own reference */
    if (mctx == NULL) return NULL;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(mctx, key, key_len, params) != 1) {
        EVP_MAC_CTX_free(mctx);
        return NULL;
    }
    return mctx;
}

EVP_PKEY *pc_generate_key(OSSL_LIB_CTX *ctx, const char *type, const char *group) {
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(ctx, type, NULL);
    if (pctx == NULL) return NULL;
    if (EVP_PKEY_keygen_init(pctx) <= 0) goto done;
    if (group != NULL && EVP_PKEY_CTX_set_group_name(pctx, group) <= 0) goto done;
    if (EVP_PKEY_generate(pctx, &pkey) <= 0) pkey = NULL;
done:
    EVP_PKEY_CTX_free(pctx);
    return pkey;
}

EVP_PKEY *pc_ec_public_from_point(OSSL_LIB_CTX *ctx, const char *group, const unsigned char *point, size_t point_len) {
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(ctx, "EC", NULL);
    if (pctx == NULL) return NULL;
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, point_len);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_fromdata_init(pctx) <= 0 || EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) pkey = NULL;
    EVP_PKEY_CTX_free(pctx);
    if (pkey != NULL) {
        // fromdata does not check that the point lies on the curve; do it here.
        EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(ctx, pkey, NULL);
        int ok = check != NULL && EVP_PKEY_public_check(check) == 1;
        EVP_PKEY_CTX_free(check);
        if (!ok) { EVP_PKEY_free(pkey); pkey = NULL; }
    }
    return pkey;
}

size_t pc_ec_public_point(const EVP_PKEY *pkey, unsigned char *out, size_t out_size) {
    size_t len = 0;
    if (!EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out, out_size, &len)) return 0;
    return len;
}

int pc_ec_group_name(const EVP_PKEY *pkey, char *out, size_t out_size) {
    size_t len = 0;
    return EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, out, out_size, &len);
}

static int bn_to_fixed(const BIGNUM *bn, unsigned char *out, size_t field_len) {
    return BN_bn2binpad(bn, out, (int)field_len) == (int)field_len;
}

int pc_ecdsa_der_to_rs(const unsigned char *der, size_t der_len, unsigned char *r, unsigned char *s, size_t field_len) {
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (sig == NULL) return 0;
    int ok = p == der + der_len && bn_to_fixed(ECDSA_SIG_get0_r(sig), r, field_len) &&
             bn_to_fixed(ECDSA_SIG_get0_s(sig), s, field_len);
    ECDSA_SIG_free(sig);
    return ok;
}

int pc_ecdsa_rs_to_der(const unsigned char *r, size_t r_len, const unsigned char *s, size_t s_len,
                       unsigned char *out, size_t out_size, size_t *out_len) {
    ECDSA_SIG *sig = ECDSA_SIG_new();
    if (sig == NULL) return 0;
    BIGNUM *br = BN_bin2bn(r, (int)r_len, NULL), *bs = BN_bin2bn(s, (int)s_len, NULL);
    if (br == NULL || bs == NULL || !ECDSA_SIG_set0(sig, br, bs)) {
        BN_free(br); BN_free(bs); ECDSA_SIG_free(sig);
        return 0;
    }
    int len = i2d_ECDSA_SIG(sig, NULL);
    int ok = 0;
    if (len > 0 && (size_t)len <= out_size) {
        unsigned char *p = out;
        ok = i2d_ECDSA_SIG(sig, &p) == len;
        *out_len = (size_t)len;
    }
    ECDSA_SIG_free(sig);
    return ok;
}

int pc_private_to_der(const EVP_PKEY *pkey, unsigned char **out, size_t *out_len) {
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pkey);
    if (p8 == NULL) return 0;
    unsigned char *buf = NULL;
    int len = i2d_PKCS8_PRIV_KEY_INFO(p8, &buf);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (len <= 0) return 0;
    *out = buf;
    *out_len = (size_t)len;
    return 1;
}

EVP_PKEY *pc_private_from_der(OSSL_LIB_CTX *ctx, const unsigned char *der, size_t der_len) {
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der_len);
    if (p8 == NULL) return NULL;
    EVP_PKEY *pkey = p == der + der_len ? EVP_PKCS82PKEY_ex(p8, ctx, NULL) : NULL;
    PKCS8_PRIV_KEY_INFO_free(p8);
    return pkey;
}

void pc_free(void *p) { OPENSSL_free(p); }

int pc_self_signed_certificate(OSSL_LIB_CTX *ctx, EVP_PKEY *key, const char *common_name, const char *alt_names,
                               long days, unsigned char **out, size_t *out_len) {
    int ok = 0;
    X509 *cert = X509_new_ex(ctx, NULL);
    X509_NAME *name = X509_NAME_new();
    unsigned char serial_bytes[16];
    BIGNUM *serial = NULL;
    X509V3_CTX v3;
    if (cert == NULL || name == NULL) goto done;
    if (RAND_bytes_ex(ctx, serial_bytes, sizeof serial_bytes, 0) != 1) goto done;
    serial_bytes[0] &= 0x7f;
    if ((serial = BN_bin2bn(serial_bytes, sizeof serial_bytes, NULL)) == NULL) goto done;
    if (X509_set_version(cert, X509_VERSION_3) != 1) goto done;
    if (BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) == NULL) goto done;
    if (X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL) goto done;
    if (X509_gmtime_adj(X509_getm_notAfter(cert), days * 86400L) == NULL) goto done;
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1, -1, 0) != 1) goto done;
    if (X509_set_subject_name(cert, name) != 1 || X509_set_issuer_name(cert, name) != 1) goto done;
    if (X509_set_pubkey(cert, key) != 1) goto done;
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    const char *extensions[][2] = {
        {"subjectAltName", alt_names},
        /* Its own issuer: TLS clients that pin it as their only trust anchor (pcsh --ca-cert)
           accept a self-signed certificate only if it may sign certificates. */
        {"basicConstraints", "critical,CA:TRUE,pathlen:0"},
        {"keyUsage", "critical,digitalSignature,keyCertSign"}, {"extendedKeyUsage", "serverAuth"},
    };
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++) {
        X509_EXTENSION *extension = X509V3_EXT_nconf(NULL, &v3, extensions[i][0], extensions[i][1]);
        if (extension == NULL) goto done;
        int added = X509_add_ext(cert, extension, -1);
        X509_EXTENSION_free(extension);
        if (added != 1) goto done;
    }
    EVP_MD *sha256 = EVP_MD_fetch(ctx, "SHA256", NULL);
    if (sha256 == NULL) goto done;
    int signed_ok = X509_sign(cert, key, sha256) > 0;
    EVP_MD_free(sha256);
    if (!signed_ok) goto done;
    int len = i2d_X509(cert, out);
    if (len <= 0) goto done;
    *out_len = (size_t)len;
    ok = 1;
done:
    BN_free(serial);
    X509_NAME_free(name);
    X509_free(cert);
    return ok;
}
