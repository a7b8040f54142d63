#include "nmid/handlers/imds_json.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace nmid::handlers {
namespace {

void append_int(std::string& out, std::int64_t v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
}

void append_field(std::string& out, std::string_view key, std::string_view value, bool first) {
    if (!first) {
        out.push_back(',');
    }
    out.push_back('"');
    out.append(key);
    out.append("\":\"");
    append_json_escaped(out, value);
    out.push_back('"');
}

void append_int_field(std::string& out, std::string_view key, std::int64_t value) {
    out.append(",\"");
    out.append(key);
    out.append("\":\"");
    append_int(out, value);
    out.push_back('"');
}

}  // namespace

namespace {

// True when any of the 8 bytes in `v` is a control character, '"' or '\\' (SWAR: the classic
// "has a byte less than n" and "has a zero byte" bit tricks, exact for n <= 128).
bool needs_escape(std::uint64_t v) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
    const auto has_zero = [&](std::uint64_t x) { return (x - kOnes) & ~x & kHighs; };
    const std::uint64_t below_space = (v - kOnes * 0x20) & ~v & kHighs;
    return (below_space | has_zero(v ^ (kOnes * '"')) | has_zero(v ^ (kOnes * '\\'))) != 0;
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    // Tokens are long and never need escaping: skip clean runs eight bytes at a time.
    std::size_t clean_from = 0;
    std::size_t i = 0;
    while (i < s.size()) {
        if (i + 8 <= s.size()) {
            std::uint64_t word;
            std::memcpy(&word, s.data() + i, sizeof word);
            if (!needs_escape(word)) {
                i += 8;
                continue;
            }
        }
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') {
            ++i;
            continue;
        }
        out.append(s.substr(clean_from, i - clean_from));
        clean_from = ++i;
        switch (c) {
            case '"':
                out.append("\\\"");
                break;
            case '\\':
                out.append("\\\\");
                break;
            case '\n':
                out.append("\\n");
                break;
            case '\r':
                out.append("\\r");
                break;
            case '\t':
                out.append("\\t");
                break;
            default:
                out.append("\\u00");
                out.push_back(kHex[c >> 4]);
                out.push_back(kHex[c & 0xF]);
        }
    }
    out.append(s.substr(clean_from));
}

void append_token_json(std::string& out, const Token& token, std::string_view resource,
                       std::int64_t now_unix) {
    out.reserve(out.size() + token.access_token.size() + resource.size() + 200);
    out.push_back('{');
    append_field(out, "access_token", token.access_token, true);
    append_field(out, "refresh_token", token.refresh_token, false);
    append_int_field(out, "expires_in", std::max<std::int64_t>(0, token.expires_on - now_unix));
    append_int_field(out, "expires_on", token.expires_on);
    append_int_field(out, "not_before", token.not_before);
    append_field(out, "resource", resource, false);
    append_field(out, "token_type", token.token_type, false);
    out.push_back('}');
}

std::string token_json(const Token& token, std::string_view resource, std::int64_t now_unix) {
    std::string out;
    append_token_json(out, token, resource, now_unix);
    return out;
}

std::string error_json(std::string_view error, std::string_view description) {
    std::string out;
    out.reserve(error.size() + description.size() + 40);
    out.push_back('{');
    append_field(out, "error", error, true);
    append_field(out, "error_description", description, false);
    out.push_back('}');
    return out;
}

}  // namespace nmid::handlers
