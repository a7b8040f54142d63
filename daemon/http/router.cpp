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
#include "nmid/http/canonical_target.hpp"
#include "swar.hpp"

namespace nmid::http {
namespace {

constexpr std::string_view kTokenPath = "/metadata/identity/oauth2/token";
constexpr std::string_view kIdentity = "/metadata/identity";
constexpr std::string_view kIdentityInfo = "/metadata/identity/info";
constexpr std::string_view kHostToken = "/host/token";
constexpr std::string_view kInstance = "/metadata/instance";
constexpr std::string_view kVersions = "/metadata/versions";
constexpr std::string_view kAttested = "/metadata/attested";
constexpr std::string_view kScheduledEvents = "/metadata/scheduledevents";
constexpr std::string_view kLoadBalancer = "/metadata/loadbalancer";
constexpr std::string_view kMetadataSegment = "/metadata";

/// `s` equals `lower` (lower case) with `s`'s ASCII case folded. The usual spelling, already
/// lower case, is one memcmp.
bool folded_equals(std::string_view s, std::string_view lower) noexcept {
    if (s.size() != lower.size()) {
        return false;
    }
    if (s == lower) {
        return true;
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (ascii_lower(s[i]) != lower[i]) {
            return false;
        }
    }
    return true;
}

/// `s` starts with `prefix` (lower case), ASCII case folded.
bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && folded_equals(s.substr(0, prefix.size()), prefix);
}

/// `path` is `dir` or under it (segment-wise), ASCII case folded.
bool is_under(std::string_view path, std::string_view dir) noexcept {
    return istarts_with(path, dir) && (path.size() == dir.size() || path[dir.size()] == '/');
}

/// NMI's token route on the raw path: `/{(?i:metadata)}/identity/oauth2/token`, exactly,
/// with at most one trailing '/' (the canonical path is the token path already).
bool is_nmi_token_spelling(std::string_view raw) noexcept {
    if (raw == kTokenPath) {
        return true;  // the usual spelling
    }
    if (raw.size() == kTokenPath.size() + 1 && raw.back() == '/') {
        raw.remove_suffix(1);
    }
    return raw.size() == kTokenPath.size() &&
           folded_equals(raw.substr(0, kMetadataSegment.size()), kMetadataSegment) &&
           raw.substr(kMetadataSegment.size()) == kTokenPath.substr(kMetadataSegment.size());
}

/// The allowlisted IMDS path `path` is, or ImdsPath::none.
ImdsPath imds_path_of(std::string_view path) noexcept {
    if (is_under(path, kInstance)) {
        return ImdsPath::instance;
    }
    if (folded_equals(path, kVersions)) {
        return ImdsPath::versions;
    }
    if (is_under(path, kAttested)) {
        return ImdsPath::attested;
    }
    if (folded_equals(path, kScheduledEvents)) {
        return ImdsPath::scheduled_events;
    }
    if (folded_equals(path, kLoadBalancer)) {
        return ImdsPath::load_balancer;
    }
    return ImdsPath::none;
}

}  // namespace

std::string_view to_string(Route route) noexcept {
    switch (route) {
        case Route::malformed:
            return "malformed";
        case Route::token:
            return "token";
        case Route::invalid_token_path:
            return "invalid_token_path";
        case Route::identity_info:
            return "identity_info";
        case Route::identity:
            return "identity";
        case Route::host_token:
            return "host_token";
        case Route::instance:
            return "instance";
        case Route::proxy:
            return "proxy";
        case Route::forbidden:
            return "forbidden";
    }
    return "forbidden";
}

bool method_allowed(ImdsPath path, std::string_view method) noexcept {
    if (path == ImdsPath::none) {
        return false;
    }
    return method == "GET" || (method == "POST" && path == ImdsPath::scheduled_events);
}

std::string_view allowed_methods(ImdsPath path) noexcept {
    return path == ImdsPath::scheduled_events ? "GET, POST" : "GET";
}

RoutedTarget route(std::string_view target) {
    RoutedTarget out{.route = Route::forbidden,
                     .imds = ImdsPath::none,
                     .path = {},
                     .query = {},
                     .canonical = CanonicalTarget{target}};
    const CanonicalTarget& c = out.canonical;
    out.path = c.raw_path();
    out.query = c.query();
    if (c.malformed()) {
        out.route = Route::malformed;
        return out;
    }
    const std::string_view path = c.path();
    if (folded_equals(path, kTokenPath)) {
        out.route = !c.has_fragment() && is_nmi_token_spelling(c.raw_path())
                        ? Route::token
                        : Route::invalid_token_path;
    } else if (folded_equals(path, kIdentityInfo)) {
        out.route = Route::identity_info;
    } else if (is_under(path, kIdentity)) {
        out.route = Route::identity;
    } else if (istarts_with(path, kHostToken)) {
        out.route = Route::host_token;
    } else {
        out.imds = imds_path_of(path);
        out.route = out.imds == ImdsPath::none       ? Route::forbidden
                    : out.imds == ImdsPath::instance ? Route::instance
                                                     : Route::proxy;
    }
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
            const int byte = escaped_byte(in, i);
            if (byte < 0) {
                return false;
            }
            out.push_back(static_cast<char>(byte));
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
