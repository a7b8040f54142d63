#include "nmid/cloud/secret_store.hpp"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "nmid/cloud/base64.hpp"
#include "nmid/kube/client.hpp"
#include "nmid/net/http_client.hpp"

namespace nmid::cloud {

namespace asio = boost::asio;

namespace {

using Key = std::pair<std::string, std::string>;  // (namespace, name)

SecretError make_error(SecretErrc code, std::string message, int status = 0) {
    return SecretError{.code = code, .status = status, .message = std::move(message)};
}

std::string describe(const Key& key) {
    return "secret " + key.first + "/" + key.second;
}

/// Failures that say nothing about the Secret itself: the last value read may still be used.
bool is_transient(SecretErrc code) {
    return code == SecretErrc::unavailable || code == SecretErrc::timeout;
}

}  // namespace

std::string_view to_string(SecretErrc code) noexcept {
    switch (code) {
        case SecretErrc::invalid_reference:
            return "invalid_reference";
        case SecretErrc::not_found:
            return "not_found";
        case SecretErrc::forbidden:
            return "forbidden";
        case SecretErrc::unavailable:
            return "unavailable";
        case SecretErrc::bad_payload:
            return "bad_payload";
        case SecretErrc::timeout:
            return "timeout";
        case SecretErrc::cancelled:
            return "cancelled";
    }
    return "unknown";
}

void throw_exception_from_error(const SecretError& e, const boost::source_location& loc) {
    boost::throw_exception(
        boost::system::system_error(make_error_code(Errc::io_error),
                                    "secret read failed: " + std::string(to_string(e.code))),
        loc);
}

SecretResult parse_secret(std::string_view body) {
    const auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object()) {
        return make_error(SecretErrc::bad_payload, "not a JSON object");
    }
    if (const auto kind = json.find("kind");
        kind != json.end() &&
        (!kind->is_string() || kind->get_ref<const std::string&>() != "Secret")) {
        return make_error(SecretErrc::bad_payload, "kind is not Secret");
    }
    auto secret = std::make_shared<Secret>();
    const auto data = json.find("data");
    if (data == json.end() || data->is_null()) {
        return SecretPtr{std::move(secret)};
    }
    if (!data->is_object()) {
        return make_error(SecretErrc::bad_payload, "data is not an object");
    }
    for (const auto& [k, v] : data->items()) {
        if (!v.is_string()) {
            return make_error(SecretErrc::bad_payload, "data key " + k + " is not a string");
        }
        auto decoded = base64_decode(v.get_ref<const std::string&>());
        if (!decoded) {
            return make_error(SecretErrc::bad_payload, "data key " + k + " is not base64");
        }
        secret->data.emplace(k, std::move(*decoded));
    }
    return SecretPtr{std::move(secret)};
}

struct ApiServerSecretStore::Impl : std::enable_shared_from_this<Impl> {
    struct Inflight {
        explicit Inflight(const asio::any_io_executor& ex) : done{ex, SteadyTime::max()} {}
        asio::steady_timer done;  // cancelled when the GET ends: wakes every waiter
        bool finished = false;
        SecretResult result{make_error(SecretErrc::cancelled, "")};
    };

    struct Entry {
        SecretPtr value;
        SteadyTime fresh_until{};
        SteadyTime stale_until{};
        std::optional<SecretError> error;
        SteadyTime error_until{};
        std::shared_ptr<Inflight> inflight;
        SteadyTime last_read{};
        std::uint64_t generation = 0;  // bumped by invalidate(): older GETs do not store
    };

    Impl(asio::any_io_executor executor, kube::ApiServerClient& client, Clock& clock,
         SecretStoreSettings settings)
        : executor_{std::move(executor)}, client_{client}, clock_{clock}, settings_{settings} {}

    static asio::awaitable<SecretResult> get_here(std::shared_ptr<Impl> self, Key key,
                                                  SteadyTime deadline);
    static asio::awaitable<void> fetch_task(std::shared_ptr<Impl> self, Key key,
                                            std::shared_ptr<Inflight> inflight,
                                            std::uint64_t generation, SteadyTime deadline);
    asio::awaitable<SecretResult> read(const Key& key, SteadyTime deadline);
    /// What an entry can answer without a GET, if anything.
    std::optional<SecretResult> answer(const Entry& entry, SteadyTime now) const;
    void make_room();

    asio::any_io_executor executor_;
    kube::ApiServerClient& client_;
    Clock& clock_;
    SecretStoreSettings settings_;
    std::map<Key, Entry> entries_;
    std::atomic<std::size_t> api_reads_{0};
};

std::optional<SecretResult> ApiServerSecretStore::Impl::answer(const Entry& entry,
                                                               SteadyTime now) const {
    if (entry.value && now < entry.fresh_until) {
        return SecretResult{entry.value};
    }
    if (entry.error && now < entry.error_until) {
        if (entry.value && is_transient(entry.error->code) && now < entry.stale_until) {
            return SecretResult{entry.value};
        }
        return SecretResult{*entry.error};
    }
    return std::nullopt;
}

void ApiServerSecretStore::Impl::make_room() {
    while (entries_.size() > settings_.max_entries) {
        auto victim = entries_.end();
        for (auto it = entries_.begin(); it != entries_.end(); ++it) {
            if (!it->second.inflight &&
                (victim == entries_.end() || it->second.last_read < victim->second.last_read)) {
                victim = it;
            }
        }
        if (victim == entries_.end()) {
            return;  // every entry has a GET in flight; they are dropped once over the bound
        }
        entries_.erase(victim);
    }
}

