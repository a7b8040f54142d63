#pragma once

// Word-at-a-time byte tests ("SIMD within a register"), eight bytes per step, for the scans
// every request goes through (request head, target, query). Private to the http module.

#include <cstdint>
#include <cstring>
#include <string_view>

namespace nmid::http::swar {

inline constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
inline constexpr std::uint64_t kLows = 0x7F7F7F7F7F7F7F7FULL;
inline constexpr std::uint64_t kHighs = 0x8080808080808080ULL;

[[nodiscard]] inline std::uint64_t load8(const char* p) noexcept {
    std::uint64_t w = 0;
    std::memcpy(&w, p, sizeof w);
    return w;
}

/// 0x80 in exactly the bytes of `w` that equal `c`, 0 elsewhere.
[[nodiscard]] constexpr std::uint64_t bytes_equal(std::uint64_t w, char c) noexcept {
    const std::uint64_t x = w ^ (kOnes * static_cast<unsigned char>(c));
    return ~(((x & kLows) + kLows) | x | kLows);
}

/// 0x80 in (at least) the bytes of `w` below `n` (n <= 0x80); it may also flag a byte just
/// above one that is (the classic "has less than" test), so a caller that needs exactness
/// looks at the bytes of a flagged word one by one.
[[nodiscard]] constexpr std::uint64_t maybe_below(std::uint64_t w, std::uint8_t n) noexcept {
    return (w - kOnes * n) & ~w & kHighs;
}

/// Whether `word(w)` holds for some eight-byte word of `s` (the last word overlaps the one
/// before it); a string shorter than eight bytes is tested with `byte(c)` per byte.
template <class WordTest, class ByteTest>
[[nodiscard]] bool any_word(std::string_view s, WordTest word, ByteTest byte) {
    if (s.size() < 8) {
        for (const char c : s) {
            if (byte(c)) {
                return true;
            }
        }
        return false;
    }
    for (std::size_t i = 0; i + 8 <= s.size(); i += 8) {
        if (word(load8(s.data() + i))) {
            return true;
        }
    }
    return word(load8(s.data() + s.size() - 8));
}

}  // namespace nmid::http::swar
