#pragma once

#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "nmid/cloud/secret_store.hpp"

struct evp_pkey_st;

namespace nmid::cloud {

/// Why a Secret does not hold a usable service principal credential. The message names keys
/// and reasons, never values.
struct CredentialError {
    std::string message{};
};

[[noreturn]] void throw_exception_from_error(const CredentialError& e,
                                             const boost::source_location& loc);

/// Keys of the Secret layouts NMI reads (reference nmi-behaviour 5.1).
inline constexpr std::string_view kClientSecretKey = "clientSecret";
inline constexpr std::string_view kCertificateKey = "certificate";
inline constexpr std::string_view kPasswordKey = "password";

/// Type 1: the client secret. NMI takes "the first" value of `data` (a random one when there
/// are several); nmid takes the only key, or `clientSecret` when there are several.
/// Errors: no keys, several keys without `clientSecret`, an empty value. Pure, never throws.
[[nodiscard]] boost::system::result<std::string, CredentialError> select_client_secret(
    const Secret& secret);

/// A service principal's certificate and RSA private key (AzureIdentity type 2).
/// Immutable; copies share the key. Thread-safety: const methods from any thread.
class CertificateCredential {
public:
    /// Decodes a PKCS#12 file: modern PBES2 (AES-256-CBC, PBKDF2) as OpenSSL 3 and current
    /// tools write it, and the legacy PBEs (3DES, RC2-40) when OpenSSL's legacy provider can
    /// be loaded (it is loaded into a private library context, never the process default).
    /// The certificate is the one matching the private key. Errors: not PKCS#12, wrong
    /// password or unsupported encryption, no key or certificate, key not RSA (RS256 needs
    /// RSA, as NMI), key and certificate that do not match. Never throws.
    [[nodiscard]] static boost::system::result<CertificateCredential, CredentialError> from_pkcs12(
        std::string_view pkcs12, std::string_view password);

    /// From a Type 2 Secret: keys `certificate` (PKCS#12 bytes) and `password` (absent:
    /// empty password, as NMI).
    [[nodiscard]] static boost::system::result<CertificateCredential, CredentialError> from_secret(
        const Secret& secret);

    /// DER of the certificate.
    [[nodiscard]] const std::string& certificate_der() const { return der_; }

    /// `x5t` as adal writes it: base64url(SHA-1(DER)) with `=` padding.
    [[nodiscard]] std::string thumbprint() const;

    /// An RS256 JWT client assertion as adal builds it (reference nmi-behaviour 6.3):
    /// header `{"alg":"RS256","typ":"JWT","x5c":[base64(DER)],"x5t":thumbprint()}`, claims
    /// `aud` = `audience`, `iss` = `sub` = `client_id`, `jti` = base64url of 20 random bytes,
    /// `nbf` = `now_unix`, `exp` = `now_unix + lifetime`.
    /// Errors: the signature could not be made (Errc-less message). Never throws.
    [[nodiscard]] boost::system::result<std::string, CredentialError> make_assertion(
        std::string_view client_id, std::string_view audience, std::int64_t now_unix,
        std::chrono::seconds lifetime) const;

private:
    CertificateCredential(std::shared_ptr<evp_pkey_st> key, std::string der);

    std::shared_ptr<evp_pkey_st> key_;
    std::string der_;
};

}  // namespace nmid::cloud