asio::awaitable<SecretResult> ApiServerSecretStore::Impl::get_here(std::shared_ptr<Impl> self,
                                                                   Key key, SteadyTime deadline) {
    const SteadyTime now = self->clock_.steady_now();
    auto [it, inserted] = self->entries_.try_emplace(key);
    Entry& entry = it->second;
    entry.last_read = now;
    if (auto known = self->answer(entry, now)) {
        co_return std::move(*known);
    }
    std::shared_ptr<Inflight> inflight = entry.inflight;
    if (!inflight) {
        inflight = std::make_shared<Inflight>(self->executor_);
        entry.inflight = inflight;
        // Detached: callers that join must not lose the GET when its starter is cancelled.
        asio::co_spawn(self->executor_, fetch_task(self, key, inflight, entry.generation, deadline),
                       asio::detached);
    }
    if (inserted) {
        self->make_room();
    }
    if (!inflight->finished) {
        co_await inflight->done.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (!inflight->finished) {
        co_return make_error(SecretErrc::cancelled, describe(key) + ": read cancelled");
    }
    co_return inflight->result;
}

asio::awaitable<void> ApiServerSecretStore::Impl::fetch_task(std::shared_ptr<Impl> self, Key key,
                                                             std::shared_ptr<Inflight> inflight,
                                                             std::uint64_t generation,
                                                             SteadyTime deadline) {
    SecretResult result = co_await self->read(key, deadline);
    const SteadyTime now = self->clock_.steady_now();
    const auto it = self->entries_.find(key);
    Entry* entry =
        it != self->entries_.end() && it->second.inflight == inflight ? &it->second : nullptr;
    if (entry != nullptr) {
        entry->inflight.reset();
        if (entry->generation == generation) {
            if (result) {
                entry->value = *result;
                entry->fresh_until = now + self->settings_.ttl;
                entry->stale_until = entry->fresh_until + self->settings_.stale_if_error;
                entry->error.reset();
            } else if (result.error().code != SecretErrc::cancelled) {
                if (!is_transient(result.error().code)) {
                    // A deleted Secret or a revoked permission takes effect at once.
                    entry->value.reset();
                }
                entry->error = result.error();
                entry->error_until = now + self->settings_.failure_ttl;
            }
        }
        if (!result && is_transient(result.error().code) && entry->value &&
            now < entry->stale_until) {
            result = entry->value;
        }
    }
    inflight->result = std::move(result);
    inflight->finished = true;
    inflight->done.cancel();
}

asio::awaitable<SecretResult> ApiServerSecretStore::Impl::read(const Key& key,
                                                               SteadyTime deadline) {
    std::string target = "/api/v1/namespaces/";
    target += net::percent_encode(key.first);
    target += "/secrets/";
    target += net::percent_encode(key.second);
    api_reads_.fetch_add(1, std::memory_order_relaxed);
    auto response = co_await client_.get(std::move(target), deadline);
    if (!response) {
        if (response.error() == Errc::timeout) {
            co_return make_error(SecretErrc::timeout,
                                 describe(key) + ": API server read timed out");
        }
        if (response.error() == Errc::cancelled) {
            co_return make_error(SecretErrc::cancelled, describe(key) + ": read cancelled");
        }
        co_return make_error(SecretErrc::unavailable, describe(key) + ": API server unreachable (" +
                                                          response.error().message() + ")");
    }
    const int status = response->status;
    switch (status) {
        case 200: {
            auto parsed = parse_secret(response->body);
            if (!parsed) {
                auto e = parsed.error();
                e.message = describe(key) + ": " + e.message;
                e.status = status;
                co_return e;
            }
            co_return parsed;
        }
        case 404:
            co_return make_error(SecretErrc::not_found, describe(key) + " not found", status);
        case 403:
            co_return make_error(SecretErrc::forbidden,
                                 describe(key) + ": get forbidden by the API server (RBAC)",
                                 status);
        default:
            // The body is not passed on: it is the API server's, not an answer about tokens.
            co_return make_error(SecretErrc::unavailable,
                                 describe(key) + ": API server answered " + std::to_string(status),
                                 status);
    }
}

ApiServerSecretStore::ApiServerSecretStore(asio::any_io_executor executor,
                                           kube::ApiServerClient& client, Clock& clock,
                                           SecretStoreSettings settings)
    : impl_{std::make_shared<Impl>(std::move(executor), client, clock, settings)} {}

ApiServerSecretStore::~ApiServerSecretStore() = default;

asio::awaitable<SecretResult> ApiServerSecretStore::get(const SecretRef& ref, SteadyTime deadline) {
    if (ref.namespace_name.empty() || ref.name.empty()) {
        co_return make_error(SecretErrc::invalid_reference,
                             "secret reference needs a namespace and a name");
    }
    // Resuming after asio::dispatch(executor) would continue on the caller's executor, not the
    // store's: co_spawn runs the lookup there and completes back here.
    co_return co_await asio::co_spawn(
        impl_->executor_, Impl::get_here(impl_, Key{ref.namespace_name, ref.name}, deadline),
        asio::use_awaitable);
}

void ApiServerSecretStore::invalidate(const SecretRef& ref) {
    asio::dispatch(impl_->executor_, [impl = impl_, key = Key{ref.namespace_name, ref.name}] {
        const auto it = impl->entries_.find(key);
        if (it == impl->entries_.end()) {
            return;
        }
        auto& entry = it->second;
        entry.value.reset();
        entry.error.reset();
        ++entry.generation;
    });
}

std::size_t ApiServerSecretStore::api_reads() const {
    return impl_->api_reads_.load(std::memory_order_relaxed);
}

}  // namespace nmid::cloud
