#include "support/fake_aad.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <utility>

#include "nmid/core/hex.hpp"
#include "support/base64.hpp"

namespace nmid::test {

namespace {

using Json = nlohmann::json;

[[noreturn]] void openssl_failed(const char* what) {
    ERR_clear_error();
    throw std::runtime_error(std::string("test certificate: ") + what);
}

std::string sha1(std::string_view bytes) {
    std::array<unsigned char, SHA_DIGEST_LENGTH> d{};
    SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), d.data());
    return {reinterpret_cast<const char*>(d.data()), d.size()};
}

OSSL_LIB_CTX* legacy_context() {
    static OSSL_LIB_CTX* const ctx = [] {
        OSSL_LIB_CTX* c = OSSL_LIB_CTX_new();
        if (c == nullptr || OSSL_PROVIDER_load(c, "default") == nullptr ||
            OSSL_PROVIDER_load(c, "legacy") == nullptr) {
            ERR_clear_error();
            return static_cast<OSSL_LIB_CTX*>(nullptr);
        }
        return c;
    }();
    return ctx;
}

std::shared_ptr<X509> self_signed(EVP_PKEY* key, const std::string& cn) {
    std::shared_ptr<X509> cert{X509_new(), X509_free};
    if (!cert) {
        openssl_failed("X509_new");
    }
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    if (X509_set_pubkey(cert.get(), key) != 1 || X509_sign(cert.get(), key, EVP_sha256()) <= 0) {
        openssl_failed("self-signing");
    }
    return cert;
}

/// A string member of `j`, "" when absent or not a string (the assertion is untrusted).
std::string str(const Json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

Json error_body(std::string_view error, int code, std::string_view description) {
    return Json{
        {"error", error},
        {"error_description", description},
        {"error_codes", Json::array({code})},
        {"timestamp", "2023-11-14 22:13:20Z"},
        {"trace_id", "00000000-0000-0000-0000-000000000001"},
        {"correlation_id", "00000000-0000-0000-0000-000000000002"},
        {"error_uri", "https://login.microsoftonline.com/error?code=" + std::to_string(code)}};
}

}  // namespace

std::map<std::string, std::string> parse_form(std::string_view body) {
    std::map<std::string, std::string> form;
    while (!body.empty()) {
        const auto amp = body.find('&');
        const std::string_view pair = body.substr(0, amp);
        const auto eq = pair.find('=');
        form.emplace(percent_decode(pair.substr(0, eq), true),
                     eq == std::string_view::npos ? std::string{}
                                                  : percent_decode(pair.substr(eq + 1), true));
        body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
    }
    return form;
}

// ---- TestCertificate --------------------------------------------------------------------------

TestCertificate::TestCertificate(std::shared_ptr<evp_pkey_st> key, std::shared_ptr<x509_st> cert)
    : key_{std::move(key)}, cert_{std::move(cert)} {
    unsigned char* der = nullptr;
    const int len = i2d_X509(cert_.get(), &der);
    if (len <= 0) {
        openssl_failed("i2d_X509");
    }
    der_.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
}

TestCertificate TestCertificate::rsa(const std::string& common_name) {
    std::shared_ptr<EVP_PKEY> key{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}),
                                  EVP_PKEY_free};
    if (!key) {
        openssl_failed("RSA key generation");
    }
    auto cert = self_signed(key.get(), common_name);
    return TestCertificate{std::move(key), std::move(cert)};
}

TestCertificate TestCertificate::ec(const std::string& common_name) {
    std::shared_ptr<EVP_PKEY> key{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"),
                                  EVP_PKEY_free};
    if (!key) {
        openssl_failed("EC key generation");
    }
    auto cert = self_signed(key.get(), common_name);
    return TestCertificate{std::move(key), std::move(cert)};
}

std::string TestCertificate::pkcs12(const std::string& password, Pkcs12Kind kind,
                                    bool with_key) const {
    OSSL_LIB_CTX* libctx = nullptr;
    int key_nid = NID_aes_256_cbc;  // PBES2 + PBKDF2 (hmacWithSHA256)
    int cert_nid = NID_aes_256_cbc;
    const EVP_MD* mac_md = EVP_sha256();
    if (kind == Pkcs12Kind::legacy) {
        libctx = legacy_context();
        if (libctx == nullptr) {
            return {};
        }
        key_nid = NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
        cert_nid = NID_pbe_WithSHA1And40BitRC2_CBC;
        mac_md = EVP_sha1();
    }
    // mac_iter -1: no MAC from PKCS12_create; PKCS12_set_mac picks the digest explicitly.
    PKCS12* p12 =
        PKCS12_create_ex(password.c_str(), "nmid-test", with_key ? key_.get() : nullptr,
                         cert_.get(), nullptr, key_nid, cert_nid, 2048, -1, 0, libctx, nullptr);
    if (p12 == nullptr) {
        openssl_failed("PKCS12_create_ex");
    }
    std::unique_ptr<PKCS12, decltype(&PKCS12_free)> owned{p12, PKCS12_free};
    if (PKCS12_set_mac(p12, password.c_str(), -1, nullptr, 0, 2048, mac_md) != 1) {
        openssl_failed("PKCS12_set_mac");
    }
    unsigned char* der = nullptr;
    const int len = i2d_PKCS12(p12, &der);
    if (len <= 0) {
        openssl_failed("i2d_PKCS12");
    }
    std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
    return out;
}

