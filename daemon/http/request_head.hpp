#pragma once

// Request heads, socket-free: the storage a connection reuses for each request, Beast's parser
// writing into it, the fast parser for plain heads, and the HeaderView handed to handlers.
// Private to the http module.

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nmid/http/message.hpp"

namespace nmid::http::detail {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

/// The request being read, as the parser reported it, in storage the connection reuses: no
/// allocation per request once warm (Beast's message type allocates one node per field).
/// Views stay valid until the next request starts.
struct RequestData {
    struct Span {
        std::uint32_t offset = 0;
        std::uint32_t size = 0;
    };
    struct Field {
        Span name;
        Span value;
    };

    std::string text;  ///< method, target, then each field's name and value, back to back
    Span method;
    Span target;
    std::vector<Field> fields;  ///< wire order
    std::string body;
    bhttp::verb verb = bhttp::verb::unknown;
    unsigned version = 11;
    bool has_host = false;
    bool expects_continue = false;  ///< the first Expect field is "100-continue"
    bool seen_expect = false;
    bool keep_alive = false;  ///< set once the request is complete

    void clear() noexcept {
        text.clear();
        method = {};
        target = {};
        fields.clear();
        body.clear();
        verb = bhttp::verb::unknown;
        version = 11;
        has_host = false;
        expects_continue = false;
        seen_expect = false;
        keep_alive = false;
    }
    Span add(std::string_view s) {
        const Span span{static_cast<std::uint32_t>(text.size()),
                        static_cast<std::uint32_t>(s.size())};
        text.append(s);
        return span;
    }
    [[nodiscard]] std::string_view view(Span s) const noexcept {
        return {text.data() + s.offset, s.size};
    }
};

/// The transfer codings of a request's Transfer-Encoding fields, all of them in wire order
/// (RFC 9112 6.1). The only framing nmid accepts is exactly one coding, `chunked` (any case, no
/// parameters): anything else (an unknown coding such as `xchunked` or `gzip`, `chunked` twice
/// or not last, an empty value) leaves the body length unknown, which RFC 9112 6.3 answers
/// with 400 and close. Empty list elements (`chunked, `) are ignored as RFC 9110 5.6.1 says.
/// Pure.
class TransferCodings {
public:
    /// One Transfer-Encoding field's value.
    void add(std::string_view value) noexcept;
    /// Whether a Transfer-Encoding field was seen.
    [[nodiscard]] bool present() const noexcept { return fields_ != 0; }
    /// Exactly one coding, `chunked`.
    [[nodiscard]] bool only_chunked() const noexcept { return chunked_ == 1 && other_ == 0; }

private:
    unsigned fields_ = 0;
    unsigned chunked_ = 0;
    unsigned other_ = 0;
};

/// Beast's HTTP/1 request parser (limits, framing, chunked bodies) writing into RequestData
/// instead of a message object. One per request, as Beast requires. Stricter than Beast on
/// framing: a Transfer-Encoding other than TransferCodings::only_chunked(), or one together
/// with Content-Length, fails with bhttp::error::bad_transfer_encoding; chunked trailer fields
/// are read and dropped (they never become request fields).
class RequestParser final : public bhttp::basic_parser<true> {
public:
    explicit RequestParser(RequestData& data) : data_(data) { data_.clear(); }

private:
    using error_code = boost::system::error_code;

    void on_request_impl(bhttp::verb method, beast::string_view method_str,
                         beast::string_view target, int version, error_code& ec) override;
    void on_response_impl(int, beast::string_view, int, error_code& ec) override;
    void on_field_impl(bhttp::field name, beast::string_view name_string, beast::string_view value,
                       error_code& ec) override;
    void on_header_impl(error_code& ec) override;
    void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code& ec) override;
    std::size_t on_body_impl(beast::string_view body, error_code& ec) override;
    void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code& ec) override;
    std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code& ec) override;
    void on_finish_impl(error_code& ec) override;

    RequestData& data_;
    TransferCodings codings_;
    bool content_length_ = false;
    bool header_done_ = false;  ///< fields after the header are chunked trailers
};

/// The common request in a fraction of Beast's cost: a complete head in `in` that uses only
/// the plainest HTTP/1.x syntax, parsed into `r`. Returns the bytes of the head (such a
/// request has no body), or 0 to leave the request to Beast. Taken: `token SP target SP
/// HTTP/1.0|1.1 CRLF`, target of visible ASCII; fields `token ":" OWS value OWS CRLF` with
/// values of visible ASCII, SP and HTAB; no obs-fold; no field is_managed_field() names; the
/// whole head shorter than `header_limit`. Beast accepts every such head and reports the same
/// method, target, version and fields, and the request has no body and is keep-alive exactly
/// when it is HTTP/1.1; anything else (including every malformed request) goes to Beast.
std::size_t parse_simple_head(std::string_view in, std::size_t header_limit, RequestData& r);

/// HeaderView over RequestData: no copies; valid until the next request starts.
class FieldsView final : public HeaderView {
public:
    void reset(const RequestData* data) noexcept { data_ = data; }

    [[nodiscard]] std::string_view get(std::string_view name) const override;
    [[nodiscard]] bool contains(std::string_view name) const override;
    void for_each(void (*fn)(void* ctx, std::string_view name, std::string_view value),
                  void* ctx) const override;

private:
    const RequestData* data_ = nullptr;
};

}  // namespace nmid::http::detail
