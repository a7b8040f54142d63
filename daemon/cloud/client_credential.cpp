#include "nmid/cloud/client_credential.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <array>
#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "nmid/cloud/base64.hpp"
#include "nmid/core/errc.hpp"

namespace nmid::cloud {

namespace {

using Credential = boost::system::result<CertificateCredential, CredentialError>;

struct Pkcs12Free {
    void operator()(PKCS12* p) const { PKCS12_free(p); }
};
struct X509Free {
    void operator()(X509* p) const { X509_free(p); }
};
struct X509StackFree {
    void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* key) {
    return {key, EVP_PKEY_free};
}

CredentialError fail(std::string message) {
    // OpenSSL's per-thread error queue must not leak into unrelated callers (TLS reads it).
    ERR_clear_error();
    return CredentialError{std::move(message)};
}

/// A library context with the default and legacy providers, for PKCS#12 files encrypted with
/// RC2 or 3DES (Windows and older OpenSSL exports). Kept for the process lifetime; null when
/// the legacy provider is not installed.
OSSL_LIB_CTX* legacy_context() {
    static OSSL_LIB_CTX* const ctx = [] {
        OSSL_LIB_CTX* c = OSSL_LIB_CTX_new();
        if (c == nullptr) {
            return static_cast<OSSL_LIB_CTX*>(nullptr);
        }
        if (OSSL_PROVIDER_load(c, "default") == nullptr ||
            OSSL_PROVIDER_load(c, "legacy") == nullptr) {
            OSSL_LIB_CTX_free(c);
            ERR_clear_error();
            return static_cast<OSSL_LIB_CTX*>(nullptr);
        }
        return c;
    }();
    return ctx;
}

struct Parsed {
    std::shared_ptr<EVP_PKEY> key;
    std::unique_ptr<X509, X509Free> cert;
    std::unique_ptr<STACK_OF(X509), X509StackFree> chain;
};

/// PKCS12_parse in the current thread's default library context.
bool parse_pkcs12(std::string_view bytes, const std::string& password, Parsed& out) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    std::unique_ptr<PKCS12, Pkcs12Free> p12{
        d2i_PKCS12(nullptr, &p, static_cast<long>(bytes.size()))};
    if (!p12) {
        return false;
    }
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    STACK_OF(X509)* chain = nullptr;
    if (PKCS12_parse(p12.get(), password.c_str(), &key, &cert, &chain) != 1) {
        return false;
    }
    out.key = own(key);
    out.cert.reset(cert);
    out.chain.reset(chain);
    return true;
}

/// Moves a key made in another library context into the default one (re-encoded as
/// PKCS#8 DER), so signing never crosses provider instances.
std::shared_ptr<EVP_PKEY> to_default_context(const EVP_PKEY* key) {
    unsigned char* der = nullptr;
    const int len = i2d_PrivateKey(key, &der);
    if (len <= 0) {
        return {};
    }
    const unsigned char* p = der;
    EVP_PKEY* copy = d2i_AutoPrivateKey(nullptr, &p, len);
    OPENSSL_clear_free(der, static_cast<std::size_t>(len));
    return own(copy);
}

std::string sign_rs256(EVP_PKEY* key, std::string_view input, bool& ok) {
    ok = false;
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx{EVP_MD_CTX_new()};
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
        return {};
    }
    std::size_t len = 0;
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    if (EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()) != 1) {
        return {};
    }
    std::string signature(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &len, data,
                       input.size()) != 1) {
        return {};
    }
    signature.resize(len);
    ok = true;
    return signature;
}

}  // namespace

void throw_exception_from_error(const CredentialError& e, const boost::source_location& loc) {
    boost::throw_exception(
        boost::system::system_error(make_error_code(Errc::identity_unsupported), e.message), loc);
}

boost::system::result<std::string, CredentialError> select_client_secret(const Secret& secret) {
    if (secret.data.empty()) {
        return CredentialError{"secret has no data"};
    }
    const std::string* value = nullptr;
    if (secret.data.size() == 1) {
        value = &secret.data.begin()->second;
    } else if (const auto it = secret.data.find(kClientSecretKey); it != secret.data.end()) {
        value = &it->second;
    } else {
        return CredentialError{"secret has several keys and none is clientSecret"};
    }
    if (value->empty()) {
        return CredentialError{"client secret is empty"};
    }
    // in_place: with C++20 aggregate paren-init an error type is constructible from a string.
    return {boost::system::in_place_value, *value};
}

CertificateCredential::CertificateCredential(std::shared_ptr<evp_pkey_st> key, std::string der)
    : key_{std::move(key)}, der_{std::move(der)} {}

