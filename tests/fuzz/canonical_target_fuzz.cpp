// Fuzz target: the canonical form of a request target (http::CanonicalTarget) and routing on
// it (http::route). The input is one target, or two separated by the first 0x00 byte.
//
// Invariants (abort() on violation):
// - the canonical path is rooted and has no '\', ';', control byte, empty or dot segment, no
//   trailing '/' (but "/") and no valid escape;
// - canonical form is idempotent: the canonical path spelled for the wire
//   (append_encoded_path) canonicalises to itself, exact exactly when nothing was encoded;
// - differential: two targets whose canonical paths are equal (ASCII case folded) route
//   equal, except that the raw spelling tells token from invalid_token_path;
// - a target whose canonical path is /metadata/identity or under it never routes to the
//   proxy or instance routes; the token route's canonical path is the token path.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "nmid/core/ascii.hpp"
#include "nmid/core/hex.hpp"
#include "nmid/http/canonical_target.hpp"
#include "nmid/http/router.hpp"

namespace {

using nmid::http::CanonicalTarget;
using nmid::http::ImdsPath;
using nmid::http::Route;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "canonical_target invariant violated: %s\n", what);
        std::abort();
    }
}

std::string folded(std::string_view s) {
    std::string out{s};
    for (char& c : out) {
        c = nmid::ascii_lower(c);
    }
    return out;
}

bool under_identity(std::string_view canonical) {
    const std::string f = folded(canonical);
    return f == "/metadata/identity" || f.starts_with("/metadata/identity/");
}

bool is_token_family(Route r) {
    return r == Route::token || r == Route::invalid_token_path;
}

void check_shape(std::string_view path) {
    check(!path.empty() && path[0] == '/', "canonical path not rooted");
    check(path.size() == 1 || path.back() != '/', "trailing slash");
    for (std::size_t i = 0; i < path.size(); ++i) {
        const auto u = static_cast<unsigned char>(path[i]);
        check(u >= 0x20 && u != 0x7f, "control byte");
        check(path[i] != '\\' && path[i] != ';', "backslash or parameter");
        check(!(path[i] == '%' && i + 2 < path.size() && nmid::hex_value(path[i + 1]) >= 0 &&
                nmid::hex_value(path[i + 2]) >= 0),
              "valid escape left");
        if (path[i] == '/' && i + 1 < path.size()) {
            const std::string_view rest = path.substr(i + 1);
            const std::string_view segment = rest.substr(0, rest.find('/'));
            check(!segment.empty() && segment != "." && segment != "..", "empty or dot segment");
        }
    }
}

/// One target's own invariants; returns its route.
nmid::http::RoutedTarget check_one(std::string_view target) {
    const nmid::http::RoutedTarget routed = nmid::http::route(target);
    const CanonicalTarget& c = routed.canonical;
    check(routed.path == c.raw_path() && routed.query == c.query(), "raw parts differ");
    if (c.malformed()) {
        check(routed.route == Route::malformed, "malformed target routed");
        check(routed.imds == ImdsPath::none, "malformed target has an IMDS path");
        return routed;
    }
    check(routed.route != Route::malformed, "readable target routed as malformed");
    const std::string_view path = c.path();
    check_shape(path);
    check(!c.exact() || (path == c.raw_path() && !c.has_fragment()), "exact but not the raw path");

    std::string wire;
    nmid::http::append_encoded_path(wire, path);
    const CanonicalTarget again{wire};
    check(!again.malformed(), "encoded canonical path is malformed");
    check(again.path() == path, "canonical form is not idempotent");
    check(again.exact() == (wire == path), "encoded canonical path exactness");
    check(nmid::http::route(wire).route == routed.route || is_token_family(routed.route),
          "the canonical spelling routes elsewhere");

    if (under_identity(path)) {
        check(routed.route != Route::proxy && routed.route != Route::instance,
              "identity path routed to the proxy");
        check(routed.imds == ImdsPath::none, "identity path has an IMDS path");
    }
    if (routed.route == Route::token) {
        check(folded(path) == "/metadata/identity/oauth2/token", "token route off the token path");
        check(!c.has_fragment(), "token route with a fragment");
    }
    const bool proxied = routed.route == Route::proxy || routed.route == Route::instance;
    check(proxied == (routed.imds != ImdsPath::none), "IMDS path without a proxy route");
    check(!proxied || nmid::http::method_allowed(routed.imds, "GET"), "proxied path without GET");
    return routed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input{reinterpret_cast<const char*>(data), size};
    const std::size_t nul = input.find('\0');
    if (nul == std::string_view::npos) {
        check_one(input);
        return 0;
    }
    const std::string_view a = input.substr(0, nul);
    const std::string_view b = input.substr(nul + 1);
    const nmid::http::RoutedTarget ra = check_one(a);
    const nmid::http::RoutedTarget rb = check_one(b);
    if (ra.canonical.malformed() || rb.canonical.malformed()) {
        return 0;
    }
    if (folded(ra.canonical.path()) == folded(rb.canonical.path())) {
        check(ra.route == rb.route || (is_token_family(ra.route) && is_token_family(rb.route)),
              "equal canonical forms route differently");
        check(ra.imds == rb.imds, "equal canonical forms have different IMDS paths");
    }
    return 0;
}
