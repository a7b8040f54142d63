// Fuzz target: IMDS and AAD token answers (cloud/token_json): parse_token_response and
// parse_oauth_error, on the body as received.
//
// Invariants:
// - nothing throws (both promise never to throw);
// - a parsed token has a non-empty access token and a positive expiry, and the same body parsed
//   at another time gives the same token except for the fields derived from the clock
//   (an absent expires_on is expires_in after now, an absent expires_in is expires_on - now).

#include <cstdint>
#include <nlohmann/json.hpp>

#include "fuzz_check.hpp"
#include "nmid/cloud/token_json.hpp"
#include "nmid/handlers/imds_json.hpp"

using nmid::fuzz::check;

namespace {

constexpr std::int64_t kNow = 1'764'979'200;  // 2025-12-06T00:00:00Z

void fuzz_one(std::string_view body) {
    const nmid::Result<nmid::Token> token = nmid::cloud::parse_token_response(body, kNow);
    const nmid::Result<nmid::Token> later = nmid::cloud::parse_token_response(body, kNow + 60);
    check(token.has_value() == later.has_value(), "the clock decides whether a token parses");
    if (token) {
        check(!token->access_token.empty(), "token without access_token");
        check(token->expires_on > 0 && token->expires_in >= 0, "token without a usable expiry");
        check(token->access_token == later->access_token &&
                  token->token_type == later->token_type && token->resource == later->resource &&
                  token->refresh_token == later->refresh_token &&
                  token->not_before == later->not_before && token->client_id == later->client_id,
              "the clock changed a field read from the body");
        check(token->client_id.size() <= 128, "a client_id longer than a GUID is kept");
        check(token->ext_expires_on == 0 || later->ext_expires_on == token->ext_expires_on + 60,
              "ext_expires_in is not counted from the time of the answer");
        // What a pod receives for it is JSON with every value a string (IMDS's shape).
        const auto answer = nlohmann::json::parse(
            nmid::handlers::token_json(*token, "https://vault.azure.net", kNow), nullptr, false);
        check(answer.is_object(), "the answer a pod receives is not JSON");
        for (const auto& item : answer.items()) {
            check(item.value().is_string(), "a value of the answer is not a string");
        }
        check(answer.contains("client_id") == !token->client_id.empty(),
              "client_id sent exactly when known");
    }
    (void)nmid::cloud::parse_oauth_error(body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return nmid::fuzz::run_no_throw(data, size, fuzz_one);
}
