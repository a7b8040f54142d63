#pragma once

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

/// RFC 3986 percent-encoding of a query component or path segment: unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) are kept, every other byte becomes `%XX` (upper-case hex).
/// Pure, never throws (beyond std::bad_alloc).
[[nodiscard]] std::string percent_encode(std::string_view s);

/// Lenient percent-decoding as form and query parsers do it: `%XX` becomes its byte, an
/// escape that is not two hex digits is kept as written, and `+` becomes a space when
/// `plus_is_space` (query and form values; not paths). Pure, never throws.
[[nodiscard]] std::string percent_decode(std::string_view s, bool plus_is_space);

}  // namespace nmid
