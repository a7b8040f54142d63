#include "nmid/core/json.hpp"

#include <cstdint>
#include <cstring>

namespace nmid {
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

std::string error_json(std::string_view error, std::string_view description) {
    std::string out;
    out.reserve(error.size() + description.size() + 40);
    out.append("{\"error\":\"");
    append_json_escaped(out, error);
    out.append("\",\"error_description\":\"");
    append_json_escaped(out, description);
    out.append("\"}");
    return out;
}

}  // namespace nmid
