#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/fake_http_server.hpp"

struct evp_pkey_st;
struct x509_st;

namespace nmid::test {

/// How a test PKCS#12 file is encrypted.
enum class Pkcs12Kind {
    modern,  ///< PBES2 AES-256-CBC + PBKDF2 for key and certificates, SHA-256 MAC (OpenSSL 3)
    legacy,  ///< 3DES for the key, RC2-40 for the certificates, SHA-1 MAC (Windows, OpenSSL 1)
};

/// A key and a self-signed certificate made at test time with the OpenSSL API (no binary
/// fixtures). Throws std::runtime_error when OpenSSL fails (test setup).
class TestCertificate {
public:
    /// RSA 2048 (the key type AAD client assertions need).
    static TestCertificate rsa(const std::string& common_name = "nmid-test");
    /// EC P-256 (not usable for RS256: nmid must refuse it).
    static TestCertificate ec(const std::string& common_name = "nmid-test-ec");

    [[nodiscard]] const std::string& der() const { return der_; }
    /// A PKCS#12 file with the key and the certificate (`with_key` false: certificate only).
    /// Empty when `kind` is legacy and OpenSSL's legacy provider cannot be loaded.
    [[nodiscard]] std::string pkcs12(const std::string& password, Pkcs12Kind kind,
                                     bool with_key = true) const;

private:
    TestCertificate(std::shared_ptr<evp_pkey_st> key, std::shared_ptr<x509_st> cert);
    std::shared_ptr<evp_pkey_st> key_;
    std::shared_ptr<x509_st> cert_;
    std::string der_;
};

/// The fields of an `application/x-www-form-urlencoded` body, percent-decoded ('+' is a space);
/// a repeated key keeps its first value.
[[nodiscard]] std::map<std::string, std::string> parse_form(std::string_view body);

/// One token request as the fake AAD saw it.
struct AadCall {
    std::string target{};  ///< as received
    std::string tenant{};  ///< path segment before `/oauth2/token`
    std::string content_type{};
    std::map<std::string, std::string> form{};  ///< decoded form fields
    std::string assertion_header{};             ///< decoded JWT header JSON ("" if none)
    std::string assertion_claims{};             ///< decoded JWT claims JSON ("" if none)
    std::string rejection{};  ///< why the request was refused ("" when it was valid)
    int status = 0;           ///< the status answered
};

/// A fake AAD v1 token endpoint (`POST <base>/<tenant>/oauth2/token?api-version=1.0`) over
/// plain HTTP or HTTPS on loopback. Checks the form as AAD does (grant_type, client_id, resource,
/// and a client_secret or an RS256 client assertion), verifies an assertion's signature with the
/// registered certificate's public key and its x5t, x5c, aud, iss, sub, jti, nbf and exp, and
/// answers v1 tokens (string `expires_in`/`expires_on`) or AAD-shaped errors (400/401 with
/// `error_codes`). Scripted answers replace the normal answer of the next requests (which are
/// still recorded and checked). Not thread-safe: one io_context thread.
class FakeAad {
public:
    /// `now`: Unix seconds for tokens and assertion times (a ManualClock in tests).
    FakeAad(boost::asio::io_context& ioc, std::function<std::int64_t()> now,
            std::string base_path = "/");
    /// HTTPS with `tls`; ad_endpoint() names the server `host` (127.0.0.1 is what it listens
    /// on; another name tests host name verification).
    FakeAad(boost::asio::io_context& ioc, std::function<std::int64_t()> now, std::string base_path,
            const FakeTlsOptions& tls, std::string host = "127.0.0.1");
    FakeAad(const FakeAad&) = delete;
    FakeAad& operator=(const FakeAad&) = delete;

    [[nodiscard]] std::uint16_t port() const { return server_.port(); }
    /// `http://127.0.0.1:<port><base_path>` (`https://<host>:...` with TLS): an AzureIdentity
    /// `adEndpoint`.
    [[nodiscard]] std::string ad_endpoint() const;

    void add_secret_client(std::string client_id, std::string secret);
    void add_certificate_client(std::string client_id, std::string certificate_der);
    /// The next request is answered with `response` instead (FIFO).
    void script(FakeResponse response);

    [[nodiscard]] const std::vector<AadCall>& calls() const { return calls_; }
    [[nodiscard]] FakeHttpServer& server() { return server_; }

    std::int64_t token_lifetime = 3599;

private:
    FakeResponse handle(const FakeRequest& request);
    /// "" when the assertion is valid for `client_id` at `token_url`, else why not.
    std::string check_assertion(std::string_view jwt, const std::string& client_id,
                                const std::string& token_url, AadCall& call) const;

    std::function<std::int64_t()> now_;
    std::string base_path_;
    std::string scheme_{"http"};
    std::string host_{"127.0.0.1"};
    std::map<std::string, std::string> secret_clients_;
    std::map<std::string, std::string> certificate_clients_;
    std::deque<FakeResponse> script_;
    std::vector<AadCall> calls_;
    std::size_t issued_ = 0;
    FakeHttpServer server_;
};

/// AAD-shaped error answer: `{"error":..,"error_description":..,"error_codes":[code],...}`.
[[nodiscard]] FakeResponse aad_error(int status, std::string_view error, int code,
                                     std::string_view description);

}  // namespace nmid::test
