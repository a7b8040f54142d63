#include "nmid/cloud/aad_token_source.hpp"

#include <algorithm>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "nmid/cloud/aad_endpoint.hpp"
#include "nmid/cloud/client_credential.hpp"
#include "nmid/cloud/secret_store.hpp"
#include "nmid/cloud/token_json.hpp"
#include "nmid/net/http_client.hpp"

namespace nmid::cloud {

namespace {

// AAD error bodies are a few hundred bytes; they travel back to pods and sit in the negative
// cache, so a cap only guards against a misbehaving endpoint.
constexpr std::size_t kMaxErrorBody = 4096;

constexpr std::string_view kAssertionType =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

FetchError make_error(Errc code, std::string body = {}, int status = 0,
                      std::chrono::seconds retry_after = std::chrono::seconds{0}) {
    FetchError e;
    e.code = code;
    e.upstream_status = status;
    if (body.size() > kMaxErrorBody) {
        body.resize(kMaxErrorBody);
    }
    e.upstream_body = std::move(body);
    e.retry_after = retry_after;
    return e;
}

/// Appends `key=value` (both percent-encoded) to a form body.
void add_field(std::string& form, std::string_view key, std::string_view value) {
    if (!form.empty()) {
        form += '&';
    }
    form += key;
    form += '=';
    form += net::percent_encode(value);
}

// ---- TLS: the single place where the AAD transport is configured ----------------------------
// net::HttpClientSettings is gaining `tls` settings (a change in flight in module net). Once it
// has them, set them here for https endpoints (verify the peer against the system roots, SNI
// and host name check = endpoint.host) and return true. Until then an https endpoint is
// refused rather than spoken to in clear text: a client secret must never leave unencrypted
// for a host that expects TLS. Plain `http://` endpoints (tests, a local AAD emulator) are used
// as written.
bool configure_transport(const AadEndpoint& endpoint, net::HttpClientSettings& settings) {
    (void)settings;
    return !endpoint.https;
}
// ------------------------------------------------------------------------------------------------

}  // namespace

struct AadTokenSource::Impl {
    Impl(boost::asio::any_io_executor ex, SecretStore& store, Clock& c, AadSettings s)
        : executor{std::move(ex)}, secrets{store}, clock{c}, settings{std::move(s)} {}

    /// The client for `endpoint`'s origin, created on first use; null when the transport
    /// cannot be configured.
    std::shared_ptr<net::HttpClient> client_for(const AadEndpoint& endpoint);

    boost::asio::any_io_executor executor;
    SecretStore& secrets;
    Clock& clock;
    AadSettings settings;

