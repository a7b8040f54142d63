#pragma once

// ASCII helpers for protocol text (HTTP field names and tokens, Kubernetes names, ARM IDs).
// Locale-independent on purpose: std::tolower would consult the global locale.

#include <cstddef>
#include <string_view>

namespace nmid {

[[nodiscard]] constexpr char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

[[nodiscard]] constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

[[nodiscard]] constexpr bool is_alpha(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

[[nodiscard]] constexpr bool is_alnum(char c) noexcept {
    return is_digit(c) || is_alpha(c);
}

/// ASCII case-insensitive equality (bytes >= 0x80 compare exactly).
[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

}  // namespace nmid
