// The pure half of the projected token source: the file's path and the token's times.
#include <nlohmann/json.hpp>
#include <string>

#include "nmid/cloud/base64.hpp"
#include "nmid/workload/constants.hpp"
#include "nmid/workload/decision.hpp"
#include "nmid/workload/projected_token.hpp"

namespace nmid::workload {
namespace {

bool uid_like(std::string_view uid) {
    if (uid.empty() || uid.size() > 64) {
        return false;
    }
    for (const char c : uid) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-')) {
            return false;
        }
    }
    return true;
}

// Relative, '/'-separated, every segment non-empty and neither "." nor "..", no NUL.
bool relative_path(std::string_view path) {
    if (path.empty() || path.size() > 4096 || path.front() == '/') {
        return false;
    }
    std::size_t start = 0;
    while (start <= path.size()) {
        const std::size_t slash = path.find('/', start);
        const std::string_view segment = path.substr(
            start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
        if (segment.empty() || segment == "." || segment == ".." ||
            segment.find('\0') != std::string_view::npos) {
            return false;
        }
        if (slash == std::string_view::npos) {
            return true;
        }
        start = slash + 1;
    }
    return false;
}

std::optional<std::string> base64url_decode(std::string_view text) {
    std::string standard{text};
    for (char& c : standard) {
        if (c == '-') {
            c = '+';
        } else if (c == '_') {
            c = '/';
        } else if (c == '+' || c == '/' || c == '=') {
            return std::nullopt;  // not the URL-safe unpadded alphabet
        }
    }
    standard.append((4 - standard.size() % 4) % 4, '=');
    return cloud::base64_decode(standard);
}

using PathResult = boost::system::result<ProjectedPath, std::string>;

PathResult refuse(std::string why) {
    return PathResult{boost::system::in_place_error, std::move(why)};
}

}  // namespace

boost::system::result<ProjectedPath, std::string> projected_token_path(
    std::string_view kubelet_root, const PodInfo& pod) {
    const TokenProjection* projection = azure_projection(pod);
    const std::string who = "pod " + pod.namespace_name + "/" + pod.name;
    if (projection == nullptr) {
        return refuse(who + " has no projected ServiceAccount token volume with audience " +
                      std::string{kTokenAudience} +
                      " (the azure-workload-identity webhook adds it)");
    }
    if (!uid_like(pod.uid)) {
        return refuse(who + ": its uid is not a Kubernetes UID");
    }
    if (!dns_label(projection->volume)) {
        return refuse(who + ": volume name \"" + projection->volume.substr(0, 64) +
                      "\" is not a DNS label");
    }
    if (!relative_path(projection->path)) {
        return refuse(who + ": token path \"" + projection->path.substr(0, 64) +
                      "\" is not a relative path without \".\" and \"..\" segments");
    }
    ProjectedPath out;
    out.volume_dir = std::string{kubelet_root};
    if (out.volume_dir.empty() || out.volume_dir.back() != '/') {
        out.volume_dir += '/';
    }
    out.volume_dir +=
        "pods/" + pod.uid + "/volumes/kubernetes.io~projected/" + projection->volume + "/";
    out.file = out.volume_dir + projection->path;
    return out;
}

std::optional<JwtTimes> jwt_times(std::string_view jwt) {
    const std::size_t first = jwt.find('.');
    const std::size_t second = first == std::string_view::npos ? first : jwt.find('.', first + 1);
    if (second == std::string_view::npos || jwt.find('.', second + 1) != std::string_view::npos) {
        return std::nullopt;
    }
    const auto payload = base64url_decode(jwt.substr(first + 1, second - first - 1));
    if (!payload) {
        return std::nullopt;
    }
    const auto claims = nlohmann::json::parse(*payload, nullptr, /*allow_exceptions=*/false);
    if (!claims.is_object()) {
        return std::nullopt;
    }
    const auto exp = claims.find("exp");
    if (exp == claims.end() || !exp->is_number_integer()) {
        return std::nullopt;
    }
    JwtTimes times;
    times.expires_on = exp->get<std::int64_t>();
    const auto iat = claims.find("iat");
    if (iat != claims.end() && iat->is_number_integer()) {
        times.issued_at = iat->get<std::int64_t>();
    }
    return times;
}

}  // namespace nmid::workload
