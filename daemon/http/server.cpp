#include "nmid/http/server.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nmid/core/ascii.hpp"
#include "swar.hpp"

namespace nmid::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

/// Bytes asked from the kernel per read. Requests to IMDS are well under 1 KiB; the buffer
/// holds at most the unparsed part of one header plus one chunk.
constexpr std::size_t kReadChunk = std::size_t{4} * 1024;
/// Lingering close: how long and how much unread input is drained after an error response, so
/// the peer reads the response instead of a reset caused by closing with unread data.
constexpr Millis kMaxLinger{2'000};
constexpr std::size_t kMaxLingerBytes = std::size_t{1024} * 1024;
/// Refusals in progress beyond this are closed without the 503 (a flood must not pin fds).
constexpr std::size_t kMaxRefusing = 256;
constexpr Millis kAcceptBackoff{50};

constexpr std::string_view kRefusedResponse =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Length: 0\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n\r\n";
constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kJson = "application/json";

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

/// Beast's HTTP/1 request parser (limits, framing, chunked bodies) writing into RequestData
/// instead of a message object. One per request, as Beast requires.
class RequestParser final : public bhttp::basic_parser<true> {
public:
    explicit RequestParser(RequestData& data) : data_(data) { data_.clear(); }

private:
    void on_request_impl(bhttp::verb method, beast::string_view method_str,
                         beast::string_view target, int version, error_code& ec) override {
        data_.verb = method;
        data_.method = data_.add(method_str);
        data_.target = data_.add(target);
        data_.version = static_cast<unsigned>(version);
        ec = {};
    }
    void on_response_impl(int, beast::string_view, int, error_code& ec) override {
        ec = bhttp::error::bad_method;  // never called for requests
    }
    void on_field_impl(bhttp::field name, beast::string_view name_string, beast::string_view value,
                       error_code& ec) override {
        const RequestData::Span n = data_.add(name_string);
        data_.fields.push_back({n, data_.add(value)});
        if (name == bhttp::field::host) {
            data_.has_host = true;
        } else if (name == bhttp::field::expect && !data_.seen_expect) {
            data_.seen_expect = true;
            data_.expects_continue = iequals(value, "100-continue");
        }
        ec = {};
    }
    void on_header_impl(error_code& ec) override { ec = {}; }
    void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code& ec) override {
        // basic_parser has checked a declared length against body_limit.
        if (length) {
            data_.body.reserve(static_cast<std::size_t>(*length));
        }
        ec = {};
    }
    std::size_t on_body_impl(beast::string_view body, error_code& ec) override {
        data_.body.append(body.data(), body.size());
        ec = {};
        return body.size();
    }
    void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code& ec) override {
        ec = {};
    }
    std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                   error_code& ec) override {
        data_.body.append(body.data(), body.size());
        ec = {};
        return body.size();
    }
    void on_finish_impl(error_code& ec) override { ec = {}; }

    RequestData& data_;
};

/// tchar (RFC 9110 5.6.2): the bytes of a method or a field name, as Beast's is_token_char.
constexpr std::array<bool, 256> kTchar = [] {
    std::array<bool, 256> table{};
    for (int c = '0'; c <= '9'; ++c) {
        table[static_cast<std::size_t>(c)] = true;
    }
    for (int c = 'a'; c <= 'z'; ++c) {
        table[static_cast<std::size_t>(c)] = true;
        table[static_cast<std::size_t>(c) - (std::size_t{'a'} - std::size_t{'A'})] = true;
    }
    for (const char c : std::string_view{"!#$%&'*+-.^_`|~"}) {
        table[static_cast<unsigned char>(c)] = true;
    }
    return table;
}();

constexpr bool is_tchar(char c) noexcept {
    return kTchar[static_cast<unsigned char>(c)];
}

/// Visible ASCII: the bytes the fast path takes in a target.
constexpr bool is_vchar(char c) noexcept {
    return c > 0x20 && c < 0x7F;
}

/// Skips bytes in [`lowest`, 0x7E] eight at a time; stops at (or a little before) the first
/// other byte, which the caller's byte loop then looks at.
const char* skip_ascii_from(const char* p, const char* end, std::uint8_t lowest) noexcept {
    while (end - p >= 8) {
        const std::uint64_t w = swar::load8(p);
        // A byte below `lowest`, a DEL, or a byte >= 0x80.
        if (((swar::maybe_below(w, lowest) | swar::bytes_equal(w, '\x7F') | w) & swar::kHighs) !=
            0) {
            break;
        }
        p += 8;
    }
    return p;
}

/// Fields Beast's parser acts on (framing, connection management, upgrades) and Expect, which
/// this server acts on: a request carrying one is left to Beast.
bool is_managed_field(std::string_view name) noexcept {
    switch (name.size()) {
        case 6:
            return iequals(name, "expect");
        case 7:
            return iequals(name, "upgrade");
        case 10:
            return iequals(name, "connection");
        case 14:
            return iequals(name, "content-length");
        case 16:
            return iequals(name, "proxy-connection");
        case 17:
            return iequals(name, "transfer-encoding");
        default:
            return false;
    }
}

