#pragma once

// RS256 JSON Web Tokens for the fakes: the fake API server signs ServiceAccount tokens, the
// fake Azure AD verifies them against the issuer's public key (OpenSSL, no fixtures).

#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct evp_pkey_st;

namespace nmid::test {

/// An RSA 2048 key made at construction; signs JWTs. Throws std::runtime_error on OpenSSL
/// failure (test setup).
class JwtSigner {
public:
    explicit JwtSigner(std::string kid = "fake-sa-key");
    /// `<base64url(header)>.<base64url(claims)>.<base64url(RS256 signature)>`; header
    /// `{"alg":"RS256","kid":<kid>}`; `claims_json` as given.
    [[nodiscard]] std::string sign(std::string_view claims_json) const;
    /// The public key, PEM (SubjectPublicKeyInfo).
    [[nodiscard]] std::string public_pem() const;

private:
    std::string kid_;
    std::shared_ptr<evp_pkey_st> key_;
};

/// The claims JSON of `jwt` when its RS256 signature verifies with `public_pem` (and the header
/// says RS256), else nullopt.
[[nodiscard]] std::optional<std::string> verify_rs256(std::string_view jwt,
                                                      std::string_view public_pem);

}  // namespace nmid::test
