#include "nmid/http/router.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "nmid/core/ascii.hpp"
#include "nmid/core/hex.hpp"
#include "swar.hpp"

namespace nmid::http {
namespace {

constexpr std::size_t kInlinePath = 512;

constexpr std::string_view kMetadata = "metadata";
constexpr std::string_view kTokenTail = "/identity/oauth2/token";
constexpr std::string_view kIdentity = "/identity";
constexpr std::string_view kOauth2 = "oauth2";
constexpr std::string_view kToken = "token";
constexpr std::string_view kInstanceTail = "/instance";
constexpr std::string_view kHostToken = "/host/token";

/// Scratch space for a decoded or cleaned path: on the stack for usual sizes.
class Scratch {
public:
    explicit Scratch(std::size_t capacity) {
        if (capacity > inline_.size()) {
            heap_.resize(capacity);
            data_ = heap_.data();
        } else {
            data_ = inline_.data();
        }
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    [[nodiscard]] char* data() noexcept { return data_; }

private:
    std::array<char, kInlinePath + 2> inline_;  // not initialised: written before read
    std::string heap_;
    char* data_ = nullptr;
};

/// Go's `unescape(s, encodePath)` ('+' stays '+'). Returns false on an invalid escape.
bool percent_decode_path(std::string_view in, char* out, std::size_t& written) noexcept {
    std::size_t w = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out[w++] = in[i];
            continue;
        }
        if (i + 2 >= in.size()) {
            return false;
        }
        const int hi = hex_value(in[i + 1]);
        const int lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[w++] = static_cast<char>((hi << 4) | lo);
        i += 2;
    }
    written = w;
    return true;
}

/// gorilla/mux `cleanPath`: rooted `path.Clean`, keeping a trailing slash. `out` needs
/// in.size() + 2 bytes.
std::size_t clean_path(std::string_view in, char* out) noexcept {
    std::size_t w = 0;
    out[w++] = '/';
    const std::size_t dotdot = 1;  // rooted: ".." never climbs above "/"
    std::size_t r = (!in.empty() && in[0] == '/') ? 1 : 0;
    const std::size_t n = in.size();
    while (r < n) {
        if (in[r] == '/' || (in[r] == '.' && (r + 1 == n || in[r + 1] == '/'))) {
            ++r;  // an empty or "." element
        } else if (in[r] == '.' && r + 1 < n && in[r + 1] == '.' &&
                   (r + 2 == n || in[r + 2] == '/')) {
            r += 2;
            if (w > dotdot) {
                --w;
                while (w > dotdot && out[w] != '/') {
                    --w;
                }
            }
        } else {
            if (w != 1) {
                out[w++] = '/';
            }
            for (; r < n && in[r] != '/'; ++r) {
                out[w++] = in[r];
            }
        }
    }
    if (n > 0 && in[n - 1] == '/' && w != 1) {
        out[w++] = '/';
    }
    return w;
}

bool starts_with_metadata_ci(std::string_view s, std::size_t pos) noexcept {
    if (s.size() < pos + kMetadata.size()) {
        return false;
    }
    for (std::size_t i = 0; i < kMetadata.size(); ++i) {
        if (ascii_lower(s[pos + i]) != kMetadata[i]) {
            return false;
        }
    }
    return true;
}

/// `/{type:(?i:metadata)}<tail>` as a prefix of `path`.
bool has_metadata_prefix(std::string_view path, std::string_view tail) noexcept {
    return path.size() >= 1 + kMetadata.size() + tail.size() && path[0] == '/' &&
           starts_with_metadata_ci(path, 1) && path.substr(1 + kMetadata.size()).starts_with(tail);
}

/// Unanchored `/(?i:metadata)/identity(.*?)oauth2(.*?)token`. The earliest occurrence of each
/// piece leaves the most room for the next, so a greedy scan decides the match. Unlike Go's
/// `.`, a newline is matched too: an odd path is answered 400 rather than proxied.
bool matches_odd_token_path(std::string_view path) noexcept {
    const std::size_t lead = 1 + kMetadata.size() + kIdentity.size();
    for (std::size_t i = path.find('/'); i != std::string_view::npos && i + lead <= path.size();
         i = path.find('/', i + 1)) {
        if (!starts_with_metadata_ci(path, i + 1) ||
            path.substr(i + 1 + kMetadata.size(), kIdentity.size()) != kIdentity) {
            continue;
        }
        const std::size_t o = path.find(kOauth2, i + lead);
        if (o == std::string_view::npos) {
            return false;
        }
        return path.find(kToken, o + kOauth2.size()) != std::string_view::npos;
    }
    return false;
}

/// Splits an absolute-form target into its path ("" when absent) and the rest.
std::string_view path_and_query_of(std::string_view target) noexcept {
    if (target.empty() || target[0] == '/') {
        return target;
    }
    const std::size_t scheme_end = target.find("://");
    const std::size_t first_delim = target.find_first_of("/?");
    if (scheme_end == std::string_view::npos || first_delim < scheme_end) {
        return target;  // "*", or something Go would route as an opaque path
    }
    const std::size_t authority = scheme_end + 3;
    const std::size_t rest = target.find_first_of("/?", authority);
    return rest == std::string_view::npos ? std::string_view{} : target.substr(rest);
}

/// A rooted path with no escapes, no empty segment and no dot segment: its own decoded and
/// cleaned form.
bool is_canonical(std::string_view path) noexcept {
    if (path.empty() || path[0] != '/') {
        return false;
    }
    // Whole words without '%' or '.' need only the "//" test; the rest byte by byte.
    std::size_t i = 0;
    for (; i + 8 <= path.size(); i += 8) {
        const std::uint64_t w = swar::load8(path.data() + i);
        if ((swar::bytes_equal(w, '%') | swar::bytes_equal(w, '.')) != 0) {
            break;
        }
        const std::uint64_t slashes = swar::bytes_equal(w, '/');
        // Adjacent bytes both '/', within the word (either byte order) or across words.
        if ((slashes & (slashes >> 8U)) != 0 || (i > 0 && path[i - 1] == '/' && path[i] == '/')) {
            return false;
        }
    }
    for (std::size_t j = i == 0 ? 0 : i - 1; j < path.size(); ++j) {
        const char c = path[j];
        if (c == '%') {
            return false;
        }
        if (c == '/' && j + 1 < path.size() && (path[j + 1] == '/' || path[j + 1] == '.')) {
            return false;  // "//" or a segment starting with '.': let clean_path decide
        }
    }
    return true;
}

/// The table, on the decoded path and its cleaned form.
Route classify(std::string_view decoded, std::string_view cleaned) noexcept {
    if (has_metadata_prefix(cleaned, kTokenTail)) {
        return Route::token;
    }
    // The decoded-path tests catch token paths hidden behind dot-segments, which an upstream
    // that does not clean paths would still serve as token requests.
    const bool same = decoded.data() == cleaned.data();
    if (matches_odd_token_path(cleaned) ||
        (!same && (has_metadata_prefix(decoded, kTokenTail) || matches_odd_token_path(decoded)))) {
        return Route::invalid_token_path;
    }
    if (cleaned.starts_with(kHostToken)) {
        return Route::host_token;
    }
    if (has_metadata_prefix(cleaned, kInstanceTail)) {
        return Route::instance;
    }
    return Route::proxy;
}

}  // namespace

