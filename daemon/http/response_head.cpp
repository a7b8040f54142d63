#include "response_head.hpp"

#include <array>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <cstring>
#include <utility>
#include <vector>

#include "nmid/core/ascii.hpp"
#include "swar.hpp"

namespace nmid::http::detail {
namespace {

namespace bhttp = boost::beast::http;

constexpr std::string_view kJson = "application/json";

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

}  // namespace

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

}  // namespace nmid::http::detail