/// The common request in a fraction of Beast's cost: a complete head in `in` that uses only
/// the plainest HTTP/1.x syntax, parsed into `r`. Returns the bytes of the head (such a
/// request has no body), or 0 to leave the request to Beast. Taken: `token SP target SP
/// HTTP/1.0|1.1 CRLF`, target of visible ASCII; fields `token ":" OWS value OWS CRLF` with
/// values of visible ASCII, SP and HTAB; no obs-fold; no field is_managed_field() names; the
/// whole head shorter than `header_limit`. Beast accepts every such head and reports the same
/// method, target, version and fields, and the request has no body and is keep-alive exactly
/// when it is HTTP/1.1; anything else (including every malformed request) goes to Beast.
std::size_t parse_simple_head(std::string_view in, std::size_t header_limit, RequestData& r) {
    if (header_limit == 0) {
        return 0;
    }
    const char* const begin = in.data();
    const char* const end = begin + std::min(in.size(), header_limit - 1);
    const char* p = begin;
    const auto span_to = [](const char* first, const char* last) {
        return std::string_view{first, static_cast<std::size_t>(last - first)};
    };
    // The head is copied once at the end; spans are offsets into it.
    const auto span_of = [begin](std::string_view s) {
        return RequestData::Span{static_cast<std::uint32_t>(s.data() - begin),
                                 static_cast<std::uint32_t>(s.size())};
    };

    // A non-empty run of tchar ending at `delimiter`, which is consumed; empty if none.
    const auto token_until = [&p, end, &span_to](char delimiter) {
        const char* const first = p;
        while (p < end && is_tchar(*p)) {
            ++p;
        }
        if (p == first || p == end || *p != delimiter) {
            return std::string_view{};
        }
        return span_to(first, p++);
    };

    const std::string_view method_text = token_until(' ');
    if (method_text.empty()) {
        return 0;
    }
    const char* const target = p;
    p = skip_ascii_from(p, end, 0x21);
    while (p < end && is_vchar(*p)) {
        ++p;
    }
    if (p == target || p == end || *p != ' ') {
        return 0;
    }
    const std::string_view target_text = span_to(target, p++);
    constexpr std::string_view kVersion = "HTTP/1.";
    if (end - p < 10 || std::string_view{p, kVersion.size()} != kVersion ||
        (p[7] != '0' && p[7] != '1') || p[8] != '\r' || p[9] != '\n') {
        return 0;
    }
    r.clear();
    r.version = p[7] == '1' ? 11 : 10;
    r.verb =
        method_text == "GET"
            ? bhttp::verb::get
            : bhttp::string_to_verb(beast::string_view{method_text.data(), method_text.size()});
    r.method = span_of(method_text);
    r.target = span_of(target_text);
    p += 10;

    for (;;) {
        if (end - p < 2) {
            return 0;
        }
        if (p[0] == '\r') {
            if (p[1] != '\n') {
                return 0;
            }
            p += 2;
            break;
        }
        const std::string_view name_text = token_until(':');
        if (name_text.empty()) {
            return 0;
        }
        while (p < end && (*p == ' ' || *p == '\t')) {
            ++p;
        }
        const char* const value = p;
        p = skip_ascii_from(p, end, 0x20);
        while (p < end && ((*p >= 0x20 && *p < 0x7F) || *p == '\t')) {
            ++p;
        }
        // CRLF, and one more byte to tell the next field from an obs-fold.
        if (end - p < 3 || p[0] != '\r' || p[1] != '\n' || p[2] == ' ' || p[2] == '\t') {
            return 0;
        }
        const char* value_end = p;
        while (value_end != value && (value_end[-1] == ' ' || value_end[-1] == '\t')) {
            --value_end;
        }
        p += 2;
        if (is_managed_field(name_text)) {
            return 0;
        }
        r.fields.push_back({span_of(name_text), span_of(span_to(value, value_end))});
        if (name_text.size() == 4 && (name_text == "Host" || iequals(name_text, "host"))) {
            r.has_host = true;
        }
    }
    r.keep_alive = r.version == 11;
    r.text.assign(begin, p);
    return static_cast<std::size_t>(p - begin);
}

/// Field names compare case-insensitively; clients mostly send the canonical spelling.
bool same_name(std::string_view a, std::string_view b) noexcept {
    return a == b || iequals(a, b);
}

/// HeaderView over RequestData: no copies; valid until the next request starts.
class FieldsView final : public HeaderView {
public:
    void reset(const RequestData* data) noexcept { data_ = data; }

