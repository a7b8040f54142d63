#include "nmid/cloud/aad_token_source.hpp"

#include <algorithm>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "aad_clients.hpp"
#include "nmid/cloud/aad_endpoint.hpp"
#include "nmid/cloud/client_credential.hpp"
#include "nmid/cloud/secret_store.hpp"
#include "nmid/net/http_client.hpp"
#include "upstream_answer.hpp"

namespace nmid::cloud {

namespace {

using detail::add_field;
using detail::kAssertionType;
using detail::fetch_error;

}  // namespace

struct AadTokenSource::Impl {
    Impl(boost::asio::any_io_executor ex, SecretStore& store, Clock& c, AadSettings s)
        : secrets{store}, clock{c}, clients{std::move(ex), std::move(s)} {}

    SecretStore& secrets;
    Clock& clock;
    detail::AadClients clients;
};

AadTokenSource::AadTokenSource(boost::asio::any_io_executor executor, SecretStore& secrets,
                               Clock& clock, AadSettings settings)
    : impl_{std::make_unique<Impl>(std::move(executor), secrets, clock, std::move(settings))} {}

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
                                                    impl_->clients.settings().assertion_lifetime);
        if (!assertion) {
            co_return fetch_error(Errc::identity_unsupported, 0, assertion.error().message);
        }
        add_field(form, "client_assertion", *assertion);
        add_field(form, "client_assertion_type", kAssertionType);
        add_field(form, "client_id", identity.client_id);
    }
    add_field(form, "grant_type", "client_credentials");
    add_field(form, "resource", request.resource);

    FetchResult result = co_await detail::post_token_form(impl_->clients, *endpoint,
                                                          std::move(form), impl_->clock, deadline);
    if (!result && result.error().code == Errc::upstream_refused) {
        // invalid_client and friends: the credential may have been rotated since it was read.
        impl_->secrets.invalidate(identity.secret);
    }
    co_return result;
}

}  // namespace nmid::cloud
