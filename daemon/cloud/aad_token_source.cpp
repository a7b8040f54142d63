#include "nmid/cloud/aad_token_source.hpp"

#include <algorithm>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "nmid/cloud/aad_endpoint.hpp"
#include "nmid/cloud/client_credential.hpp"
#include "nmid/cloud/secret_store.hpp"
#include "nmid/net/http_client.hpp"
#include "upstream_answer.hpp"

namespace nmid::cloud {

namespace {

constexpr std::string_view kAssertionType =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

using detail::fetch_error;

/// Appends `key=value` (both percent-encoded) to a form body.
void add_field(std::string& form, std::string_view key, std::string_view value) {
    if (!form.empty()) {
        form += '&';
    }
    form += key;
    form += '=';
    form += net::percent_encode(value);
}

/// Settings of the HTTP client for one AAD origin. https: TLS 1.2+, the peer verified against
/// the system trust store plus the configured CAs, SNI and host name check on the endpoint's
/// host. A handshake or verification failure fails the request closed: nothing is sent in
/// clear text to an https endpoint.
net::HttpClientSettings client_settings(const AadEndpoint& endpoint, const AadSettings& settings) {
    net::HttpClientSettings s;
    s.host = endpoint.host;
    s.port = endpoint.port;
    s.host_header = endpoint.authority;
    s.connect_timeout = settings.connect_timeout;
    s.pool_size = settings.pool_size;
    s.max_response_body = settings.max_response_body;
    if (endpoint.https) {
        s.tls.enabled = true;
        s.tls.server_name = endpoint.host;
        s.tls.ca_pem = settings.ca_pem;
        s.tls.ca_file = settings.ca_file;
        s.tls.add_system_ca = true;
    }
    return s;
}

}  // namespace

struct AadTokenSource::Impl {
    Impl(boost::asio::any_io_executor ex, SecretStore& store, Clock& c, AadSettings s)
        : executor{std::move(ex)}, secrets{store}, clock{c}, settings{std::move(s)} {}

    /// The client for `endpoint`'s origin, created on first use; null with `error` set when
    /// its TLS settings cannot be loaded.
    std::shared_ptr<net::HttpClient> client_for(const AadEndpoint& endpoint, std::string& error);

    boost::asio::any_io_executor executor;
    SecretStore& secrets;
    Clock& clock;
    AadSettings settings;