    [[nodiscard]] std::string_view get(std::string_view name) const override {
        for (const RequestData::Field& field : data_->fields) {
            if (field.name.size == name.size() && same_name(data_->view(field.name), name)) {
                return data_->view(field.value);
            }
        }
        return {};
    }
    [[nodiscard]] bool contains(std::string_view name) const override {
        return std::any_of(
            data_->fields.begin(), data_->fields.end(), [&](const RequestData::Field& field) {
                return field.name.size == name.size() && iequals(data_->view(field.name), name);
            });
    }
    void for_each(void (*fn)(void* ctx, std::string_view name, std::string_view value),
                  void* ctx) const override {
        for (const RequestData::Field& field : data_->fields) {
            fn(ctx, data_->view(field.name), data_->view(field.value));
        }
    }

private:
    const RequestData* data_ = nullptr;
};

/// What the connection is waiting for; the watchdog enforces deadlines only while waiting.
enum class Phase { busy, idle, reading, writing, lingering };

/// Per-connection state. Lives in the connection coroutine's frame and is touched only on
/// the connection's strand.
struct Conn {
    Conn(tcp::socket s, std::size_t buffer_limit)
        : socket(std::move(s)), timer(socket.get_executor()), buffer(buffer_limit) {}

    tcp::socket socket;
    asio::steady_timer timer;  ///< the watchdog's
    beast::flat_buffer buffer;
    std::optional<RequestParser> parser;
    RequestData request;
    FieldsView headers;
    std::string out;  ///< serialised response, reused across requests
    asio::ip::address peer;
    SteadyTime deadline = SteadyTime::max();  ///< of the current wait
    SteadyTime armed = SteadyTime::max();     ///< when the watchdog's timer fires
    Phase phase = Phase::busy;
    bool timed_out = false;
    bool closing = false;
    bool linger = false;  ///< drain unread input before closing (after an error response)
    /// A response was written. Until then the connection is owed one answer even when stop()
    /// comes first (its client connected to a live listener); after, an idle keep-alive
    /// connection may be closed, which HTTP/1.1 clients handle by retrying on a new one.
    bool answered = false;
};

/// Moves the deadline of the coming wait. The watchdog re-arms lazily when it fires, so only
/// a deadline earlier than the armed one costs a timer operation.
void set_deadline(Conn& c, SteadyTime deadline) {
    c.deadline = deadline;
    if (deadline < c.armed) {
        c.timer.cancel();
    }
}

asio::awaitable<void> watchdog(Conn& c) {
    for (;;) {
        c.armed = c.deadline;
        c.timer.expires_at(c.armed);
        co_await c.timer.async_wait(kUseTuple);
        if (c.closing) {
            co_return;
        }
        const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
        if (state.cancelled() != asio::cancellation_type::none) {
            co_return;
        }
        if (Clock::now() < c.deadline) {
            continue;  // the deadline moved (cancel() re-arms earlier, expiry re-arms later)
        }
        if (c.phase != Phase::busy) {
            c.timed_out = true;
            error_code ignored;
            c.socket.cancel(ignored);
        }
        c.deadline = SteadyTime::max();
    }
}