std::string_view to_string(Route route) noexcept {
    switch (route) {
        case Route::token:
            return "token";
        case Route::invalid_token_path:
            return "invalid_token_path";
        case Route::host_token:
            return "host_token";
        case Route::instance:
            return "instance";
        case Route::proxy:
            return "proxy";
    }
    return "proxy";
}

RoutedTarget route(std::string_view target) {
    RoutedTarget out;
    const std::string_view rest = path_and_query_of(target);
    const std::size_t q = rest.find('?');
    out.path = rest.substr(0, q);
    if (q != std::string_view::npos) {
        out.query = rest.substr(q + 1);
    }
    if (is_canonical(out.path)) {
        // The usual case: decoding and cleaning would change nothing.
        out.route = classify(out.path, out.path);
        return out;
    }
    Scratch decoded_space{out.path.size()};
    std::size_t decoded_size = 0;
    if (!percent_decode_path(out.path, decoded_space.data(), decoded_size)) {
        // Go's server answers 400 before routing; never proxy what we cannot read.
        out.route = Route::invalid_token_path;
        return out;
    }
    const std::string_view decoded{decoded_space.data(), decoded_size};
    Scratch cleaned_space{decoded.size() + 2};
    const std::string_view cleaned{cleaned_space.data(), clean_path(decoded, cleaned_space.data())};
    out.route = classify(decoded, cleaned);
    return out;
}

