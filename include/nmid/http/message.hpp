#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nmid/core/clock.hpp"

namespace nmid::http {

/// Read access to the request's header fields without copying them (the http module
/// implements it over the parser's storage). Names compare case-insensitively.
class HeaderView {
public:
    virtual ~HeaderView() = default;
    /// Value of the first field named `name`, or "" when absent.
    [[nodiscard]] virtual std::string_view get(std::string_view name) const = 0;
    [[nodiscard]] virtual bool contains(std::string_view name) const = 0;
    /// Calls `fn(name, value)` for every field in wire order.
    virtual void for_each(void (*fn)(void* ctx, std::string_view name, std::string_view value),
                          void* ctx) const = 0;
};

/// One parsed request. Views stay valid until the response for it has been written.
struct HttpRequest {
    std::string_view method;  ///< "GET", ...
    std::string_view target;  ///< origin-form path and query, as received
    unsigned version = 11;    ///< 10 or 11
    boost::asio::ip::address peer;
    SteadyTime received_at{};
    const HeaderView* headers = nullptr;  ///< never null when handed to a handler
    std::string_view body;
};

/// One response. `content_type` "" means no Content-Type header.
struct HttpResponse {
    int status = 200;
    std::string content_type;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  ///< extra fields
    bool close = false;  ///< close the connection after writing
    bool reset = false;  ///< abort the connection (TCP RST) instead of answering; fault injection
};

/// An empty string with at least `capacity` bytes reserved, for a response's body or content
/// type, reusing the storage of a response the listener finished writing on this thread (no
/// allocation per response in steady state). Optional: any std::string works.
[[nodiscard]] std::string take_response_buffer(std::size_t capacity);
/// Keeps `s`'s storage for take_response_buffer() on this thread (a few buffers of at most
/// 64 KiB are kept; others are freed). The listener calls it for each response it wrote.
void give_back_response_buffer(std::string&& s) noexcept;

/// What the listener calls for every request.
class RequestHandler {
public:
    virtual ~RequestHandler() = default;
    /// Executor: the connection's. Must not throw for expected failures; an escaped
    /// exception answers 500 and is logged as a bug.
    virtual boost::asio::awaitable<HttpResponse> handle(const HttpRequest& request) = 0;
    /// The answer when it is at hand without suspending (a cached token), so the listener
    /// needs no coroutine for it; std::nullopt leaves the request to handle(), and then must
    /// have had no effect. Same executor and exception rules as handle().
    virtual std::optional<HttpResponse> handle_now(const HttpRequest& /*request*/) {
        return std::nullopt;
    }
};

}  // namespace nmid::http
