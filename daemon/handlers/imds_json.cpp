#include "nmid/handlers/imds_json.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace nmid::handlers {
namespace {

void append_int(std::string& out, std::int64_t v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
}

void append_field(std::string& out, std::string_view key, std::string_view value, bool first) {
    if (!first) {
        out.push_back(',');
    }
    out.push_back('"');
    out.append(key);
    out.append("\":\"");
    append_json_escaped(out, value);
    out.push_back('"');
}

void append_int_field(std::string& out, std::string_view key, std::int64_t value) {
    out.append(",\"");
    out.append(key);
    out.append("\":\"");
    append_int(out, value);
    out.push_back('"');
}

}  // namespace

void append_token_json(std::string& out, const Token& token, std::string_view resource,
                       std::int64_t now_unix) {
    out.reserve(out.size() + token.access_token.size() + resource.size() + 200);
    out.push_back('{');
    append_field(out, "access_token", token.access_token, true);
    append_field(out, "refresh_token", token.refresh_token, false);
    append_int_field(out, "expires_in", std::max<std::int64_t>(0, token.expires_on - now_unix));
    append_int_field(out, "expires_on", token.expires_on);
    append_int_field(out, "not_before", token.not_before);
    append_field(out, "resource", resource, false);
    append_field(out, "token_type", token.token_type, false);
    out.push_back('}');
}

std::string token_json(const Token& token, std::string_view resource, std::int64_t now_unix) {
    std::string out;
    append_token_json(out, token, resource, now_unix);
    return out;
}

}  // namespace nmid::handlers
