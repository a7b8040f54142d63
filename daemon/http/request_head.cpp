#include "request_head.hpp"

#include <algorithm>
#include <array>
#include <boost/beast/http/error.hpp>
#include <cstdint>

#include "nmid/core/ascii.hpp"
#include "swar.hpp"

namespace nmid::http::detail {

using boost::system::error_code;

void TransferCodings::add(std::string_view value) noexcept {
    ++fields_;
    while (!value.empty()) {
        const std::size_t comma = value.find(',');
        std::string_view element = value.substr(0, comma);
        value.remove_prefix(comma == std::string_view::npos ? value.size() : comma + 1);
        while (!element.empty() && (element.front() == ' ' || element.front() == '\t')) {
            element.remove_prefix(1);
        }
        while (!element.empty() && (element.back() == ' ' || element.back() == '\t')) {
            element.remove_suffix(1);
        }
        if (element.empty()) {
            continue;
        }
        if (iequals(element, "chunked")) {
            ++chunked_;
        } else {
            ++other_;
        }
    }
}

void RequestParser::on_request_impl(bhttp::verb method, beast::string_view method_str,
                                    beast::string_view target, int version, error_code& ec) {
    data_.verb = method;
    data_.method = data_.add(method_str);
    data_.target = data_.add(target);
    data_.version = static_cast<unsigned>(version);
    ec = {};
}

void RequestParser::on_response_impl(int, beast::string_view, int, error_code& ec) {
    ec = bhttp::error::bad_method;  // never called for requests
}

void RequestParser::on_field_impl(bhttp::field name, beast::string_view name_string,
                                  beast::string_view value, error_code& ec) {
    ec = {};
    if (header_done_) {
        return;  // a trailer: dropped, never a request field
    }
    if (name == bhttp::field::transfer_encoding) {
        codings_.add({value.data(), value.size()});
    } else if (name == bhttp::field::content_length) {
        content_length_ = true;
    }
    const RequestData::Span n = data_.add(name_string);
    data_.fields.push_back({n, data_.add(value)});
    if (name == bhttp::field::host) {
        data_.has_host = true;
    } else if (name == bhttp::field::expect && !data_.seen_expect) {
        data_.seen_expect = true;
        data_.expects_continue = iequals(value, "100-continue");
    }
}

void RequestParser::on_header_impl(error_code& ec) {
    ec = {};
    header_done_ = true;
    if (codings_.present() && (!codings_.only_chunked() || content_length_)) {
        ec = bhttp::error::bad_transfer_encoding;
    }
}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& length,
                                      error_code& ec) {
    // basic_parser has checked a declared length against body_limit.
    if (length) {
        data_.body.reserve(static_cast<std::size_t>(*length));
    }
    ec = {};
}

std::size_t RequestParser::on_body_impl(beast::string_view body, error_code& ec) {
    data_.body.append(body.data(), body.size());
    ec = {};
    return body.size();
}

void RequestParser::on_chunk_header_impl(std::uint64_t, beast::string_view, error_code& ec) {
    ec = {};
}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                              error_code& ec) {
    data_.body.append(body.data(), body.size());
    ec = {};
    return body.size();
}

void RequestParser::on_finish_impl(error_code& ec) {
    ec = {};
}

namespace {

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

/// Field names compare case-insensitively; clients mostly send the canonical spelling.
bool same_name(std::string_view a, std::string_view b) noexcept {
    return a == b || iequals(a, b);
}

}  // namespace

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

std::string_view FieldsView::get(std::string_view name) const {
    for (const RequestData::Field& field : data_->fields) {
        if (field.name.size == name.size() && same_name(data_->view(field.name), name)) {
            return data_->view(field.value);
        }
    }
    return {};
}

bool FieldsView::contains(std::string_view name) const {
    return std::any_of(
        data_->fields.begin(), data_->fields.end(), [&](const RequestData::Field& field) {
            return field.name.size == name.size() && iequals(data_->view(field.name), name);
        });
}

void FieldsView::for_each(void (*fn)(void* ctx, std::string_view name, std::string_view value),
                          void* ctx) const {
    for (const RequestData::Field& field : data_->fields) {
        fn(ctx, data_->view(field.name), data_->view(field.value));
    }
}

}  // namespace nmid::http::detail