    std::mutex mutex;
    /// (origin, client), most recently used last. In-flight requests keep a client's state
    /// alive, so dropping one from here never cuts a request.
    std::vector<std::pair<std::string, std::shared_ptr<net::HttpClient>>> clients;
};

std::shared_ptr<net::HttpClient> AadTokenSource::Impl::client_for(const AadEndpoint& endpoint) {
    const std::string origin = endpoint.origin();
    const std::lock_guard lock{mutex};
    const auto it = std::find_if(clients.begin(), clients.end(),
                                 [&](const auto& c) { return c.first == origin; });
    if (it != clients.end()) {
        std::rotate(it, it + 1, clients.end());
        return clients.back().second;
    }
    net::HttpClientSettings s;
    s.host = endpoint.host;
    s.port = endpoint.port;
    s.host_header = endpoint.authority;
    s.connect_timeout = settings.connect_timeout;
    s.pool_size = settings.pool_size;
    s.max_response_body = settings.max_response_body;
    if (!configure_transport(endpoint, s)) {
        return {};
    }
    if (!clients.empty() && clients.size() >= std::max<std::size_t>(settings.max_origins, 1)) {
        clients.erase(clients.begin());
    }
    clients.emplace_back(origin, std::make_shared<net::HttpClient>(executor, std::move(s)));
    return clients.back().second;
}

AadTokenSource::AadTokenSource(boost::asio::any_io_executor executor, SecretStore& secrets,
                               Clock& clock, AadSettings settings)
    : impl_{std::make_unique<Impl>(std::move(executor), secrets, clock, std::move(settings))} {}

AadTokenSource::~AadTokenSource() = default;

boost::asio::awaitable<FetchResult> AadTokenSource::fetch(const TokenRequest& request,
                                                          SteadyTime deadline) {
    const TokenIdentity& identity = request.identity;
    if (identity.type != 1 && identity.type != 2) {
        co_return make_error(
            Errc::identity_unsupported,
            "identity type " + std::to_string(identity.type) + " is not a service principal");
    }
    auto endpoint = parse_aad_endpoint(identity.ad_endpoint, identity.tenant_id);
    if (!endpoint) {
        co_return make_error(Errc::identity_unsupported, "adEndpoint or tenantID is not valid");
    }
    std::shared_ptr<net::HttpClient> client = impl_->client_for(*endpoint);
    if (!client) {
        co_return make_error(Errc::identity_unsupported,
                             "https to " + endpoint->authority + " needs TLS, not available yet");
    }

    SecretResult secret = co_await impl_->secrets.get(identity.secret, deadline);
    if (!secret) {
        const SecretError& e = secret.error();
        if (e.code == SecretErrc::timeout) {
            co_return make_error(Errc::timeout, e.message);
        }
        if (e.code == SecretErrc::cancelled) {
            co_return make_error(Errc::cancelled);
        }
        // NMI answers 503 when the Secret cannot be read; status 0: no AAD answer.
        co_return make_error(Errc::upstream_unavailable, e.message);
    }

    // Keys in sorted order, as Go's url.Values.Encode (adal) writes them.
    std::string form;
    if (identity.type == 1) {
        auto client_secret = select_client_secret(**secret);
        if (!client_secret) {
            co_return make_error(Errc::identity_unsupported,
                                 "secret " + identity.secret.namespace_name + "/" +
                                     identity.secret.name + ": " + client_secret.error().message);
        }
        add_field(form, "client_id", identity.client_id);
        add_field(form, "client_secret", *client_secret);
    } else {
        auto credential = CertificateCredential::from_secret(**secret);
        if (!credential) {
            co_return make_error(Errc::identity_unsupported,
                                 "secret " + identity.secret.namespace_name + "/" +
                                     identity.secret.name + ": " + credential.error().message);
        }
        auto assertion = credential->make_assertion(identity.client_id, endpoint->token_url,
                                                    impl_->clock.unix_seconds(),
                                                    impl_->settings.assertion_lifetime);
        if (!assertion) {
            co_return make_error(Errc::identity_unsupported, assertion.error().message);
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
    auto response = co_await client->request(req, deadline);
    if (!response) {
        if (response.error() == Errc::timeout) {
            co_return make_error(Errc::timeout);
        }
        if (response.error() == Errc::cancelled) {
            co_return make_error(Errc::cancelled);
        }
        co_return make_error(Errc::upstream_unavailable,
                             "AAD " + endpoint->authority + " unreachable");
    }
    net::ClientResponse& r = *response;
    if (r.status == 200) {
        auto token = parse_token_response(r.body, impl_->clock.unix_seconds());
        if (!token) {
            // The body may hold a token: it is not kept.
            co_return make_error(Errc::upstream_bad_payload, {}, r.status);
        }
        co_return std::move(*token);
    }
    if (r.status == 429) {
        const auto retry_after =
            net::parse_retry_after(r.header("Retry-After"), impl_->clock.wall_now())
                .value_or(std::chrono::seconds{0});
        co_return make_error(Errc::upstream_throttled, std::move(r.body), r.status, retry_after);
    }
    if (r.status >= 400 && r.status < 500 && r.status != 408) {
        // invalid_client and friends: the credential may have been rotated since it was read.
        impl_->secrets.invalidate(identity.secret);
        co_return make_error(Errc::upstream_refused, std::move(r.body), r.status);
    }
    // 408, 5xx, and statuses AAD does not send for this call.
    co_return make_error(Errc::upstream_unavailable, std::move(r.body), r.status);
}

}  // namespace nmid::cloud
