// Fuzz target: the HTTP/1 request reader of the listener with nmid's limits (8 KiB head,
// 4 KiB body): the fast head parser `parse_simple_head` and Beast's parser as `RequestParser`
// configures it, driven the way `serve`/`read_request` drive them on a connection.
//
// The parser is private to the http module (daemon/http/request_head.hpp): this target calls
// `nmid::http::detail::parse_simple_head`, `RequestParser` and `RequestData` directly.
//
// Invariants checked on every input (the input is a byte stream followed by end of stream):
// - whenever the fast parser takes a head, Beast, fed the same bytes, accepts them as one
//   complete request with the same method, target, version, fields (wire order), Host, and
//   keep-alive, and no body (the contract written on parse_simple_head);
// - the requests read do not depend on how the stream is cut into reads: one read of up to
//   4 KiB at a time (as the server reads) and reads of a few bytes give the same requests, and
//   both end cleanly at the end of the stream or both reject something. (Which rejection may
//   differ: Beast rejects a bad start line as soon as it arrives whole in one read, but after
//   a partial read only once the head's end, the header limit or end of stream arrives.)
// - a completed request's body never exceeds the body limit.
#include <boost/system/error_code.hpp>
#include <cstdio>
#include <cstdlib>

#include "../../daemon/http/request_head.hpp"
#include "../../daemon/http/server_state.hpp"
#include "nmid/config/settings.hpp"

namespace nmid::http::detail {
namespace {

using boost::system::error_code;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "invariant violated: %s\n", what);
        std::abort();
    }
}

/// What the listener saw of one request.
struct Parsed {
    std::string method;
    std::string target;
    unsigned version = 0;
    std::vector<std::pair<std::string, std::string>> fields;
    std::string body;
    bool has_host = false;
    bool expects_continue = false;
    bool keep_alive = false;

    friend bool operator==(const Parsed&, const Parsed&) = default;
};

Parsed snapshot(const RequestData& r) {
    Parsed p;
    p.method = r.view(r.method);
    p.target = r.view(r.target);
    p.version = r.version;
    for (const RequestData::Field& f : r.fields) {
        p.fields.emplace_back(r.view(f.name), r.view(f.value));
    }
    p.body = r.body;
    p.has_host = r.has_host;
    p.expects_continue = r.expects_continue;
    p.keep_alive = r.keep_alive;
    return p;
}

enum class End { eof, closed, bad, header_too_large, body_too_large };

struct Outcome {
    std::vector<Parsed> requests;
    End end = End::eof;
};

/// The connection's input: `stream` arriving in reads of at most `chunk` bytes, then EOF;
/// `buffer` holds what arrived and is not consumed, at most `limit` bytes (flat_buffer's
/// max_size in the server).
class Input {
public:
    Input(std::string_view stream, std::size_t chunk, std::size_t limit)
        : stream_(stream), chunk_(chunk), limit_(limit) {}

    /// Reads once (at most `chunk`, at most the room left); false at end of stream.
    bool read() {
        if (stream_.empty()) {
            return false;
        }
        const std::size_t room = limit_ - buffer_.size();
        const std::size_t n = std::min({room, chunk_, stream_.size()});
        buffer_.append(stream_.substr(0, n));
        stream_.remove_prefix(n);
        return true;
    }
    [[nodiscard]] std::size_t room() const { return limit_ - buffer_.size(); }
    [[nodiscard]] std::string_view data() const { return buffer_; }
    void consume(std::size_t n) { buffer_.erase(0, n); }

private:
    std::string_view stream_;
    std::size_t chunk_;
    std::size_t limit_;
    std::string buffer_;
};

void configure(RequestParser& p, const HttpServerSettings& s) {
    p.eager(true);
    p.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(s.header_limit, UINT32_MAX)));
    p.body_limit(s.body_limit);
}

