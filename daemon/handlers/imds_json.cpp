#include "nmid/handlers/imds_json.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <functional>

#include "nmid/http/message.hpp"

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

// IMDS 2023-07-01's fields, after NMI's: `client_id` when known, `ext_expires_in` (time left
// of the extended lifetime, like expires_in) when the upstream sent one.
void append_client_id(std::string& out, const Token& token) {
    if (!token.client_id.empty()) {
        append_field(out, "client_id", token.client_id, false);
    }
}

void append_ext_and_close(std::string& out, const Token& token, std::int64_t now_unix) {
    if (token.ext_expires_on > 0) {
        append_int_field(out, "ext_expires_in",
                         std::max<std::int64_t>(0, token.ext_expires_on - now_unix));
    }
    out.push_back('}');
}

// Everything of a token's body but `expires_in` and `ext_expires_in`, rendered once: the access
// token is ~1.5 KiB and escaping it on every hit was the largest user-space cost of a cached
// answer.
struct Rendered {
    TokenPtr token{};  // held, so the address cannot be reused by another token while cached
    std::string resource{};
    std::string head{};  // `{"access_token":"…","refresh_token":"…","expires_in":"`
    std::string tail{};  // `","expires_on":"…",…,"token_type":"…","client_id":"…"`
};

void render(Rendered& r, const TokenPtr& token, std::string_view resource) {
    r.token = token;
    r.resource.assign(resource);
    r.head.clear();
    r.head.push_back('{');
    append_field(r.head, "access_token", token->access_token, true);
    append_field(r.head, "refresh_token", token->refresh_token, false);
    r.head.append(",\"expires_in\":\"");
    // clear() + push_back, not assign("\""): g++ 12 at -O3 reports the one-byte assign as
    // an overlapping memcpy (-Wrestrict false positive, GCC bug 105651).
    r.tail.clear();
    r.tail.push_back('"');
    append_int_field(r.tail, "expires_on", token->expires_on);
    append_int_field(r.tail, "not_before", token->not_before);
    append_field(r.tail, "resource", resource, false);
    append_field(r.tail, "token_type", token->token_type, false);
    append_client_id(r.tail, *token);
}

/// The memo slot of `token` for `resource`, rendered if it was not.
const Rendered& rendered(const TokenPtr& token, std::string_view resource) {
    // Per thread, so several I/O threads never share (or lock) a slot. Direct-mapped on the
    // token's address: the few tokens a node serves hot stay rendered.
    constexpr std::size_t kSlots = 32;
    thread_local std::array<Rendered, kSlots> memo;
    Rendered& slot = memo[std::hash<const Token*>{}(token.get()) / alignof(Token) % kSlots];
    if (slot.token != token || slot.resource != resource) {
        render(slot, token, resource);
    }
    return slot;
}

void append_rendered(std::string& out, const Rendered& slot, std::int64_t now_unix) {
    out.reserve(out.size() + slot.head.size() + slot.tail.size() + 60);
    out.append(slot.head);
    append_int(out, std::max<std::int64_t>(0, slot.token->expires_on - now_unix));
    out.append(slot.tail);
    append_ext_and_close(out, *slot.token, now_unix);
}

}  // namespace

void append_token_json(std::string& out, const TokenPtr& token, std::string_view resource,
                       std::int64_t now_unix) {
    append_rendered(out, rendered(token, resource), now_unix);
}

std::string token_json(const TokenPtr& token, std::string_view resource, std::int64_t now_unix) {
    const Rendered& slot = rendered(token, resource);
    std::string out = http::take_response_buffer(slot.head.size() + slot.tail.size() + 60);
    append_rendered(out, slot, now_unix);
    return out;
}

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
    append_client_id(out, token);
    append_ext_and_close(out, token, now_unix);
}

std::string token_json(const Token& token, std::string_view resource, std::int64_t now_unix) {
    std::string out;
    append_token_json(out, token, resource, now_unix);
    return out;
}

}  // namespace nmid::handlers