// ---- FakeAad ------------------------------------------------------------------------------------

FakeResponse aad_error(int status, std::string_view error, int code, std::string_view description) {
    FakeResponse r;
    r.status = status;
    r.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
    r.body = error_body(error, code, description).dump();
    return r;
}

FakeAad::FakeAad(boost::asio::io_context& ioc, std::function<std::int64_t()> now,
                 std::string base_path)
    : now_{std::move(now)},
      base_path_{std::move(base_path)},
      server_{ioc, [this](const FakeRequest& r) { return handle(r); }} {}

FakeAad::FakeAad(boost::asio::io_context& ioc, std::function<std::int64_t()> now,
                 std::string base_path, const FakeTlsOptions& tls, std::string host)
    : now_{std::move(now)},
      base_path_{std::move(base_path)},
      scheme_{"https"},
      host_{std::move(host)},
      server_{ioc, [this](const FakeRequest& r) { return handle(r); }, "127.0.0.1", tls} {}

std::string FakeAad::ad_endpoint() const {
    return scheme_ + "://" + host_ + ":" + std::to_string(server_.port()) + base_path_;
}

void FakeAad::add_secret_client(std::string client_id, std::string secret) {
    secret_clients_[std::move(client_id)] = std::move(secret);
}

void FakeAad::add_certificate_client(std::string client_id, std::string certificate_der) {
    certificate_clients_[std::move(client_id)] = std::move(certificate_der);
}

void FakeAad::script(FakeResponse response) {
    script_.push_back(std::move(response));
}

FakeResponse FakeAad::handle(const FakeRequest& request) {
    AadCall& call = calls_.emplace_back();
    call.target = request.target;
    call.content_type = request.header("Content-Type");
    call.form = parse_form(request.body);

    const auto answer = [&](FakeResponse r, std::string rejection = {}) {
        call.rejection = std::move(rejection);
        if (!script_.empty()) {
            r = std::move(script_.front());
            script_.pop_front();
        }
        call.status = r.status;
        return r;
    };
    const auto reject = [&](int status, std::string_view error, int code, const std::string& why) {
        return answer(aad_error(status, error, code, why), why);
    };

    // Path: <base>/<tenant>/oauth2/token?api-version=1.0
    constexpr std::string_view kSuffix = "/oauth2/token?api-version=1.0";
    std::string_view target = request.target;
    if (target.substr(0, base_path_.size()) != base_path_ || target.size() <= kSuffix.size() ||
        target.substr(target.size() - kSuffix.size()) != kSuffix) {
        return reject(404, "not_found", 90002, "unexpected target " + request.target);
    }
    call.tenant = std::string{
        target.substr(base_path_.size(), target.size() - kSuffix.size() - base_path_.size())};
    if (call.tenant.empty() || call.tenant.find('/') != std::string::npos) {
        return reject(400, "invalid_request", 90002, "tenant missing");
    }
    if (request.method != "POST") {
        return reject(405, "invalid_request", 900561, "method must be POST");
    }
    if (call.content_type != "application/x-www-form-urlencoded") {
        return reject(400, "invalid_request", 900144, "content type is " + call.content_type);
    }
    const auto field = [&](const char* name) {
        const auto it = call.form.find(name);
        return it == call.form.end() ? std::string{} : it->second;
    };
    if (field("grant_type") != "client_credentials") {
        return reject(400, "invalid_request", 900144, "grant_type must be client_credentials");
    }
    const std::string client_id = field("client_id");
    const std::string resource = field("resource");
    if (client_id.empty() || resource.empty()) {
        return reject(400, "invalid_request", 900144, "client_id and resource are required");
    }
    const bool has_secret = call.form.count("client_secret") != 0;
    const bool has_assertion = call.form.count("client_assertion") != 0;
    if (has_secret == has_assertion) {
        return reject(401, "invalid_client", 7000218,
                      "exactly one of client_secret and client_assertion is required");
    }
    if (has_secret) {
        const auto it = secret_clients_.find(client_id);
        if (it == secret_clients_.end()) {
            return reject(400, "unauthorized_client", 700016, "unknown application " + client_id);
        }
        if (it->second != field("client_secret")) {
            return reject(401, "invalid_client", 7000215, "Invalid client secret provided.");
        }
    } else {
        if (field("client_assertion_type") !=
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
            return reject(400, "invalid_request", 900144, "client_assertion_type is wrong");
        }
        const std::string token_url =
            scheme_ + "://" + request.header("Host") + std::string{request.target};
        std::string why = check_assertion(field("client_assertion"), client_id, token_url, call);
        if (!why.empty()) {
            return reject(401, "invalid_client", 700027, "Client assertion failed: " + why);
        }
    }

    const std::int64_t now = now_();
    ++issued_;
    Json body{
        {"token_type", "Bearer"},
        {"expires_in", std::to_string(token_lifetime)},
        {"ext_expires_in", std::to_string(token_lifetime)},
        {"expires_on", std::to_string(now + token_lifetime)},
        {"not_before", std::to_string(now - 300)},
        {"resource", resource},
        {"access_token", "aad." + call.tenant + "." + client_id + "." + std::to_string(issued_)}};
    FakeResponse ok;
    ok.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
    ok.body = body.dump();
    return answer(std::move(ok));
}