/// read_request(): Beast until the request is complete, reading more as needed.
End read_with_beast(RequestParser& p, Input& in) {
    for (;;) {
        if (!in.data().empty()) {
            error_code ec;
            const std::size_t n =
                p.put(boost::asio::const_buffer(in.data().data(), in.data().size()), ec);
            in.consume(n);
            if (!ec) {
                if (p.is_done()) {
                    return End::eof;  // complete
                }
                if (n > 0) {
                    continue;
                }
            } else if (ec != bhttp::error::need_more) {
                if (ec == bhttp::error::header_limit) {
                    return End::header_too_large;
                }
                if (ec == bhttp::error::body_limit) {
                    return End::body_too_large;
                }
                return End::bad;
            }
        }
        if (in.room() == 0) {
            return End::header_too_large;
        }
        if (!in.read()) {
            error_code eof_ec;
            p.put_eof(eof_ec);
            return !eof_ec && p.is_done() ? End::eof : End::closed;
        }
    }
}

/// Beast alone on a head the fast parser took: one complete request, same result.
void check_fast_against_beast(std::string_view head, const HttpServerSettings& s,
                              const RequestData& fast) {
    RequestData slow;
    RequestParser p(slow);
    configure(p, s);
    error_code ec;
    const std::size_t n = p.put(boost::asio::const_buffer(head.data(), head.size()), ec);
    check(!ec, "Beast rejects a head the fast parser took");
    check(n == head.size() && p.is_done(), "Beast does not read a fast head as one request");
    slow.keep_alive = p.keep_alive();
    check(snapshot(fast) == snapshot(slow), "fast parser and Beast disagree");
    check(slow.body.empty(), "a fast head has a body");
}

/// serve(): requests one after the other until the stream ends, a request fails or one is
/// not keep-alive (the server closes after answering it).
Outcome serve(std::string_view stream, std::size_t chunk, const HttpServerSettings& s) {
    Outcome out;
    Input in(stream, chunk, s.header_limit + kReadChunk);
    RequestData request;
    for (;;) {
        if (in.data().empty() && !in.read()) {
            out.end = End::eof;
            return out;
        }
        const std::size_t simple = parse_simple_head(in.data(), s.header_limit, request);
        End end = End::eof;
        if (simple != 0) {
            check_fast_against_beast(in.data().substr(0, simple), s, request);
            in.consume(simple);
        } else {
            RequestParser p(request);
            configure(p, s);
            end = read_with_beast(p, in);
            request.keep_alive = end == End::eof && p.keep_alive();
        }
        if (end != End::eof) {
            out.end = end;
            return out;
        }
        check(request.body.size() <= s.body_limit, "body over the limit");
        out.requests.push_back(snapshot(request));
        if (!request.keep_alive) {
            out.end = End::closed;
            return out;
        }
    }
}

void describe(const char* how, const Outcome& o) {
    std::fprintf(stderr, "%s: %zu request(s), end %d\n", how, o.requests.size(),
                 static_cast<int>(o.end));
    for (const Parsed& p : o.requests) {
        std::fprintf(stderr, "  %s %s HTTP/%u, %zu field(s), body %zu, keep-alive %d\n",
                     p.method.c_str(), p.target.c_str(), p.version, p.fields.size(), p.body.size(),
                     static_cast<int>(p.keep_alive));
    }
}

}  // namespace
}  // namespace nmid::http::detail

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace nmid::http::detail;
    const nmid::HttpServerSettings settings;  // nmid's defaults: there are no flags for these
    const std::string_view stream(reinterpret_cast<const char*>(data), size);
    const Outcome whole = serve(stream, kReadChunk, settings);
    const Outcome pieces = serve(stream, 1 + size % 7, settings);
    const bool same =
        whole.requests == pieces.requests && (whole.end == End::eof) == (pieces.end == End::eof);
    if (!same) {
        describe("one read of 4 KiB", whole);
        describe("small reads", pieces);
    }
    check(same, "the requests read depend on how the stream is cut into reads");
    return 0;
}
