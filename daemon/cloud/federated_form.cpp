// The pure half of the federated exchange: scope and form.
#include "aad_clients.hpp"
#include "nmid/cloud/federated_exchange.hpp"

namespace nmid::cloud {

namespace {
constexpr std::string_view kDefaultSuffix = "/.default";
}  // namespace

std::string scope_for_resource(std::string_view resource) {
    std::string scope{resource};
    if (!resource.ends_with(kDefaultSuffix)) {
        scope += kDefaultSuffix;
    }
    return scope;
}

std::string federated_form(std::string_view client_id, std::string_view scope,
                           std::string_view assertion) {
    std::string form;
    detail::add_field(form, "client_assertion", assertion);
    detail::add_field(form, "client_assertion_type", detail::kAssertionType);
    detail::add_field(form, "client_id", client_id);
    detail::add_field(form, "grant_type", "client_credentials");
    detail::add_field(form, "scope", scope);
    return form;
}

}  // namespace nmid::cloud
