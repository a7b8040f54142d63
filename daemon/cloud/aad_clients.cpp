#include "aad_clients.hpp"

#include <algorithm>

#include "upstream_answer.hpp"

namespace nmid::cloud::detail {

namespace {

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

void add_field(std::string& form, std::string_view key, std::string_view value) {
    if (!form.empty()) {
        form += '&';
    }
    form += key;
    form += '=';
    form += net::percent_encode(value);
}

AadClients::AadClients(boost::asio::any_io_executor executor, AadSettings settings)
    : executor_{std::move(executor)}, settings_{std::move(settings)} {
    if (!settings_.ca_pem.empty() || !settings_.ca_file.empty()) {
        // A CA that cannot be loaded is a start-up error, not a 503 on every request.
        const AadEndpoint probe{.https = true, .host = "ca-check.invalid"};
        (void)net::HttpClient{executor_, client_settings(probe, settings_)};
    }
}

std::shared_ptr<net::HttpClient> AadClients::client_for(const AadEndpoint& endpoint,
                                                        std::string& error) {
    const std::string origin = endpoint.origin();
    const std::lock_guard lock{mutex_};
    const auto it = std::find_if(clients_.begin(), clients_.end(),
                                 [&](const auto& c) { return c.first == origin; });
    if (it != clients_.end()) {
        std::rotate(it, it + 1, clients_.end());
        return clients_.back().second;
    }
    auto client = net::HttpClient::create(executor_, client_settings(endpoint, settings_), &error);
    if (!client) {
        return {};
    }
    if (!clients_.empty() && clients_.size() >= std::max<std::size_t>(settings_.max_origins, 1)) {
        clients_.erase(clients_.begin());
    }
    clients_.emplace_back(origin, std::shared_ptr<net::HttpClient>{std::move(*client)});
    return clients_.back().second;
}

boost::asio::awaitable<FetchResult> post_token_form(AadClients& clients,
                                                    const AadEndpoint& endpoint, std::string form,
                                                    Clock& clock, SteadyTime deadline) {
    std::string client_error;
    std::shared_ptr<net::HttpClient> client = clients.client_for(endpoint, client_error);
    if (!client) {
        co_return fetch_error(Errc::upstream_unavailable, 0,
                              "AAD " + endpoint.authority + ": " + client_error);
    }
    net::ClientRequest req;
    req.method = "POST";
    req.target = endpoint.token_target;
    req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    req.headers.emplace_back("Accept", "application/json");
    if (!clients.settings().user_agent.empty()) {
        req.headers.emplace_back("User-Agent", clients.settings().user_agent);
    }
    req.body = std::move(form);
    const std::uint64_t tls_failures = client->stats().tls_failures;
    auto response = co_await client->request(req, deadline);
    if (!response) {
        // Under concurrent requests the reason may be another's: it is the same origin.
        std::string why =
            client->stats().tls_failures != tls_failures
                ? "TLS with AAD " + endpoint.authority + " failed: " + client->last_tls_error()
                : "AAD " + endpoint.authority + " unreachable";
        co_return transport_error(response.error(), std::move(why));
    }
    net::ClientResponse& r = *response;
    if (r.status == 200) {
        co_return token_from(r, clock.unix_seconds());
    }
    if (r.status == 429) {
        co_return throttled(r, clock.wall_now());
    }
    if (r.status >= 400 && r.status < 500 && r.status != 408) {
        co_return fetch_error(Errc::upstream_refused, r.status, std::move(r.body));
    }
    // 408, 5xx, and statuses AAD does not send for this call.
    co_return fetch_error(Errc::upstream_unavailable, r.status, std::move(r.body));
}

}  // namespace nmid::cloud::detail
