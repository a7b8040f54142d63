#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace nmid {

/// Value of one hexadecimal digit (either case), -1 for any other character.
/// constexpr and inline: the request router decodes paths with it on the hot path.
[[nodiscard]] constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/// The byte of the escape `%XX` starting at in[i] (in[i] is '%'), or -1 when fewer than two
/// characters follow or either is not a hex digit. Strict decoders (request paths, queries)
/// treat -1 as an invalid escape.
[[nodiscard]] constexpr int escaped_byte(std::string_view in, std::size_t i) noexcept {
    if (i + 2 >= in.size()) {
        return -1;
    }
    const int hi = hex_value(in[i + 1]);
    const int lo = hex_value(in[i + 2]);
    return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}

/// RFC 3986 percent-encoding of a query component or path segment: unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) are kept, every other byte becomes `%XX` (upper-case hex).
/// Pure, never throws (beyond std::bad_alloc).
[[nodiscard]] std::string percent_encode(std::string_view s);

/// Lenient percent-decoding as form and query parsers do it: `%XX` becomes its byte, an
/// escape that is not two hex digits is kept as written, and `+` becomes a space when
/// `plus_is_space` (query and form values; not paths). Pure, never throws.
[[nodiscard]] std::string percent_decode(std::string_view s, bool plus_is_space);

}  // namespace nmid
