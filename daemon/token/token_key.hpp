#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "nmid/model/token.hpp"
#include "nmid/token/token_cache.hpp"

namespace nmid::token_detail {

/// boost::hash_combine's mixing step.
[[nodiscard]] std::size_t combine(std::size_t h, std::size_t v) noexcept;

/// The entries' hash and equality: a TokenRequest, or a TokenKey viewing the same fields, so
/// hits look up without building a TokenRequest (heterogeneous lookup).
struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(const TokenRequest& r) const noexcept {
        return combine(identity_hash(r.identity), std::hash<std::string_view>{}(r.resource));
    }
    std::size_t operator()(const TokenKey& k) const noexcept {
        return combine(k.identity.hash, std::hash<std::string_view>{}(k.resource));
    }
};

struct KeyEqual {
    using is_transparent = void;
    bool operator()(const TokenRequest& a, const TokenRequest& b) const { return a == b; }
    bool operator()(const TokenKey& k, const TokenRequest& r) const {
        return k.resource == r.resource && k.identity.identity == r.identity;
    }
    bool operator()(const TokenRequest& r, const TokenKey& k) const { return (*this)(k, r); }
};

/// Fixed bytes counted per entry on top of its strings: the map node, Entry, the
/// std::string headers of the key, both LRU nodes, and the Token with its control block.
inline constexpr std::size_t kEntryOverhead = 768;

/// What an entry counts against --token-cache-max-bytes: kEntryOverhead, the key's strings
/// and (when not null) the token's strings.
[[nodiscard]] std::size_t entry_bytes(const TokenRequest& key, const Token* token) noexcept;

/// A per-key number in [0, 1): the same key always refreshes at the same point of its
/// margin, and different keys spread out instead of refreshing together.
[[nodiscard]] double key_jitter(const TokenRequest& request);

}  // namespace nmid::token_detail