/// True when `s` holds CR, LF or NUL (eight bytes at a time).
bool has_ctl(std::string_view s) noexcept {
    return swar::any_word(
        s,
        [](std::uint64_t w) {
            return (swar::bytes_equal(w, '\r') | swar::bytes_equal(w, '\n') |
                    swar::bytes_equal(w, '\0')) != 0;
        },
        [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

/// Fields the server owns; a handler's copy would contradict the framing.
bool reserved_field(std::string_view name) noexcept {
    return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
           iequals(name, "connection");
}

std::string_view reason_phrase(int status) {
    const auto s = bhttp::int_to_status(static_cast<unsigned>(status));
    return s == bhttp::status::unknown ? std::string_view{"Unknown"}
                                       : std::string_view{bhttp::obsolete_reason(s)};
}

/// "HTTP/1.1 <status> <reason>\r\n" for a status in 100..999, built once per status.
std::string_view status_line(int status) {
    static const std::vector<std::string> lines = [] {
        std::vector<std::string> all;
        all.reserve(900);
        for (int s = 100; s <= 999; ++s) {
            all.push_back("HTTP/1.1 " + std::to_string(s) + " " + std::string{reason_phrase(s)} +
                          "\r\n");
        }
        return all;
    }();
    return lines[static_cast<std::size_t>(status - 100)];
}

bool usable_field(const std::pair<std::string, std::string>& field) noexcept {
    // CR/LF in a field would let echoed input split the response.
    const auto& [name, value] = field;
    return !name.empty() && !has_ctl(name) && !has_ctl(value) && !reserved_field(name);
}

/// Status line, Content-Type, Content-Length, extra fields, Connection: the head, sized first
/// and then filled (`out` keeps its size between responses, so the same answer again is
/// written over the previous one without clearing). Returns the body to send after it (none
/// for HEAD and for statuses without a body): written from the response itself, not copied.
std::string_view serialize(const HttpResponse& r, bool head, bool keep_alive, unsigned version,
                           std::string& out) {
    using namespace std::string_view_literals;
    const int status = (r.status >= 100 && r.status <= 999) ? r.status : 500;
    const bool body_allowed = status >= 200 && status != 204 && status != 304;
    const bool with_body = body_allowed && !head;
    const std::string_view line = status_line(status);
    const std::string_view type =
        r.content_type.empty() || has_ctl(r.content_type) ? ""sv : std::string_view{r.content_type};
    std::array<char, 24> length{};
    const std::size_t length_size =
        body_allowed
            ? static_cast<std::size_t>(
                  std::to_chars(length.data(), length.data() + length.size(), r.body.size()).ptr -
                  length.data())
            : 0;
    std::size_t fields_size = 0;
    for (const auto& field : r.headers) {
        if (usable_field(field)) {
            fields_size += field.first.size() + field.second.size() + 4;
        }
    }
    const std::string_view connection = !keep_alive     ? "Connection: close\r\n"sv
                                        : version == 10 ? "Connection: keep-alive\r\n"sv
                                                        : ""sv;
    constexpr std::string_view kType = "Content-Type: ";
    constexpr std::string_view kLength = "Content-Length: ";
    const std::size_t total = line.size() + (type.empty() ? 0 : kType.size() + type.size() + 2) +
                              (body_allowed ? kLength.size() + length_size + 2 : 0) + fields_size +
                              connection.size() + 2;
    out.resize(total);
    char* p = out.data();
    const auto put = [&p](std::string_view piece) {
        std::memcpy(p, piece.data(), piece.size());
        p += piece.size();
    };
    put(line);
    if (!type.empty()) {
        put(kType);
        put(type);
        put("\r\n");
    }
    if (body_allowed) {
        put(kLength);
        put({length.data(), length_size});
        put("\r\n");
    }
    for (const auto& field : r.headers) {
        if (usable_field(field)) {
            put(field.first);
            put(": ");
            put(field.second);
            put("\r\n");
        }
    }
    put(connection);
    put("\r\n");
    return with_body ? std::string_view{r.body} : std::string_view{};
}

HttpResponse error_response(int status, std::string_view error, std::string_view description) {
    HttpResponse r;
    r.status = status;
    r.content_type = kJson;
    r.body.reserve(64 + description.size());
    r.body.append(R"({"error":")")
        .append(error)
        .append(R"(","error_description":")")
        .append(description)
        .append(R"("})");
    r.close = true;
    return r;
}

enum class ReadResult {
    complete,
    closed,  ///< peer closed or reset mid-request: nothing to answer
    timed_out,
    header_too_large,
    body_too_large,
    bad,
};

/// Shared by the server object, the accept loop and every connection: a connection can
/// outlive a call into HttpServer, never the State.
struct State {
    State(asio::any_io_executor ex, RequestHandler& h, HttpServerSettings s)
        : executor(std::move(ex)),
          strand(asio::make_strand(executor)),
          handler(h),
          settings(std::move(s)),
          acceptor(strand),
          drain_cv(strand) {}

    struct Entry {
        Conn* conn;
        asio::any_io_executor executor;  ///< the connection's strand
    };

    asio::any_io_executor executor;
    asio::strand<asio::any_io_executor> strand;  ///< acceptor, drain, registry walks
    RequestHandler& handler;
    const HttpServerSettings settings;
    tcp::acceptor acceptor;
    asio::steady_timer drain_cv;  ///< condition variable: cancelled when `tasks` reaches 0
    std::uint16_t port = 0;
    std::uint64_t next_id = 0;  ///< accept loop only

    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> refused{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> bad_requests{0};
    std::atomic<std::size_t> active{0};
    std::atomic<std::size_t> refusing{0};
    std::atomic<std::size_t> tasks{0};  ///< connection and refusal coroutines alive

    // Guards `conns` only: written on connection strands, walked on `strand` by stop/drain.
    std::mutex conns_mutex;
    std::unordered_map<std::uint64_t, Entry> conns;

    /// Runs `fn(conn)` on connection `id`'s strand if it is still open. Safe because a Conn is
    /// destroyed only on its own strand, after it has left the registry.
    template <class Fn>
    void post_to_all(const std::shared_ptr<State>& self, Fn fn) {
        std::lock_guard lock{conns_mutex};
        for (const auto& [id, entry] : conns) {
            asio::post(entry.executor, [self, id = id, fn] {
                Conn* conn = nullptr;
                {
                    std::lock_guard inner{self->conns_mutex};
                    const auto it = self->conns.find(id);
                    if (it != self->conns.end()) {
                        conn = it->second.conn;
                    }
                }
                if (conn != nullptr) {
                    fn(*conn);
                }
            });
        }
    }

    void task_done(const std::shared_ptr<State>& self) {
        if (tasks.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            asio::post(strand, [self] { self->drain_cv.cancel(); });
        }
    }
};

using StatePtr = std::shared_ptr<State>;

/// How far write_now() got.
enum class WriteNow { done, pending, failed };

/// Writes what the socket takes of `head` then `body` without waiting (one sendmsg) and leaves
/// the rest in them.
WriteNow write_now(Conn& c, std::string_view& head, std::string_view& body) {
    error_code ec;
    const std::array<asio::const_buffer, 2> both{asio::buffer(head), asio::buffer(body)};
    const std::size_t n = c.socket.write_some(both, ec);
    if (!ec && n == head.size() + body.size()) {
        return WriteNow::done;
    }
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
        return WriteNow::failed;
    }
    const std::size_t written = ec ? 0 : n;
    if (written >= head.size()) {
        body.remove_prefix(written - head.size());
        head = {};
    } else {
        head.remove_prefix(written);
    }
    return WriteNow::pending;
}

/// The rest of a write that write_now() could not finish, under the write deadline.
asio::awaitable<bool> write_rest(const State& st, Conn& c, std::string_view head,
                                 std::string_view body) {
    c.phase = Phase::writing;
    set_deadline(c, Clock::now() + st.settings.write_timeout);
    const std::array<asio::const_buffer, 2> rest{asio::buffer(head), asio::buffer(body)};
    const auto [ec, sent] = co_await asio::async_write(c.socket, rest, kUseTuple);
    c.phase = Phase::busy;
    co_return !ec && !c.timed_out;
}

/// Writes `head` then `body`: straight into the socket when it has room (the usual case: no
/// suspension), else waits under the write deadline.
asio::awaitable<bool> write_all(const State& st, Conn& c, std::string_view head,
                                std::string_view body = {}) {
    const WriteNow now = write_now(c, head, body);
    if (now != WriteNow::pending) {
        co_return now == WriteNow::done;
    }
    co_return co_await write_rest(st, c, head, body);
}

ReadResult classify(const error_code& ec) {
    if (ec == bhttp::error::header_limit) {
        return ReadResult::header_too_large;
    }
    if (ec == bhttp::error::body_limit) {
        return ReadResult::body_too_large;
    }
    return ReadResult::bad;
}

bool expects_continue(const RequestData& r) {
    return r.version >= 11 && r.expects_continue;
}

/// Parses one request from the buffer, reading more as needed until `deadline`.
asio::awaitable<ReadResult> read_request(const State& st, Conn& c, SteadyTime deadline) {
    RequestParser& p = *c.parser;
    bool continue_sent = false;
    for (;;) {
        if (c.buffer.size() > 0) {
            error_code ec;
            const std::size_t n = p.put(c.buffer.data(), ec);
            c.buffer.consume(n);
            if (!ec) {
                if (p.is_done()) {
                    co_return ReadResult::complete;
                }
                if (n > 0) {
                    continue;
                }
            } else if (ec != bhttp::error::need_more) {
                co_return classify(ec);
            }
        }
        if (!continue_sent && p.is_header_done() && expects_continue(c.request)) {
            continue_sent = true;
            const bool written = co_await write_all(st, c, kContinueResponse);
            if (!written) {
                co_return ReadResult::closed;
            }
        }
        const std::size_t room = c.buffer.max_size() - c.buffer.size();
        if (room == 0) {
            co_return ReadResult::header_too_large;
        }
        c.phase = Phase::reading;
        set_deadline(c, deadline);
        const auto [ec, n] = co_await c.socket.async_read_some(
            c.buffer.prepare(std::min(room, kReadChunk)), kUseTuple);
        c.phase = Phase::busy;
        if (c.timed_out) {
            co_return ReadResult::timed_out;
        }
        if (ec) {
            if (ec == asio::error::eof) {
                error_code eof_ec;
                p.put_eof(eof_ec);
                if (!eof_ec && p.is_done()) {
                    co_return ReadResult::complete;
                }
            }
            co_return ReadResult::closed;
        }
        c.buffer.commit(n);
    }
}

/// Answers a request that could not be read, then closes with a lingering drain.
asio::awaitable<void> answer_unreadable(State& st, Conn& c, ReadResult r) {
    st.bad_requests.fetch_add(1, std::memory_order_relaxed);
    HttpResponse resp;
    switch (r) {
        case ReadResult::timed_out:
            resp = error_response(408, "invalid_request", "request not received in time");
            break;
        case ReadResult::header_too_large:
            resp = error_response(431, "invalid_request", "request header fields too large");
            break;
        case ReadResult::body_too_large:
            resp = error_response(413, "invalid_request", "request body too large");
            break;
        default:
            resp = error_response(400, "invalid_request", "malformed request");
            break;
    }
    c.timed_out = false;
    const std::string_view body = serialize(resp, false, false, 11, c.out);
    c.linger = true;
    co_await write_all(st, c, c.out, body);
}

/// The request/response loop. Returns when the connection should close.
asio::awaitable<void> serve(State& st, Conn& c) {
    // A fresh connection that stays silent is held no longer than a slow request would be:
    // clients send at once, and idle connects must not pin max_connections for idle_timeout.
    Millis wait_for_request = std::min(st.settings.idle_timeout, st.settings.read_timeout);
    for (;;) {
        if (c.buffer.size() == 0) {
            // Idle between requests: stop() closes here; a silent close on the idle deadline.
            // A fresh connection still gets its first request read and answered (Connection:
            // close) within the read deadline.
            if (c.answered && st.stopping.load(std::memory_order_acquire)) {
                co_return;
            }
            c.phase = Phase::idle;
            set_deadline(c, Clock::now() + wait_for_request);
            const auto [ec, n] =
                co_await c.socket.async_read_some(c.buffer.prepare(kReadChunk), kUseTuple);
            c.phase = Phase::busy;
            if (ec || c.timed_out) {
                co_return;
            }
            c.buffer.commit(n);
        }

        const SteadyTime started = Clock::now();
        ReadResult r = ReadResult::complete;
        const auto* const data = static_cast<const char*>(c.buffer.data().data());
        const std::size_t simple = parse_simple_head(std::string_view{data, c.buffer.size()},
                                                     st.settings.header_limit, c.request);
        if (simple != 0) {
            c.buffer.consume(simple);
        } else {
            c.parser.emplace(c.request);
            c.parser->eager(true);
            c.parser->header_limit(static_cast<std::uint32_t>(
                std::min<std::size_t>(st.settings.header_limit, UINT32_MAX)));
            c.parser->body_limit(st.settings.body_limit);
            r = co_await read_request(st, c, started + st.settings.read_timeout);
            c.request.keep_alive = r == ReadResult::complete && c.parser->keep_alive();
        }
        if (r == ReadResult::closed) {
            co_return;
        }
        if (r != ReadResult::complete) {
            co_await answer_unreadable(st, c, r);
            co_return;
        }

        const RequestData& msg = c.request;
        if ((msg.version != 10 && msg.version != 11) || (msg.version == 11 && !msg.has_host)) {
            // RFC 9112 3.2 (and Go's server): an HTTP/1.1 request without Host is a 400.
            co_await answer_unreadable(st, c, ReadResult::bad);
            co_return;
        }

        st.requests.fetch_add(1, std::memory_order_relaxed);
        c.headers.reset(&msg);
        HttpRequest req;
        req.method = msg.view(msg.method);
        req.target = msg.view(msg.target);
        req.version = msg.version;
        req.peer = c.peer;
        req.received_at = started;
        req.headers = &c.headers;
        req.body = msg.body;

        HttpResponse resp;
        bool failed = false;
        try {
            std::optional<HttpResponse> now = st.handler.handle_now(req);
            if (now) {
                resp = std::move(*now);
            } else {
                resp = co_await st.handler.handle(req);
            }
        } catch (const std::exception& e) {
            spdlog::error("http: handler threw for {} {}: {}", req.method, req.target, e.what());
            failed = true;
        } catch (...) {
            spdlog::error("http: handler threw a non-exception for {} {}", req.method, req.target);
            failed = true;
        }
        if (failed) {
            resp = error_response(500, "server_error", "internal error");
            resp.close = false;
        }
        if (resp.reset) {
            error_code ignored;
            c.socket.set_option(asio::socket_base::linger(true, 0), ignored);
            c.socket.close(ignored);
            co_return;
        }
        if (!c.socket.is_open()) {
            co_return;  // closed by drain() while the handler ran
        }

        const bool keep_alive =
            c.request.keep_alive && !resp.close && !st.stopping.load(std::memory_order_acquire);
        std::string_view body =
            serialize(resp, msg.verb == bhttp::verb::head, keep_alive, req.version, c.out);
        std::string_view head = c.out;
        // The usual write completes at once: no coroutine for it.
        const WriteNow now = write_now(c, head, body);
        bool written = now == WriteNow::done;
        if (now == WriteNow::pending) {
            written = co_await write_rest(st, c, head, body);
        }
        give_back_response_buffer(std::move(resp.body));
        c.answered = true;
        if (!written || !keep_alive) {
            co_return;
        }
        wait_for_request = st.settings.idle_timeout;
    }
}

/// Reads and discards what the peer still sends after our FIN, for a bounded time.
asio::awaitable<void> linger_close(const State& st, Conn& c) {
    error_code ec;
    c.socket.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
        co_return;
    }
    const SteadyTime until = Clock::now() + std::min(st.settings.read_timeout, kMaxLinger);
    std::size_t drained = 0;
    c.buffer.clear();
    while (drained < kMaxLingerBytes && !st.stopping.load(std::memory_order_acquire)) {
        c.phase = Phase::lingering;
        set_deadline(c, until);
        const auto [rec, n] =
            co_await c.socket.async_read_some(c.buffer.prepare(kReadChunk), kUseTuple);
        c.phase = Phase::busy;
        if (rec || c.timed_out) {
            break;
        }
        drained += n;
    }
}

asio::awaitable<void> session(State& st, Conn& c) {
    try {
        co_await serve(st, c);
        error_code ec;
        if (c.socket.is_open() && (c.linger || c.socket.available(ec) > 0)) {
            c.timed_out = false;
            co_await linger_close(st, c);
        }
    } catch (const std::exception& e) {
        // Bugs only (allocation failure, a broken invariant): the connection is dropped.
        spdlog::error("http: connection failed: {}", e.what());
    } catch (...) {
        spdlog::error("http: connection failed");
    }
    c.closing = true;
    c.timer.cancel();
    error_code ignored;
    c.socket.close(ignored);
}

/// Removes the connection from the registry when its frame unwinds, whatever the path.
class Registration {
public:
    Registration(State& st, std::uint64_t id, Conn& c) : st_(st), id_(id) {
        std::lock_guard lock{st_.conns_mutex};
        st_.conns.emplace(id_, State::Entry{&c, c.socket.get_executor()});
    }
    ~Registration() {
        std::lock_guard lock{st_.conns_mutex};
        st_.conns.erase(id_);
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

private:
    State& st_;
    std::uint64_t id_;
};

asio::awaitable<void> connection(StatePtr st, tcp::socket socket, std::uint64_t id) {
    using asio::experimental::awaitable_operators::operator||;
    Conn c{std::move(socket), st->settings.header_limit + kReadChunk};
    error_code ec;
    c.socket.non_blocking(true, ec);
    c.socket.set_option(tcp::no_delay(true), ec);
    const auto remote = c.socket.remote_endpoint(ec);
    if (ec) {
        co_return;  // reset before we looked at it
    }
    c.peer = remote.address();
    if (c.peer.is_v6() && c.peer.to_v6().is_v4_mapped()) {
        c.peer = asio::ip::make_address_v4(asio::ip::v4_mapped, c.peer.to_v6());
    }
    const Registration registration{*st, id, c};
    // `session` never throws and ends by cancelling the watchdog's timer.
    co_await (session(*st, c) || watchdog(c));
}

/// Over max_connections: a minimal 503 and a lingering close, never a silent drop.
asio::awaitable<void> refuse(StatePtr st, tcp::socket socket) {
    beast::tcp_stream stream{std::move(socket)};
    stream.expires_after(st->settings.write_timeout);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(kRefusedResponse), kUseTuple);
    if (!ec) {
        stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        stream.expires_after(std::min(st->settings.read_timeout, kMaxLinger));
        std::array<char, 1024> sink{};
        std::size_t drained = 0;
        while (!ec && drained < kMaxLingerBytes) {
            std::tie(ec, n) = co_await stream.async_read_some(asio::buffer(sink), kUseTuple);
            drained += n;
        }
    }
    stream.socket().close(ec);
}

/// The executor of a new connection: a strand of its own unless one I/O thread runs everything.
/// The strand is over the io_context's own executor when that is what we were given, which saves
/// a layer of type erasure on every completion.
asio::any_io_executor connection_executor(const State& st) {
    const asio::any_io_executor& executor = st.executor;
    if (!st.settings.strand_per_connection) {
        return executor;
    }
    if (const auto* io = executor.target<asio::io_context::executor_type>()) {
        return asio::make_strand(*io);
    }
    return asio::make_strand(executor);
}

asio::awaitable<void> accept_loop(StatePtr st) {
    while (!st->stopping.load(std::memory_order_acquire)) {
        auto [ec, socket] = co_await st->acceptor.async_accept(connection_executor(*st), kUseTuple);
        // A connection accepted before stop() closed the listener is served even when stop()
        // came first: its client connected to a live listener and may have sent its request
        // already (closing it here would reset it). The loop ends after it.
        if (ec) {
            if (ec == asio::error::operation_aborted ||
                st->stopping.load(std::memory_order_acquire) || !st->acceptor.is_open()) {
                break;
            }
            // EMFILE and friends: back off instead of spinning on a full descriptor table.
            spdlog::warn("http: accept failed: {}", ec.message());
            asio::steady_timer backoff{st->strand, kAcceptBackoff};
            co_await backoff.async_wait(kUseTuple);
            continue;
        }
        st->accepted.fetch_add(1, std::memory_order_relaxed);
        auto executor = socket.get_executor();
        if (st->active.load(std::memory_order_relaxed) >= st->settings.max_connections) {
            st->refused.fetch_add(1, std::memory_order_relaxed);
            if (st->refusing.load(std::memory_order_relaxed) >= kMaxRefusing) {
                socket.close(ec);
                continue;
            }
            st->refusing.fetch_add(1, std::memory_order_relaxed);
            st->tasks.fetch_add(1, std::memory_order_acq_rel);
            asio::co_spawn(executor, refuse(st, std::move(socket)),
                           [st](const std::exception_ptr& /*unused*/) {
                               st->refusing.fetch_sub(1, std::memory_order_relaxed);
                               st->task_done(st);
                           });
            continue;
        }
        st->active.fetch_add(1, std::memory_order_relaxed);
        st->tasks.fetch_add(1, std::memory_order_acq_rel);
        asio::co_spawn(executor, connection(st, std::move(socket), ++st->next_id),
                       [st](const std::exception_ptr& e) {
                           if (e) {
                               try {
                                   std::rethrow_exception(e);
                               } catch (const std::exception& ex) {
                                   spdlog::error("http: connection failed: {}", ex.what());
                               } catch (...) {
                                   spdlog::error("http: connection failed");
                               }
                           }
                           st->active.fetch_sub(1, std::memory_order_relaxed);
                           st->task_done(st);
                       });
    }
}

asio::awaitable<void> drain_loop(StatePtr st, SteadyTime deadline) {
    while (st->tasks.load(std::memory_order_acquire) > 0 && Clock::now() < deadline) {
        st->drain_cv.expires_at(deadline);
        co_await st->drain_cv.async_wait(kUseTuple);
    }
    if (st->tasks.load(std::memory_order_acquire) > 0) {
        st->post_to_all(st, [](Conn& c) {
            error_code ignored;
            c.socket.close(ignored);
        });
    }
}

void raise_fd_limit(std::size_t wanted) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted ||
        limit.rlim_cur >= limit.rlim_max) {
        return;
    }
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        spdlog::warn("http: could not raise RLIMIT_NOFILE to {}", limit.rlim_max);
    }
}

}  // namespace

