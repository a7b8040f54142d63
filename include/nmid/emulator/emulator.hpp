#pragma once

// imds-emulator: a local stand-in for Azure IMDS (token endpoint, instance metadata) with
// scripted faults, for tests, benchmarks and developers running apps without Azure
// (reference wire-formats sections 6, 7 and 9 "Fake IMDS").

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/http/message.hpp"

namespace nmid::emulator {

/// Tenant written into every token's `iss` and `tid` (fake, never a real directory).
inline constexpr std::string_view kTenantId = "e1e1e1e1-0000-4000-8000-00000000e1e1";
/// How long a `hang` fault holds a request before resetting the connection.
inline constexpr std::chrono::minutes kHangLimit{10};

/// A managed identity attached to the emulated VM.
struct Identity {
    std::string client_id{};
    std::string resource_id{};  ///< ARM ID; "" when unknown (then `msi_res_id` cannot select it)
    std::string object_id{};    ///< "" = derived from client_id (stable, UUID-shaped)
};

/// What to do with one token request. The default value is a normal answer.
struct Fault {
    int status = 200;  ///< 2xx: a token body; anything else: an IMDS-shaped error body
    std::optional<std::chrono::seconds> retry_after{};  ///< Retry-After header when set
    Millis latency{0};                  ///< extra wait before answering (added to the base one)
    bool hang = false;                  ///< hold the request for kHangLimit, then reset
    bool reset = false;                 ///< abort the connection instead of answering
    std::optional<std::string> body{};  ///< replaces the generated body (bad-payload tests)

    [[nodiscard]] bool is_normal() const {
        return status == 200 && latency == Millis{0} && !hang && !reset && !body;
    }
    friend bool operator==(const Fault&, const Fault&) = default;
};

struct EmulatorSettings {
    std::vector<Identity> user_assigned{};
    std::optional<Identity> system_assigned{};  ///< used when a request names no identity
    std::chrono::seconds token_lifetime{std::chrono::hours{24}};
    Millis latency{0};            ///< added to every token answer, faults included
    std::vector<Fault> faults{};  ///< applied to successive valid token requests, then normal
};

/// Counters since start or the last reset(). Token counts include faulted requests.
struct EmulatorStats {
    std::uint64_t token_requests = 0;   ///< valid token requests received (faults included)
    std::uint64_t tokens_issued = 0;    ///< token bodies answered
    std::uint64_t faults_injected = 0;  ///< token requests that consumed a non-normal fault
    std::uint64_t instance_requests = 0;
    std::uint64_t identity_info_requests = 0;  ///< `/metadata/identity/info` answered
    std::uint64_t rejected_requests = 0;       ///< answered 400/404/405 by the contract checks
    std::size_t in_flight_token_requests = 0;
    std::size_t max_concurrent_token_requests = 0;  ///< high-water mark (waits count)
    std::size_t pending_faults = 0;
    std::map<std::string, std::uint64_t> token_requests_by_client_id{};  ///< every identity
};

/// Parses one fault of the control API (`{"status":429,"retry_after":2}`, `{"hang":true}`,
/// `{"reset":true}`, `{"latency_ms":300}`, `{"status":200,"body":"..."}`). A 429 without
/// `retry_after` gets 1 s; `"retry_after":null` sends none. Unknown keys are errors.
/// Errors: Errc::parse_error, with a one-line reason in `error`.
[[nodiscard]] Result<Fault> fault_from_json_text(std::string_view json, std::string& error);

/// The emulator's whole HTTP surface:
/// - `GET /metadata/identity/oauth2/token` (IMDS token contract),
/// - `GET /metadata/instance[/path]` (sample instance metadata),
/// - `POST /_emulator/faults`, `POST /_emulator/reset`, `GET /_emulator/stats` (test control).
///
/// Thread-safety: handle(), set_faults(), reset(), stats() and stop() may be called from any
/// thread; shared state is behind one mutex held only for a few counter updates.
class EmulatorHandler final : public http::RequestHandler {
public:
    /// `clock` must outlive the handler; latency and hang waits use `clock.wait_until`.
    EmulatorHandler(Clock& clock, EmulatorSettings settings);
    ~EmulatorHandler() override;
    EmulatorHandler(const EmulatorHandler&) = delete;
    EmulatorHandler& operator=(const EmulatorHandler&) = delete;

    /// Executor: the caller's (the connection's). Never throws for request errors.
    /// Cancellation: terminal cancellation of the awaiting coroutine ends a latency or hang
    /// wait early; the answer is then a connection reset.
    boost::asio::awaitable<http::HttpResponse> handle(const http::HttpRequest& request) override;

    /// Replaces the fault sequence; `latency`, when set, replaces the base latency.
    void set_faults(std::vector<Fault> sequence, std::optional<Millis> latency);
    /// Clears faults and counters; the base latency returns to the configured one.
    void reset();
    /// Wakes every latency or hang wait (they answer with a reset) and makes later waits
    /// return at once. For shutdown: a hang must not keep the server's drain waiting.
    void stop();

    [[nodiscard]] EmulatorStats stats() const;

private:
    struct Waiter;
    struct Admission;

    boost::asio::awaitable<http::HttpResponse> token(const http::HttpRequest& request,
                                                     std::string_view query);
    http::HttpResponse identity_info(const http::HttpRequest& request);
    http::HttpResponse instance(const http::HttpRequest& request, std::string_view path,
                                std::string_view query);
    http::HttpResponse control(const http::HttpRequest& request, std::string_view path);
    http::HttpResponse reject(int status, std::string_view error, std::string_view description);
    /// IMDS's checks of every metadata request, in IMDS's order: GET only (405), `Metadata:
    /// true` (400), no X-Forwarded-For (400); the refusal (counted as rejected), else nullopt.
    std::optional<http::HttpResponse> refuse_request(const http::HttpRequest& request);
    /// True when the deadline passed; false when woken by stop() or cancellation.
    boost::asio::awaitable<bool> wait_until(SteadyTime deadline);
    Admission admit(std::size_t identity_index);
    void leave();

    Clock& clock_;
    const EmulatorSettings settings_;
    /// user_assigned then system_assigned (when configured), object IDs filled in.
    std::vector<Identity> identities_;
    const std::string instance_json_;

    /// Guards every member below. Handlers of different connections may run on different
    /// threads when the io_context has several.
    mutable std::mutex mutex_;
    std::vector<Fault> faults_;  ///< remaining sequence, next fault at next_fault_
    std::size_t next_fault_ = 0;
    Millis latency_;
    std::uint64_t token_requests_ = 0;
    std::uint64_t faults_injected_ = 0;
    std::uint64_t instance_requests_ = 0;
    std::uint64_t identity_info_requests_ = 0;
    std::uint64_t rejected_requests_ = 0;
    std::uint64_t jti_ = 0;
    std::size_t in_flight_ = 0;
    std::size_t max_in_flight_ = 0;
    std::vector<std::uint64_t> by_identity_;  ///< parallel to identities_
    std::vector<std::shared_ptr<Waiter>> waiters_;
    bool stopped_ = false;
    /// Outside the mutex: counted after a wait, when the answer is known.
    std::atomic<std::uint64_t> tokens_issued_{0};
};

}  // namespace nmid::emulator
