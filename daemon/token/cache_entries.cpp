// TokenCache: entries, their owners (requesters) and the bounds in entries, bytes and keys
// per requester.

#include <algorithm>

#include "cache_impl.hpp"
#include "refresh_policy.hpp"

namespace nmid {

using token_detail::bump;
using token_detail::set;

void TokenCache::Impl::touch(Entry& entry) {
    entry.last_used = clock_.steady_now();
    lru_.splice(lru_.begin(), lru_, entry.lru);
    auto& owned = entry.owner->lru;
    owned.splice(owned.begin(), owned, entry.owner_pos);
}

TokenCache::Impl::Requester& TokenCache::Impl::requester_of(std::string_view name) {
    auto it = requesters_.find(name);
    if (it == requesters_.end()) {
        it = requesters_.emplace(std::string(name), Requester{}).first;
        it->second.name = it->first;
    }
    return it->second;
}

void TokenCache::Impl::forget_if_idle(Requester& requester) {
    if (requester.keys == 0 && requester.pending == 0) {
        requesters_.erase(requesters_.find(std::string_view{requester.name}));
    }
}

bool TokenCache::Impl::over_pending(const Requester& requester) const {
    return requester.capped() && requester.pending >= settings_.max_pending_fetches_per_pod;
}

Result<TokenCache::Impl::Entry*> TokenCache::Impl::create_entry(const TokenRequest& request,
                                                                Requester& owner) {
    // A requester at its cap replaces its own keys: it never pushes out another's.
    if (owner.capped() && owner.keys >= settings_.max_tokens_per_pod && !evict_lru_of(owner)) {
        bump(stats_.refused_tokens);
        return Errc::pod_over_limit;
    }
    const std::size_t need = token_detail::entry_bytes(request, nullptr);
    if (!make_room(1, need, owner)) {
        return Errc::overloaded;
    }
    const auto it = entries_.try_emplace(request).first;
    Entry& created = it->second;
    created.key = &it->first;
    created.jitter = token_detail::key_jitter(request);
    created.lru = lru_.insert(lru_.begin(), &created);
    created.owner = &owner;
    created.owner_pos = owner.lru.insert(owner.lru.begin(), &created);
    ++owner.keys;
    set_bytes(created, need);
    set(stats_.entries, entries_.size());
    return &created;
}

bool TokenCache::Impl::make_room(std::size_t add_entries, std::size_t need, Requester& creator,
                                 const Entry* keep) {
    while (entries_.size() + add_entries > settings_.max_entries ||
           bytes_ + need > settings_.max_bytes) {
        // The requester holding the most bytes gives way (the creator on a tie): a pod never
        // evicts the tokens of a pod that holds less than it does.
        Requester* victim = nullptr;
        for (auto& [name, requester] : requesters_) {
            const bool evictable =
                std::any_of(requester.lru.rbegin(), requester.lru.rend(),
                            [keep](const Entry* e) { return e != keep && !e->inflight; });
            if (!evictable) {
                continue;
            }
            if (victim == nullptr || requester.bytes > victim->bytes ||
                (requester.bytes == victim->bytes && &requester == &creator)) {
                victim = &requester;
            }
        }
        if (victim == nullptr || !evict_lru_of(*victim, keep)) {
            return false;
        }
        if (victim != &creator) {
            forget_if_idle(*victim);
        }
    }
    return true;
}

bool TokenCache::Impl::evict_lru_of(Requester& requester, const Entry* keep) {
    // An entry with a fetch in flight has waiters or a refresh that will write into it.
    for (auto it = requester.lru.rbegin(); it != requester.lru.rend(); ++it) {
        if (*it != keep && !(*it)->inflight) {
            erase_entry(**it);
            bump(stats_.evictions);
            return true;
        }
    }
    return false;
}

TokenCache::Impl::Requester& TokenCache::Impl::erase_entry(Entry& entry) {
    Requester& owner = *entry.owner;
    set_bytes(entry, 0);
    lru_.erase(entry.lru);
    owner.lru.erase(entry.owner_pos);
    --owner.keys;
    entries_.erase(entries_.find(*entry.key));
    set(stats_.entries, entries_.size());
    return owner;
}

void TokenCache::Impl::set_bytes(Entry& entry, std::size_t bytes) {
    bytes_ = bytes_ - entry.bytes + bytes;
    entry.owner->bytes = entry.owner->bytes - entry.bytes + bytes;
    entry.bytes = bytes;
    set(stats_.bytes, bytes_);
}

void TokenCache::Impl::store_token(Entry& entry, TokenPtr token) {
    const auto window = token_detail::serving_window(
        clock_.wall_now(), token_detail::wall_from_unix(token->expires_on), entry.jitter,
        settings_);
    entry.refresh_at = window.refresh_at;
    entry.valid_until = window.valid_until;
    set_bytes(entry, token_detail::entry_bytes(*entry.key, token.get()));
    entry.token = std::move(token);
    entry.fetched_at = clock_.wall_now();
    entry.last_error = FetchError{};
    entry.retry_not_before = SteadyTime{};
    // The token's bytes may take the cache over its bound: others give way as for a new key.
    make_room(0, 0, *entry.owner, &entry);
}

}  // namespace nmid