    std::mutex mutex;
    /// (origin, client), most recently used last. In-flight requests keep a client's state
    /// alive, so dropping one from here never cuts a request.
    std::vector<std::pair<std::string, std::shared_ptr<net::HttpClient>>> clients;
};

std::shared_ptr<net::HttpClient> AadTokenSource::Impl::client_for(const AadEndpoint& endpoint,
                                                                  std::string& error) {
    const std::string origin = endpoint.origin();
    const std::lock_guard lock{mutex};
    const auto it = std::find_if(clients.begin(), clients.end(),
                                 [&](const auto& c) { return c.first == origin; });
    if (it != clients.end()) {
        std::rotate(it, it + 1, clients.end());
        return clients.back().second;
    }
    auto client = net::HttpClient::create(executor, client_settings(endpoint, settings), &error);
    if (!client) {
        return {};
    }
    if (!clients.empty() && clients.size() >= std::max<std::size_t>(settings.max_origins, 1)) {
        clients.erase(clients.begin());
    }
    clients.emplace_back(origin, std::shared_ptr<net::HttpClient>{std::move(*client)});
    return clients.back().second;
}

AadTokenSource::AadTokenSource(boost::asio::any_io_executor executor, SecretStore& secrets,
                               Clock& clock, AadSettings settings)
    : impl_{std::make_unique<Impl>(std::move(executor), secrets, clock, std::move(settings))} {
    if (!impl_->settings.ca_pem.empty() || !impl_->settings.ca_file.empty()) {
        // A CA that cannot be loaded is a start-up error, not a 503 on every request.
        const AadEndpoint probe{.https = true, .host = "ca-check.invalid"};
        (void)net::HttpClient{impl_->executor, client_settings(probe, impl_->settings)};
    }
}

AadTokenSource::~AadTokenSource() = default;

boost::asio::awaitable<FetchResult> AadTokenSource::fetch(const TokenRequest& request,
                                                          SteadyTime deadline) {
    const TokenIdentity& identity = request.identity;
    if (identity.type != 1 && identity.type != 2) {
        co_return fetch_error(
            Errc::identity_unsupported, 0,
            "identity type " + std::to_string(identity.type) + " is not a service principal");
    }
    auto endpoint = parse_aad_endpoint(identity.ad_endpoint, identity.tenant_id);
    if (!endpoint) {
        co_return fetch_error(Errc::identity_unsupported, 0, "adEndpoint or tenantID is not valid");
    }
    std::string client_error;
    std::shared_ptr<net::HttpClient> client = impl_->client_for(*endpoint, client_error);
    if (!client) {
        co_return fetch_error(Errc::upstream_unavailable, 0,
                              "AAD " + endpoint->authority + ": " + client_error);
    }

    SecretResult secret = co_await impl_->secrets.get(identity.secret, deadline);
    if (!secret) {
        const SecretError& e = secret.error();
        if (e.code == SecretErrc::timeout) {
            co_return fetch_error(Errc::timeout, 0, e.message);
        }
        if (e.code == SecretErrc::cancelled) {
            co_return fetch_error(Errc::cancelled);
        }
        // NMI answers 503 when the Secret cannot be read; status 0: no AAD answer.
        co_return fetch_error(Errc::upstream_unavailable, 0, e.message);
    }

    // Keys in sorted order, as Go's url.Values.Encode (adal) writes them.
    std::string form;
    if (identity.type == 1) {
        auto client_secret = select_client_secret(**secret);
        if (!client_secret) {
            co_return fetch_error(Errc::identity_unsupported, 0,
                                  "secret " + identity.secret.namespace_name + "/" +
                                      identity.secret.name + ": " + client_secret.error().message);
        }
        add_field(form, "client_id", identity.client_id);
        add_field(form, "client_secret", *client_secret);
    } else {
        auto credential = CertificateCredential::from_secret(**secret);
        if (!credential) {
            co_return fetch_error(Errc::identity_unsupported, 0,
                                  "secret " + identity.secret.namespace_name + "/" +
                                      identity.secret.name + ": " + credential.error().message);
        }
        auto assertion = credential->make_assertion(identity.client_id, endpoint->token_url,
                                                    impl_->clock.unix_seconds(),
                                                    impl_->settings.assertion_lifetime);
        if (!assertion) {
            co_return fetch_error(Errc::identity_unsupported, 0, assertion.error().message);
        }
        add_field(form, "client_assertion", *assertion);
        add_field(form, "client_assertion_type", kAssertionType);
        add_field(form, "client_id", identity.client_id);
    }
    add_field(form, "grant_type", "client_credentials");
    add_field(form, "resource", request.resource);

    net::ClientRequest req;
    req.method = "POST";
    req.target = endpoint->token_target;
    req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    req.headers.emplace_back("Accept", "application/json");
    if (!impl_->settings.user_agent.empty()) {
        req.headers.emplace_back("User-Agent", impl_->settings.user_agent);
    }
    req.body = std::move(form);
    const std::uint64_t tls_failures = client->stats().tls_failures;
    auto response = co_await client->request(req, deadline);
    if (!response) {
        // Under concurrent requests the reason may be another's: it is the same origin.
        std::string why =
            client->stats().tls_failures != tls_failures
                ? "TLS with AAD " + endpoint->authority + " failed: " + client->last_tls_error()
                : "AAD " + endpoint->authority + " unreachable";
        co_return detail::transport_error(response.error(), std::move(why));
    }
    net::ClientResponse& r = *response;
    if (r.status == 200) {
        co_return detail::token_from(r, impl_->clock.unix_seconds());
    }
    if (r.status == 429) {
        co_return detail::throttled(r, impl_->clock.wall_now());
    }
    if (r.status >= 400 && r.status < 500 && r.status != 408) {
        // invalid_client and friends: the credential may have been rotated since it was read.
        impl_->secrets.invalidate(identity.secret);
        co_return fetch_error(Errc::upstream_refused, r.status, std::move(r.body));
    }
    // 408, 5xx, and statuses AAD does not send for this call.
    co_return fetch_error(Errc::upstream_unavailable, r.status, std::move(r.body));
}

}  // namespace nmid::cloud