Credential CertificateCredential::from_pkcs12(std::string_view pkcs12, std::string_view password) {
    if (pkcs12.empty()) {
        return fail("certificate is empty");
    }
    const std::string pass{password};
    Parsed parsed;
    bool ok = parse_pkcs12(pkcs12, pass, parsed);
    if (!ok) {
        if (OSSL_LIB_CTX* legacy = legacy_context(); legacy != nullptr) {
            ERR_clear_error();
            // Thread-local swap: other threads keep the process default context.
            OSSL_LIB_CTX* previous = OSSL_LIB_CTX_set0_default(legacy);
            ok = parse_pkcs12(pkcs12, pass, parsed);
            OSSL_LIB_CTX_set0_default(previous);
            if (ok && parsed.key) {
                parsed.key = to_default_context(parsed.key.get());
                if (!parsed.key) {
                    return fail("private key could not be re-encoded");
                }
            }
        }
    }
    if (!ok) {
        return fail(
            "certificate is not PKCS#12, the password is wrong, or its encryption is "
            "not supported");
    }
    if (!parsed.key) {
        return fail("PKCS#12 has no private key");
    }
    if (EVP_PKEY_get_base_id(parsed.key.get()) != EVP_PKEY_RSA) {
        return fail("private key is not RSA (RS256 client assertions need an RSA key)");
    }
    X509* cert = parsed.cert.get();
    if (cert == nullptr && parsed.chain) {
        // No localKeyId pairing: pick the certificate that matches the key.
        for (int i = 0; i < sk_X509_num(parsed.chain.get()); ++i) {
            X509* candidate = sk_X509_value(parsed.chain.get(), i);
            if (X509_check_private_key(candidate, parsed.key.get()) == 1) {
                cert = candidate;
                break;
            }
        }
        ERR_clear_error();
    }
    if (cert == nullptr) {
        return fail("PKCS#12 has no certificate for its private key");
    }
    if (X509_check_private_key(cert, parsed.key.get()) != 1) {
        return fail("certificate does not match the private key");
    }
    unsigned char* der = nullptr;
    const int len = i2d_X509(cert, &der);
    if (len <= 0) {
        return fail("certificate could not be encoded");
    }
    std::string der_bytes(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
    ERR_clear_error();
    return CertificateCredential{std::move(parsed.key), std::move(der_bytes)};
}

Credential CertificateCredential::from_secret(const Secret& secret) {
    const auto cert = secret.data.find(kCertificateKey);
    if (cert == secret.data.end()) {
        return CredentialError{"secret has no certificate key"};
    }
    const auto password = secret.data.find(kPasswordKey);
    return from_pkcs12(cert->second,
                       password == secret.data.end() ? std::string_view{} : password->second);
}

std::string CertificateCredential::thumbprint() const {
    std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
    SHA1(reinterpret_cast<const unsigned char*>(der_.data()), der_.size(), digest.data());
    return base64url_encode(
        std::string_view{reinterpret_cast<const char*>(digest.data()), digest.size()},
        /*pad=*/true);
}

boost::system::result<std::string, CredentialError> CertificateCredential::make_assertion(
    std::string_view client_id, std::string_view audience, std::int64_t now_unix,
    std::chrono::seconds lifetime) const {
    std::array<unsigned char, 20> jti{};
    if (RAND_bytes(jti.data(), static_cast<int>(jti.size())) != 1) {
        return fail("no random bytes for the assertion's jti");
    }
    // nlohmann objects keep keys sorted, as jwt-go's maps marshal them.
    nlohmann::json header = {{"alg", "RS256"},
                             {"typ", "JWT"},
                             {"x5t", thumbprint()},
                             {"x5c", nlohmann::json::array({base64_encode(der_)})}};
    nlohmann::json claims = {
        {"aud", std::string{audience}},
        {"iss", std::string{client_id}},
        {"sub", std::string{client_id}},
        {"jti",
         base64url_encode(std::string_view{reinterpret_cast<const char*>(jti.data()), jti.size()},
                          /*pad=*/true)},
        {"nbf", now_unix},
        {"exp", now_unix + lifetime.count()},
    };
    // `replace`: a client id that is not UTF-8 must not throw.
    const auto dump = [](const nlohmann::json& j) {
        return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    };
    std::string jwt = base64url_encode(dump(header), /*pad=*/false);
    jwt += '.';
    jwt += base64url_encode(dump(claims), /*pad=*/false);
    bool ok = false;
    const std::string signature = sign_rs256(key_.get(), jwt, ok);
    if (!ok) {
        return fail("client assertion could not be signed");
    }
    jwt += '.';
    jwt += base64url_encode(signature, /*pad=*/false);
    return {boost::system::in_place_value, std::move(jwt)};
}

}  // namespace nmid::cloud
