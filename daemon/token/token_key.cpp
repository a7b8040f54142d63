#include "token_key.hpp"

#include <functional>
#include <string_view>
#include <utility>

namespace nmid {
namespace token_detail {

std::size_t combine(std::size_t h, std::size_t v) noexcept {
    return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

namespace {

/// splitmix64 finaliser: spreads a std::hash value over all 64 bits.
std::uint64_t mix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

}  // namespace

double key_jitter(const TokenRequest& request) {
    const auto bits = mix64(static_cast<std::uint64_t>(KeyHash{}(request))) >> 11;
    return static_cast<double>(bits) * 0x1.0p-53;
}

std::size_t entry_bytes(const TokenRequest& key, const Token* token) noexcept {
    const TokenIdentity& id = key.identity;
    std::size_t n = kEntryOverhead + key.resource.size() + id.identity_namespace.size() +
                    id.identity_name.size() + id.client_id.size() + id.resource_id.size() +
                    id.tenant_id.size() + id.ad_endpoint.size() + id.secret.namespace_name.size() +
                    id.secret.name.size();
    if (token != nullptr) {
        n += token->access_token.size() + token->refresh_token.size() + token->token_type.size() +
             token->resource.size();
    }
    return n;
}

}  // namespace token_detail

std::size_t identity_hash(const TokenIdentity& identity) noexcept {
    using token_detail::combine;
    const std::hash<std::string_view> hash;
    std::size_t h = hash(identity.client_id);
    h = combine(h, hash(identity.identity_namespace));
    h = combine(h, hash(identity.identity_name));
    h = combine(h, hash(identity.tenant_id));
    h = combine(h, hash(identity.ad_endpoint));
    h = combine(h, hash(identity.secret.namespace_name));
    h = combine(h, hash(identity.secret.name));
    return combine(h, static_cast<std::size_t>(identity.type));
}

PreparedIdentity prepare_identity(TokenIdentity identity) {
    const std::size_t hash = identity_hash(identity);
    return PreparedIdentity{.identity = std::move(identity), .hash = hash};
}

}  // namespace nmid
