#include <algorithm>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "format.hpp"
#include "nmid/core/ascii.hpp"
#include "nmid/core/json.hpp"
#include "nmid/emulator/emulator.hpp"
#include "responses.hpp"

namespace nmid::emulator {

namespace asio = boost::asio;
using http::HttpRequest;
using http::HttpResponse;

namespace {

constexpr std::string_view kTokenPath = "/metadata/identity/oauth2/token";
constexpr std::string_view kInstancePath = "/metadata/instance";
constexpr std::string_view kIdentityInfoPath = "/metadata/identity/info";
}  // namespace

/// One latency or hang wait that stop() or the caller's cancellation can end early.
struct EmulatorHandler::Waiter {
    explicit Waiter(asio::any_io_executor e) : executor(std::move(e)) {}
    asio::any_io_executor executor;
    asio::cancellation_signal signal;
    bool done = false;  ///< touched only on `executor`
};

struct EmulatorHandler::Admission {
    Fault fault;
    Millis latency{0};
    std::uint64_t jti = 0;
    bool tracked = false;  ///< counted in in_flight_ until leave()
};

EmulatorHandler::EmulatorHandler(Clock& clock, EmulatorSettings settings)
    : clock_{clock},
      settings_{std::move(settings)},
      identities_{settings_.user_assigned},
      instance_json_{detail::sample_instance_json()},
      faults_{settings_.faults},
      latency_{settings_.latency} {
    if (settings_.system_assigned) {
        identities_.push_back(*settings_.system_assigned);
    }
    for (auto& identity : identities_) {
        if (identity.object_id.empty()) {
            identity.object_id = detail::derive_object_id(identity.client_id);
        }
    }
    by_identity_.assign(identities_.size(), 0);
}

EmulatorHandler::~EmulatorHandler() = default;

asio::awaitable<HttpResponse> EmulatorHandler::handle(const HttpRequest& request) {
    auto target = request.target;
    auto question = target.find('?');
    auto path = target.substr(0, question);
    auto query =
        question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
    if (path == kTokenPath) {
        co_return co_await token(request, query);
    }
    if (path == kInstancePath ||
        (path.starts_with(kInstancePath) && path[kInstancePath.size()] == '/')) {
        co_return instance(request, path.substr(kInstancePath.size()), query);
    }
    if (path == kIdentityInfoPath) {
        co_return identity_info(request);
    }
    if (path.starts_with("/_emulator/")) {
        co_return control(request, path);
    }
    co_return reject(404, "not_found", "The requested path was not found");
}

asio::awaitable<HttpResponse> EmulatorHandler::token(const HttpRequest& request,
                                                     std::string_view query) {
    if (auto refused = refuse_request(request)) {
        co_return std::move(*refused);
    }
    auto q = detail::parse_query(query);
    if (!q.api_version) {
        co_return reject(400, "invalid_request",
                         "Required query variable 'api-version' is missing");
    }
    if (!q.resource) {
        co_return reject(400, "invalid_request", "Required query variable 'resource' is missing");
    }
    int selectors = int{q.client_id.has_value()} + int{q.object_id.has_value()} +
                    int{q.msi_res_id.has_value()} + int{q.mi_res_id.has_value()};
    if (selectors > 1) {
        co_return reject(400, "invalid_request",
                         "Only one of client_id, object_id, msi_res_id or mi_res_id may be given");
    }

    std::size_t index = identities_.size();
    auto find = [&](auto matches) {
        auto it = std::find_if(identities_.begin(), identities_.end(), matches);
        index = static_cast<std::size_t>(it - identities_.begin());
    };
    if (q.client_id) {
        find([&](const Identity& i) { return iequals(i.client_id, *q.client_id); });
    } else if (q.object_id) {
        find([&](const Identity& i) { return iequals(i.object_id, *q.object_id); });
    } else if (q.msi_res_id || q.mi_res_id) {
        const auto& wanted = q.msi_res_id ? *q.msi_res_id : *q.mi_res_id;
        find([&](const Identity& i) {
            return !i.resource_id.empty() && iequals(i.resource_id, wanted);
        });
    } else if (settings_.system_assigned) {
        index = identities_.size() - 1;
    } else if (settings_.user_assigned.size() == 1) {
        index = 0;
    } else if (settings_.user_assigned.size() > 1) {
        co_return reject(400, "invalid_request",
                         "Multiple user assigned identities exist, please specify the clientId / "
                         "resourceId of the identity in the token request");
    }
    if (index >= identities_.size()) {
        co_return reject(400, "invalid_request", "Identity not found");
    }

    auto admission = admit(index);
    // Leaves the in-flight count however the coroutine ends (answer, reset, destruction).
    struct Leave {
        EmulatorHandler* self;
        ~Leave() {
            if (self != nullptr) {
                self->leave();
            }
        }
    } leave_guard{admission.tracked ? this : nullptr};

    const auto& fault = admission.fault;
    if (fault.hang) {
        co_await wait_until(clock_.steady_now() + kHangLimit);
        co_return reset_response();
    }
    if (admission.latency > Millis{0}) {
        const bool waited = co_await wait_until(clock_.steady_now() + admission.latency);
        if (!waited) {
            co_return reset_response();
        }
    }
    if (fault.reset) {
        co_return reset_response();
    }

    HttpResponse response;
    response.status = fault.status;
    response.content_type = kJson;
    if (fault.retry_after) {
        response.headers.emplace_back("Retry-After", std::to_string(fault.retry_after->count()));
    }
    bool success = fault.status >= 200 && fault.status < 300;
    if (fault.body) {
        response.body = *fault.body;
    } else if (success) {
        response.body = detail::make_token_body({.identity = identities_[index],
                                                 .resource = *q.resource,
                                                 .now_unix = clock_.unix_seconds(),
                                                 .lifetime = settings_.token_lifetime,
                                                 .jti = admission.jti});
        tokens_issued_.fetch_add(1, std::memory_order_relaxed);
    } else {
        auto [error, description] = detail::fault_error(fault.status);
        response.body = error_json(error, description);
    }
    co_return response;
}

EmulatorHandler::Admission EmulatorHandler::admit(std::size_t identity_index) {
    Admission admission;
    std::lock_guard lock{mutex_};
    ++token_requests_;
    ++by_identity_[identity_index];
    if (next_fault_ < faults_.size()) {
        admission.fault = faults_[next_fault_++];
        if (!admission.fault.is_normal()) {
            ++faults_injected_;
        }
    }
    admission.latency = latency_ + admission.fault.latency;
    admission.jti = ++jti_;
    // An answer without a wait completes before any other request can start (the handler
    // does not suspend), so only requests that wait are kept in the in-flight count.
    admission.tracked = admission.fault.hang || admission.latency > Millis{0};
    max_in_flight_ = std::max(max_in_flight_, in_flight_ + 1);
    if (admission.tracked) {
        ++in_flight_;
    }
    return admission;
}

void EmulatorHandler::leave() {
    std::lock_guard lock{mutex_};
    --in_flight_;
}

asio::awaitable<bool> EmulatorHandler::wait_until(SteadyTime deadline) {
    auto executor = co_await asio::this_coro::executor;
    auto waiter = std::make_shared<Waiter>(executor);
    bool stopped = false;
    {
        std::lock_guard lock{mutex_};
        stopped = stopped_;
        if (!stopped) {
            waiters_.push_back(waiter);
        }
    }
    if (stopped) {
        co_return false;
    }
    // The wait runs as its own coroutine bound to the waiter's signal, so stop() can end it;
    // the caller's own cancellation (connection gone, server draining) is forwarded to it.
    auto state = co_await asio::this_coro::cancellation_state;
    auto outer = state.slot();
    if (outer.is_connected()) {
        outer.assign([w = waiter.get()](asio::cancellation_type type) { w->signal.emit(type); });
    }
    co_await asio::co_spawn(
        executor, clock_.wait_until(deadline),
        asio::bind_cancellation_slot(waiter->signal.slot(), asio::use_awaitable));
    if (outer.is_connected()) {
        outer.clear();
    }
    waiter->done = true;
    {
        std::lock_guard lock{mutex_};
        std::erase(waiters_, waiter);
    }
    co_return clock_.steady_now() >= deadline;
}

void EmulatorHandler::stop() {
    std::vector<std::shared_ptr<Waiter>> waiters;
    {
        std::lock_guard lock{mutex_};
        stopped_ = true;
        waiters = waiters_;
    }
    for (auto& waiter : waiters) {
        // The signal belongs to the waiter's executor (a connection strand): emit there.
        asio::post(waiter->executor, [waiter] {
            if (!waiter->done) {
                waiter->signal.emit(asio::cancellation_type::terminal);
            }
        });
    }
}

HttpResponse EmulatorHandler::control(const HttpRequest& request, std::string_view path) {
    if (path == "/_emulator/faults") {
        if (request.method != "POST") {
            return method_not_allowed("POST");
        }
        std::string error;
        auto update = detail::parse_faults_update(request.body, error);
        if (!update) {
            return json_response(400, error_json("invalid_request", error));
        }
        auto pending = update->sequence.size();
        set_faults(std::move(update->sequence), update->latency);
        Millis latency;
        {
            std::lock_guard lock{mutex_};
            latency = latency_;
        }
        return json_response(
            200,
            nlohmann::json{{"pending_faults", pending}, {"latency_ms", latency.count()}}.dump());
    }
    if (path == "/_emulator/reset") {
        if (request.method != "POST") {
            return method_not_allowed("POST");
        }
        reset();
        return json_response(200, R"({"reset":true})");
    }
    if (path == "/_emulator/stats") {
        if (request.method != "GET") {
            return method_not_allowed("GET");
        }
        return json_response(200, detail::stats_json(stats()));
    }
    return json_response(404, error_json("not_found", "Unknown control endpoint"));
}

std::optional<HttpResponse> EmulatorHandler::refuse_request(const HttpRequest& request) {
    if (request.method != "GET") {
        {
            std::lock_guard lock{mutex_};
            ++rejected_requests_;
        }
        return method_not_allowed("GET");
    }
    if (request.headers->get("Metadata") != "true") {
        return reject(400, "invalid_request", kMetadataMissing);
    }
    if (request.headers->contains("X-Forwarded-For")) {
        return reject(400, "invalid_request", kForwardedFor);
    }
    return std::nullopt;
}

HttpResponse EmulatorHandler::reject(int status, std::string_view error,
                                     std::string_view description) {
    {
        std::lock_guard lock{mutex_};
        ++rejected_requests_;
    }
    return json_response(status, error_json(error, description));
}

void EmulatorHandler::set_faults(std::vector<Fault> sequence, std::optional<Millis> latency) {
    std::lock_guard lock{mutex_};
    faults_ = std::move(sequence);
    next_fault_ = 0;
    if (latency) {
        latency_ = *latency;
    }
}

void EmulatorHandler::reset() {
    std::lock_guard lock{mutex_};
    faults_.clear();
    next_fault_ = 0;
    latency_ = settings_.latency;
    token_requests_ = 0;
    faults_injected_ = 0;
    instance_requests_ = 0;
    identity_info_requests_ = 0;
    rejected_requests_ = 0;
    max_in_flight_ = in_flight_;
    std::fill(by_identity_.begin(), by_identity_.end(), 0);
    tokens_issued_.store(0, std::memory_order_relaxed);
}

EmulatorStats EmulatorHandler::stats() const {
    EmulatorStats stats;
    std::lock_guard lock{mutex_};
    stats.token_requests = token_requests_;
    stats.tokens_issued = tokens_issued_.load(std::memory_order_relaxed);
    stats.faults_injected = faults_injected_;
    stats.instance_requests = instance_requests_;
    stats.identity_info_requests = identity_info_requests_;
    stats.rejected_requests = rejected_requests_;
    stats.in_flight_token_requests = in_flight_;
    stats.max_concurrent_token_requests = max_in_flight_;
    stats.pending_faults = faults_.size() - next_fault_;
    for (std::size_t i = 0; i < identities_.size(); ++i) {
        stats.token_requests_by_client_id[identities_[i].client_id] += by_identity_[i];
    }
    return stats;
}

}  // namespace nmid::emulator
