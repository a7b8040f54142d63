#include "nmid/cloud/client_credential.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "nmid/cloud/base64.hpp"
#include "support/fake_aad.hpp"

namespace nmid::cloud {
namespace {

using test::Pkcs12Kind;
using test::TestCertificate;

const TestCertificate& rsa_cert() {
    static const TestCertificate cert = TestCertificate::rsa("nmid-unit");
    return cert;
}

Secret secret_of(std::map<std::string, std::string, std::less<>> data) {
    return Secret{std::move(data)};
}

TEST(SelectClientSecret, FollowsTheSingleKeyOrClientSecretRule) {
    struct Case {
        std::map<std::string, std::string, std::less<>> data;
        std::optional<std::string> want;  // nullopt: an error
    };
    const Case cases[] = {
        {{{"clientSecret", "s1"}}, "s1"},
        {{{"anything", "s2"}}, "s2"},  // NMI takes the first (only) value whatever its key
        {{{"clientSecret", "s3"}, {"other", "x"}}, "s3"},
        {{{"a", "x"}, {"b", "y"}}, std::nullopt},  // NMI would pick at random
        {{}, std::nullopt},
        {{{"clientSecret", ""}}, std::nullopt},
    };
    for (const auto& c : cases) {
        const auto r = select_client_secret(secret_of(c.data));
        if (c.want) {
            ASSERT_TRUE(r.has_value()) << *c.want;
            EXPECT_EQ(*r, *c.want);
        } else {
            EXPECT_FALSE(r.has_value()) << c.data.size();
        }
    }
}

TEST(CertificateCredential, LoadsAModernAesPbkdf2File) {
    const auto p12 = rsa_cert().pkcs12("pa55word", Pkcs12Kind::modern);
    const auto cred = CertificateCredential::from_pkcs12(p12, "pa55word");
    ASSERT_TRUE(cred.has_value()) << cred.error().message;
    EXPECT_EQ(cred->certificate_der(), rsa_cert().der());
}

TEST(CertificateCredential, LoadsALegacyRc2TripleDesFile) {
    const auto p12 = rsa_cert().pkcs12("pa55word", Pkcs12Kind::legacy);
    if (p12.empty()) {
        GTEST_SKIP() << "OpenSSL legacy provider not installed";
    }
    const auto cred = CertificateCredential::from_pkcs12(p12, "pa55word");
    ASSERT_TRUE(cred.has_value()) << cred.error().message;
    EXPECT_EQ(cred->certificate_der(), rsa_cert().der());
    // The key works for signing after moving out of the legacy library context.
    EXPECT_TRUE(cred->make_assertion("c", "https://a/t", 1'700'000'000, std::chrono::seconds{600})
                    .has_value());
}

TEST(CertificateCredential, LoadsAnEmptyPasswordFromASecretWithoutPasswordKey) {
    const auto p12 = rsa_cert().pkcs12("", Pkcs12Kind::modern);
    const auto cred = CertificateCredential::from_secret(secret_of({{"certificate", p12}}));
    ASSERT_TRUE(cred.has_value()) << cred.error().message;
}

TEST(CertificateCredential, RefusesUnusableMaterialWithAClearReason) {
    const auto good = rsa_cert().pkcs12("pw", Pkcs12Kind::modern);
    const auto ec = TestCertificate::ec().pkcs12("pw", Pkcs12Kind::modern);
    const auto cert_only = rsa_cert().pkcs12("pw", Pkcs12Kind::modern, /*with_key=*/false);
    struct Case {
        std::string bytes;
        std::string password;
        std::string reason;
    };
    const Case cases[] = {
        {good, "wrong", "password is wrong"},
        {"not pkcs12 at all", "pw", "not PKCS#12"},
        {"", "pw", "empty"},
        {ec, "pw", "not RSA"},
        {cert_only, "pw", "no private key"},
    };
    for (const auto& c : cases) {
        const auto r = CertificateCredential::from_pkcs12(c.bytes, c.password);
        ASSERT_FALSE(r.has_value()) << c.reason;
        EXPECT_NE(r.error().message.find(c.reason), std::string::npos) << r.error().message;
    }
    EXPECT_FALSE(CertificateCredential::from_secret(secret_of({{"password", "pw"}})).has_value());
}

TEST(CertificateCredential, BuildsTheAssertionAdalBuilds) {
    const auto cred =
        CertificateCredential::from_pkcs12(rsa_cert().pkcs12("pw", Pkcs12Kind::modern), "pw");
    ASSERT_TRUE(cred.has_value());
    const auto jwt =
        cred->make_assertion("client-1", "https://login/t/oauth2/token?api-version=1.0",
                             1'700'000'000, std::chrono::seconds{600});
    ASSERT_TRUE(jwt.has_value());
    const auto dot1 = jwt->find('.');
    const auto dot2 = jwt->find('.', dot1 + 1);
    ASSERT_NE(dot2, std::string::npos);
    EXPECT_EQ(jwt->find('='), std::string::npos);  // segments are unpadded
    const auto decode = [](std::string seg) {
        for (auto& ch : seg) {
            ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
        }
        while (seg.size() % 4 != 0) {
            seg += '=';
        }
        return nlohmann::json::parse(base64_decode(seg).value_or("null"), nullptr, false);
    };
    const auto header = decode(jwt->substr(0, dot1));
    const auto claims = decode(jwt->substr(dot1 + 1, dot2 - dot1 - 1));
    EXPECT_EQ(header["alg"], "RS256");
    EXPECT_EQ(header["typ"], "JWT");
    EXPECT_EQ(header["x5t"], cred->thumbprint());
    EXPECT_EQ(cred->thumbprint().size(), 28U);  // SHA-1, base64url with its one '='
    EXPECT_EQ(cred->thumbprint().back(), '=');
    EXPECT_EQ(header["x5c"], nlohmann::json::array({base64_encode(rsa_cert().der())}));
    EXPECT_EQ(claims["aud"], "https://login/t/oauth2/token?api-version=1.0");
    EXPECT_EQ(claims["iss"], "client-1");
    EXPECT_EQ(claims["sub"], "client-1");
    EXPECT_EQ(claims["nbf"], 1'700'000'000);
    EXPECT_EQ(claims["exp"], 1'700'000'600);
    ASSERT_TRUE(claims["jti"].is_string());
    EXPECT_EQ(claims["jti"].get<std::string>().size(), 28U);  // 20 random bytes
    const auto again =
        cred->make_assertion("client-1", "a", 1'700'000'000, std::chrono::seconds{1});
    EXPECT_NE(decode(again->substr(again->find('.') + 1,
                                   again->rfind('.') - again->find('.') - 1))["jti"],
              claims["jti"]);
}

}  // namespace
}  // namespace nmid::cloud
