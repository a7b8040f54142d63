#pragma once

// What the fuzz targets share: an invariant check that stops the fuzzer with a message (a
// failed check is a crash to libFuzzer, which then keeps the input), and the input as text.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string_view>

namespace nmid::fuzz {

inline void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "invariant violated: %s\n", what);
        std::abort();
    }
}

/// An exception escaped code that promises never to throw.
[[noreturn]] inline void escaped(const char* what) {
    std::fprintf(stderr, "invariant violated: an exception escaped a no-throw parser: %s\n", what);
    std::abort();
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

/// libFuzzer's entry body for code that promises never to throw: runs `one` on the input as
/// text and aborts when any exception escapes it.
template <class F>
int run_no_throw(const std::uint8_t* data, std::size_t size, F&& one) {
    try {
        one(as_text(data, size));
    } catch (const std::exception& e) {
        escaped(e.what());
    } catch (...) {
        escaped("not a std::exception");
    }
    return 0;
}

/// True when `part` lies inside `whole` (a view the callee promised to take from it).
inline bool within(std::string_view part, std::string_view whole) {
    if (part.empty()) {
        return true;
    }
    const auto* const p = part.data();
    const auto* const w = whole.data();
    return std::less_equal<>{}(w, p) && std::less_equal<>{}(p + part.size(), w + whole.size());
}

}  // namespace nmid::fuzz