struct HttpServer::Impl {
    StatePtr state;
};

HttpServer::HttpServer(boost::asio::any_io_executor executor, RequestHandler& handler,
                       HttpServerSettings settings)
    : impl_(std::make_unique<Impl>(
          Impl{std::make_shared<State>(std::move(executor), handler, std::move(settings))})) {}

HttpServer::~HttpServer() {
    stop();
}

Result<void> HttpServer::listen() {
    State& st = *impl_->state;
    error_code ec;
    const auto address = asio::ip::make_address(st.settings.address, ec);
    if (ec) {
        spdlog::error("http: invalid listen address '{}'", st.settings.address);
        return Errc::invalid_config;
    }
    raise_fd_limit(st.settings.max_connections + 64);
    const tcp::endpoint endpoint{address, st.settings.port};
    const auto fail = [&](std::string_view what) -> Result<void> {
        spdlog::error("http: {} {}:{} failed: {}", what, st.settings.address, st.settings.port,
                      ec.message());
        error_code ignored;
        st.acceptor.close(ignored);
        return Errc::io_error;
    };
    if (st.acceptor.open(endpoint.protocol(), ec); ec) {
        return fail("open");
    }
    if (st.acceptor.set_option(tcp::acceptor::reuse_address(true), ec); ec) {
        return fail("SO_REUSEADDR on");
    }
    if (st.settings.reuse_port) {
        using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
        if (st.acceptor.set_option(ReusePort(true), ec); ec) {
            return fail("SO_REUSEPORT on");
        }
    }
    if (st.acceptor.bind(endpoint, ec); ec) {
        return fail("bind");
    }
    if (st.acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
        return fail("listen on");
    }
    st.port = st.acceptor.local_endpoint(ec).port();
    return {};
}