std::string FakeAad::check_assertion(std::string_view jwt, const std::string& client_id,
                                     const std::string& token_url, AadCall& call) const {
    const auto cert_it = certificate_clients_.find(client_id);
    if (cert_it == certificate_clients_.end()) {
        return "no certificate registered for " + client_id;
    }
    const std::string& der = cert_it->second;
    const auto dot1 = jwt.find('.');
    const auto dot2 = dot1 == std::string_view::npos ? dot1 : jwt.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || jwt.find('.', dot2 + 1) != std::string_view::npos) {
        return "not a JWS compact serialization";
    }
    const auto header = base64url_decode(jwt.substr(0, dot1));
    const auto claims = base64url_decode(jwt.substr(dot1 + 1, dot2 - dot1 - 1));
    const auto signature = base64url_decode(jwt.substr(dot2 + 1));
    if (!header || !claims || !signature) {
        return "segment not base64url without padding";
    }
    call.assertion_header = *header;
    call.assertion_claims = *claims;
    const Json h = Json::parse(*header, nullptr, false);
    const Json c = Json::parse(*claims, nullptr, false);
    if (!h.is_object() || !c.is_object()) {
        return "header or claims not a JSON object";
    }
    if (str(h, "alg") != "RS256" || str(h, "typ") != "JWT") {
        return "alg must be RS256 and typ JWT";
    }
    const std::string thumb = base64_encode(sha1(der), /*url=*/true, /*pad=*/true);
    const std::string x5t = str(h, "x5t");
    if (x5t != thumb && x5t != thumb.substr(0, thumb.find('='))) {
        return "x5t does not match the certificate";
    }
    const auto x5c = h.find("x5c");
    if (x5c == h.end() || !x5c->is_array() || x5c->empty() || !(*x5c)[0].is_string() ||
        (*x5c)[0].get<std::string>() != base64_encode(der, /*url=*/false, /*pad=*/true)) {
        return "x5c[0] is not the certificate";
    }

    // Signature over `header.claims` with the certificate's public key (RSASSA-PKCS1-v1_5).
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    std::unique_ptr<X509, decltype(&X509_free)> cert{
        d2i_X509(nullptr, &p, static_cast<long>(der.size())), X509_free};
    if (!cert) {
        return "registered certificate does not parse";
    }
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
    const std::string_view signed_part = jwt.substr(0, dot2);
    const bool verified =
        ctx &&
        EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                             X509_get0_pubkey(cert.get())) == 1 &&
        EVP_DigestVerify(
            ctx.get(), reinterpret_cast<const unsigned char*>(signature->data()), signature->size(),
            reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
    ERR_clear_error();
    if (!verified) {
        return "signature does not verify";
    }

    const std::string aud = str(c, "aud");
    if (aud != token_url && aud != token_url.substr(0, token_url.find('?'))) {
        return "aud " + aud + " is not " + token_url;
    }
    if (str(c, "iss") != client_id || str(c, "sub") != client_id) {
        return "iss and sub must be the client id";
    }
    if (str(c, "jti").empty()) {
        return "jti missing";
    }
    const auto nbf = c.find("nbf");
    const auto exp = c.find("exp");
    if (nbf == c.end() || exp == c.end() || !nbf->is_number_integer() ||
        !exp->is_number_integer()) {
        return "nbf and exp must be integers";
    }
    const std::int64_t now = now_();
    constexpr std::int64_t kSkew = 300;
    if (nbf->get<std::int64_t>() > now + kSkew) {
        return "assertion not yet valid";
    }
    if (exp->get<std::int64_t>() <= now) {
        return "assertion expired";
    }
    if (exp->get<std::int64_t>() - nbf->get<std::int64_t>() > std::int64_t{24} * 3600) {
        return "assertion lives longer than 24 h";
    }
    return {};
}

}  // namespace nmid::test
