#include "nmid/cloud/federated_exchange.hpp"

#include <string>
#include <utility>

#include "aad_clients.hpp"
#include "nmid/cloud/aad_endpoint.hpp"

namespace nmid::cloud {

struct FederatedExchange::Impl {
    Impl(boost::asio::any_io_executor ex, Clock& c, AadSettings s)
        : clock{c}, clients{std::move(ex), std::move(s)} {}
    Clock& clock;
    detail::AadClients clients;
};

FederatedExchange::FederatedExchange(boost::asio::any_io_executor executor, Clock& clock,
                                     AadSettings settings)
    : impl_{std::make_unique<Impl>(std::move(executor), clock, std::move(settings))} {}

FederatedExchange::~FederatedExchange() = default;

boost::asio::awaitable<FetchResult> FederatedExchange::exchange(
    std::string_view client_id, std::string_view tenant_id, std::string_view authority,
    std::string_view resource, std::string_view assertion, SteadyTime deadline) {
    const Result<AadEndpoint> endpoint = parse_aad_endpoint(authority, tenant_id, AadTokenApi::v2);
    if (!endpoint) {
        co_return fetch_error(Errc::identity_unsupported, 0,
                              "the workload identity authority or tenant does not name an Azure "
                              "AD token endpoint");
    }
    std::string form = federated_form(client_id, scope_for_resource(resource), assertion);
    FetchResult result = co_await detail::post_token_form(impl_->clients, *endpoint,
                                                          std::move(form), impl_->clock, deadline);
    if (result) {
        result->resource = resource;  // v2 answers carry no resource: the pod's, as asked
    }
    co_return result;
}

}  // namespace nmid::cloud
