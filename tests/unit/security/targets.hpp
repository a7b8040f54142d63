#pragma once

// Hostile request targets and the property test's own canonical form of a path, as IMDS may
// read it: every layer of percent-encoding undone, `\` as `/`, `;` parameters, empty and dot
// segments dropped, case folded, absolute-form reduced to its path. Deliberately more eager
// than any one server, so "under /metadata/identity" errs towards flagging a forward.

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "generator.hpp"
#include "model.hpp"
#include "oracle.hpp"

namespace nmid::security_test {

inline int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/// One layer of percent-decoding; invalid escapes stay as they are.
inline std::string decode_once(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            const int hi = hex_digit(s[i + 1]);
            const int lo = hex_digit(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

/// The path's segments in canonical form (see the file comment).
inline std::vector<std::string> canonical_segments(std::string_view target,
                                                   bool cut_fragment = true) {
    std::string_view t = target;
    if (!t.starts_with('/')) {
        const std::size_t scheme = t.find("://");
        if (scheme != std::string_view::npos) {
            const std::size_t path = t.find_first_of("/?#", scheme + 3);
            t = path == std::string_view::npos ? std::string_view{} : t.substr(path);
        }
    }
    t = t.substr(0, t.find_first_of(cut_fragment ? "?#" : "?"));
    std::string path{t};
    for (int layer = 0; layer < 4; ++layer) {
        std::string next = decode_once(path);
        if (next == path) {
            break;
        }
        path = std::move(next);
    }
    std::vector<std::string> segments;
    std::string current;
    auto flush = [&] {
        std::string seg = lowered(current.substr(0, current.find(';')));
        current.clear();
        if (seg.empty() || seg == ".") {
            return;
        }
        if (seg == "..") {
            if (!segments.empty()) {
                segments.pop_back();
            }
            return;
        }
        segments.push_back(std::move(seg));
    };
    for (const char c : path) {
        if (c == '/' || c == '\\') {
            flush();
        } else {
            current += c;
        }
    }
    flush();
    return segments;
}

inline bool under_identity(const std::vector<std::string>& segs) {
    return segs.size() >= 2 && segs[0] == "metadata" && segs[1] == "identity";
}

/// The most telling of a request's disguises, for a report's class name.
inline std::string main_spelling(const std::vector<std::string>& tags) {
    static const std::array<const char*, 11> order = {
        "backslash",   "pct5c",         "double_pct", "pct2f", "semicolon",    "fragment",
        "dot_segment", "empty_segment", "pct_letter", "case",  "absolute_form"};
    for (const char* t : order) {
        if (std::find(tags.begin(), tags.end(), t) != tags.end()) {
            return t;
        }
    }
    return "plain";
}

/// The token route as an excepted pod may have it passed through (NMI's prefix match).
inline bool is_token_route(const std::vector<std::string>& segs) {
    return segs.size() >= 4 && under_identity(segs) && segs[2] == "oauth2" &&
           segs[3].starts_with("token");
}

struct GenPath {
    std::string endpoint;
    std::string path;
    std::vector<std::string> tags;
};

inline GenPath random_path(Rng& rng) {
    static const std::array<std::string, 14> bases = {"/metadata/identity/oauth2/token",
                                                      "/metadata/identity/oauth2/token",
                                                      "/metadata/identity/oauth2/token",
                                                      "/metadata/identity/oauth2/token",
                                                      "/metadata/identity/oauth2/token",
                                                      "/metadata/identity/info",
                                                      "/metadata/identity/issuecredential",
                                                      "/metadata/identity/getplatformmetadata",
                                                      "/metadata/identity",
                                                      "/metadata/instance/compute",
                                                      "/metadata/versions",
                                                      "/metadata/scheduledevents",
                                                      "/host/token/",
                                                      "/metadata/identityx/oauth2/token"};
    GenPath out;
    std::vector<std::string> segs;
    {
        const std::string& base = rng.pick(bases);
        out.endpoint = base;
        std::size_t start = 1;
        for (std::size_t slash = base.find('/', 1);; slash = base.find('/', start)) {
            segs.push_back(base.substr(start, slash - start));
            if (slash == std::string::npos) {
                break;
            }
            start = slash + 1;
        }
    }
    auto tag = [&](const char* t) {
        for (const std::string& have : out.tags) {
            if (have == t) {
                return;
            }
        }
        out.tags.emplace_back(t);
    };
    if (rng.chance(20)) {
        std::string& s = segs[rng.below(segs.size())];
        for (char& c : s) {
            if (rng.chance(40) && c >= 'a' && c <= 'z') {
                c = static_cast<char>(c - 'a' + 'A');
                tag("case");
            }
        }
    }
    if (rng.chance(10)) {
        std::string& s = segs[rng.below(segs.size())];
        const std::size_t i = rng.below(s.size() + 1);
        if (i < s.size()) {
            static const char* hex = "0123456789ABCDEF";
            const auto c = static_cast<unsigned char>(s[i]);
            s.replace(i, 1, std::string{'%', hex[c >> 4U], hex[c & 15U]});
            tag("pct_letter");
        }
    }
    if (rng.chance(10)) {
        segs[rng.below(segs.size())] += rng.chance(50) ? ";x=1" : ";";
        tag("semicolon");
    }
    if (rng.chance(5) && !segs.back().empty()) {
        segs.back().insert(rng.below(segs.back().size()), "#");
        tag("fragment");
    }
    static const std::array<std::pair<const char*, const char*>, 7> seps = {
        {{"\\", "backslash"},
         {"%5c", "pct5c"},
         {"%5C", "pct5c"},
         {"%2f", "pct2f"},
         {"%2F", "pct2f"},
         {"%255c", "double_pct"},
         {"//", "empty_segment"}}};
    out.path = "/" + segs[0];
    for (std::size_t i = 1; i < segs.size(); ++i) {
        if (rng.chance(8)) {
            out.path += rng.chance(50) ? "/." : "/x/..";
            tag("dot_segment");
        }
        if (rng.chance(15)) {
            const auto& [sep, name] = rng.pick(seps);
            out.path += sep;
            tag(name);
        } else {
            out.path += "/";
        }
        out.path += segs[i];
    }
    if (rng.chance(8)) {
        out.path = (rng.chance(50) ? "http://169.254.169.254" : "HTTP://127.0.0.1:2579") + out.path;
        tag("absolute_form");
    }
    std::sort(out.tags.begin(), out.tags.end());
    return out;
}

inline std::string query_of(const Selectors& s, const std::string& resource) {
    std::string q = "?api-version=2018-02-01&resource=" + resource;
    auto add = [&](const char* name, const std::string& v) {
        if (!v.empty()) {
            q += std::string{"&"} + name + "=" + v;
        }
    };
    add("client_id", s.client_id);
    add("msi_res_id", s.msi_res_id);
    add("mi_res_id", s.mi_res_id);
    add("object_id", s.object_id);
    return q;
}

inline GenRequest random_request(Rng& rng, const Cluster& c) {
    GenRequest r;
    r.peer = rng.chance(92) ? rng.pick(c.pods).ip : "10.244.9.9";
    GenPath p = random_path(rng);
    r.spelling = std::move(p.tags);
    r.endpoint = p.endpoint;
    r.selectors = random_selectors(rng, c);
    static const std::array<std::string, 3> resources = {"https://vault.azure.net",
                                                         "https%3A%2F%2Fmanagement.azure.com%2F",
                                                         "https://storage.azure.com/"};
    r.target = p.path;
    if (rng.chance(85)) {
        r.target += query_of(r.selectors, rng.pick(resources));
    } else {
        r.selectors = {};
    }
    if (rng.chance(10)) {
        r.method = "POST";
    }
    if (rng.chance(94)) {
        r.headers.emplace_back("Metadata", "true");
    }
    if (rng.chance(2)) {
        r.headers.emplace_back("X-Forwarded-For", "10.0.0.1");
    }
    if (p.path.find("host") != std::string::npos) {
        const GenPod& victim = rng.pick(c.pods);
        r.headers.emplace_back("podns", victim.namespace_name);
        r.headers.emplace_back("podname", victim.name);
    }
    return r;
}

}  // namespace nmid::security_test
