#include "nmid/http/canonical_target.hpp"

#include <cstdint>

#include "nmid/core/hex.hpp"
#include "swar.hpp"

namespace nmid::http {
namespace {

constexpr bool is_control(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}

/// A byte the fast check must look at one by one.
constexpr bool is_special(char c) noexcept {
    return c == '%' || c == '\\' || c == ';' || c == '.' || is_control(c);
}

/// Splits an absolute-form target into its path and query ("" when there is no path).
std::string_view path_and_query_of(std::string_view target) noexcept {
    if (target.empty() || target[0] == '/') {
        return target;
    }
    const std::size_t scheme_end = target.find("://");
    const std::size_t first_delim = target.find_first_of("/?");
    if (scheme_end == std::string_view::npos || first_delim < scheme_end) {
        return target;  // "*", authority-form or a relative path: made rooted later
    }
    const std::size_t authority = scheme_end + 3;
    const std::size_t rest = target.find_first_of("/?", authority);
    return rest == std::string_view::npos ? std::string_view{} : target.substr(rest);
}

/// True when `path` is certainly its own canonical form: rooted, no byte that decoding or
/// cleaning could change, no empty segment, no segment starting with '.', no trailing '/'.
/// May say false for a canonical path (".x" segments): the full computation then decides.
bool is_canonical(std::string_view path) noexcept {
    if (path.empty() || path[0] != '/') {
        return false;
    }
    if (path.size() > 1 && path.back() == '/') {
        return false;
    }
    // Whole words without a special byte need only the "//" test; the rest byte by byte.
    std::size_t i = 0;
    for (; i + 8 <= path.size(); i += 8) {
        const std::uint64_t w = swar::load8(path.data() + i);
        if ((swar::bytes_equal(w, '%') | swar::bytes_equal(w, '.') | swar::bytes_equal(w, '\\') |
             swar::bytes_equal(w, ';') | swar::bytes_equal(w, '\x7f') |
             swar::maybe_below(w, 0x20)) != 0) {
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
        if (c != '.' && is_special(c)) {
            return false;
        }
        if (c == '/' && j + 1 < path.size() && (path[j + 1] == '/' || path[j + 1] == '.')) {
            return false;  // "//" or a segment starting with '.'
        }
    }
    return true;
}

/// Percent-decodes `in` into `out` (room for in.size() bytes). False when malformed: an
/// invalid escape, a control byte, or a valid escape left after decoding.
bool decode_path(std::string_view in, char* out, std::size_t& written) noexcept {
    std::size_t w = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            const int byte = escaped_byte(in, i);
            if (byte < 0) {
                return false;
            }
            c = static_cast<char>(byte);
            i += 2;
        }
        if (is_control(c)) {
            return false;
        }
        out[w++] = c;
    }
    for (std::size_t i = 0; i + 2 < w; ++i) {
        if (out[i] == '%' && hex_value(out[i + 1]) >= 0 && hex_value(out[i + 2]) >= 0) {
            return false;  // encoded twice: what IMDS would decode again is not what we read
        }
    }
    written = w;
    return true;
}

/// Steps 5-7 in place: `buf[from, from + n)` holds the decoded path; the canonical path is
/// written from buf[0] (never ahead of what is still to be read, as each segment written is
/// preceded by a separator, or by the leading '/' that `from` >= 1 leaves room for).
std::size_t clean_in_place(char* buf, std::size_t from, std::size_t n) noexcept {
    const std::size_t end = from + n;
    std::size_t w = 0;
    std::size_t r = from;
    while (r < end) {
        while (r < end && (buf[r] == '/' || buf[r] == '\\')) {
            ++r;
        }
        const std::size_t start = r;
        std::size_t stop = r;  // end of the segment before any ';'
        bool params = false;
        for (; r < end && buf[r] != '/' && buf[r] != '\\'; ++r) {
            if (buf[r] == ';') {
                params = true;
            }
            if (!params) {
                stop = r + 1;
            }
        }
        const std::size_t len = stop - start;
        if (len == 0 || (len == 1 && buf[start] == '.')) {
            continue;  // empty, parameters only, or "."
        }
        if (len == 2 && buf[start] == '.' && buf[start + 1] == '.') {
            while (w > 0) {  // drop the last segment written, if any
                --w;
                if (buf[w] == '/') {
                    break;
                }
            }
            continue;
        }
        buf[w++] = '/';
        for (std::size_t k = start; k < stop; ++k) {
            buf[w++] = buf[k];
        }
    }
    if (w == 0) {
        buf[w++] = '/';
    }
    return w;
}

bool is_unencoded(char c) noexcept {
    switch (c) {
        case '-':
        case '.':
        case '_':
        case '~':
        case '!':
        case '$':
        case '&':
        case '\'':
        case '(':
        case ')':
        case '*':
        case '+':
        case ',':
        case '=':
        case ':':
        case '@':
        case '/':
            return true;
        default:
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    }
}

}  // namespace

CanonicalTarget::CanonicalTarget(std::string_view target) {
    const std::size_t hash = target.find('#');
    fragment_ = hash != std::string_view::npos;
    const std::string_view rest = path_and_query_of(target.substr(0, hash));
    const std::size_t q = rest.find('?');
    raw_path_ = rest.substr(0, q);
    if (q != std::string_view::npos) {
        query_ = rest.substr(q + 1);
    }
    if (is_canonical(raw_path_)) {
        // The usual case: nothing to decode or clean, no copy.
        exact_ = !fragment_;
        return;
    }
    in_raw_ = false;
    // Room for a leading '/' before the decoded bytes (a relative path is made rooted).
    canonical_.resize(raw_path_.size() + 1);
    std::size_t decoded = 0;
    if (!decode_path(raw_path_, canonical_.data() + 1, decoded)) {
        malformed_ = true;
        canonical_.clear();
        return;
    }
    canonical_.resize(clean_in_place(canonical_.data(), 1, decoded));
    exact_ = !fragment_ && canonical_ == raw_path_;
}

std::string_view CanonicalTarget::path() const noexcept {
    return in_raw_ ? raw_path_ : std::string_view{canonical_};
}

void append_encoded_path(std::string& out, std::string_view path) {
    static constexpr std::string_view kHex = "0123456789ABCDEF";
    for (const char c : path) {
        if (is_unencoded(c)) {
            out.push_back(c);
            continue;
        }
        const auto u = static_cast<unsigned char>(c);
        out.push_back('%');
        out.push_back(kHex[u >> 4U]);
        out.push_back(kHex[u & 0x0fU]);
    }
}

}  // namespace nmid::http