std::uint16_t HttpServer::port() const {
    return impl_->state->port;
}

boost::asio::awaitable<void> HttpServer::run() {
    StatePtr st = impl_->state;
    co_await asio::co_spawn(st->strand, accept_loop(st), asio::use_awaitable);
}

void HttpServer::stop() {
    StatePtr st = impl_->state;
    st->stopping.store(true, std::memory_order_release);
    asio::post(st->strand, [st] {
        error_code ignored;
        st->acceptor.close(ignored);
        st->post_to_all(st, [](Conn& c) {
            // Idle keep-alive and lingering connections close now; one mid-request finishes
            // it, and a fresh one waits (read deadline, drain deadline) for its first request.
            if ((c.phase == Phase::idle && c.answered) || c.phase == Phase::lingering) {
                error_code ec;
                c.socket.cancel(ec);
            }
        });
    });
}

boost::asio::awaitable<void> HttpServer::drain(SteadyTime deadline) {
    StatePtr st = impl_->state;
    co_await asio::co_spawn(st->strand, drain_loop(st, deadline), asio::use_awaitable);
}

ServerStats HttpServer::stats() const {
    const State& st = *impl_->state;
    ServerStats s;
    s.accepted = st.accepted.load(std::memory_order_relaxed);
    s.refused = st.refused.load(std::memory_order_relaxed);
    s.requests = st.requests.load(std::memory_order_relaxed);
    s.bad_requests = st.bad_requests.load(std::memory_order_relaxed);
    s.active = st.active.load(std::memory_order_relaxed);
    return s;
}

}  // namespace nmid::http