namespace {

/// True when `s` has no escape and no '+' (decoding would change nothing). Eight bytes at a
/// time (string_view::find_first_of calls memchr once per byte).
bool is_plain(std::string_view s) noexcept {
    return !swar::any_word(
        s,
        [](std::uint64_t w) {
            return (swar::bytes_equal(w, '%') | swar::bytes_equal(w, '+')) != 0;
        },
        [](char c) { return c == '%' || c == '+'; });
}

/// Go's `QueryUnescape` into `out`; false on an invalid escape.
bool query_unescape(std::string_view in, std::string& out) {
    if (is_plain(in)) {
        out.assign(in);  // the usual case: nothing to decode
        return true;
    }
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) {
                return false;
            }
            const int hi = hex_value(in[i + 1]);
            const int lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) {
                return false;
            }
            out.push_back(static_cast<char>((hi << 4) | lo));
            i += 2;
        } else if (c == '+') {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return true;
}

/// One pass over `query`: for each pair whose decoded key is the first not yet found of
/// `names`, `accept(i, raw_value)` says whether the value was usable (false: invalid escape,
/// the name stays open for a later pair). Keys are decoded at most once per pair.
template <class Accept>
void scan_query(std::string_view query, std::span<const std::string_view> names, Accept&& accept) {
    // Bit i set once names[i] is found; callers ask for a handful of names (at most 64).
    std::uint64_t done = 0;
    const std::size_t wanted = std::min<std::size_t>(names.size(), 64);
    std::size_t found = 0;
    std::string decoded_key;
    while (!query.empty() && found < wanted) {
        const std::size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty() || pair.find(';') != std::string_view::npos) {
            continue;  // Go rejects ';' separators and skips the pair
        }
        const std::size_t eq = pair.find('=');
        std::string_view key = pair.substr(0, eq);
        const std::string_view raw =
            eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        if (!is_plain(key)) {
            if (!query_unescape(key, decoded_key)) {
                continue;  // an invalid escape in the key: Go skips the pair
            }
            key = decoded_key;
        }
        for (std::size_t i = 0; i < wanted; ++i) {
            const std::uint64_t bit = std::uint64_t{1} << i;
            if ((done & bit) != 0 || names[i] != key) {
                continue;
            }
            if (accept(i, raw)) {
                done |= bit;
                ++found;
            }
            break;
        }
    }
}

}  // namespace

void query_params(std::string_view query, std::span<const std::string_view> names,
                  std::span<std::string> values) {
    std::string decoded;
    scan_query(query, names, [&](std::size_t i, std::string_view raw) {
        if (!query_unescape(raw, decoded)) {
            return false;
        }
        values[i] = std::move(decoded);
        return true;
    });
}

void query_param_views(std::string_view query, std::span<const std::string_view> names,
                       std::span<std::string_view> values, std::string& decoded) {
    decoded.clear();
    std::string scratch;
    scan_query(query, names, [&](std::size_t i, std::string_view raw) {
        if (is_plain(raw)) {
            values[i] = raw;
            return true;
        }
        if (!query_unescape(raw, scratch)) {
            return false;
        }
        if (decoded.capacity() < query.size()) {
            // Decoded values are never longer than the query: no reallocation will move the
            // bytes earlier views point into.
            decoded.reserve(query.size());
        }
        const std::size_t at = decoded.size();
        decoded.append(scratch);
        values[i] = std::string_view{decoded}.substr(at);
        return true;
    });
}

std::string query_param(std::string_view query, std::string_view name) {
    std::string value;
    query_params(query, std::span<const std::string_view>{&name, 1},
                 std::span<std::string>{&value, 1});
    return value;
}

}  // namespace nmid::http
