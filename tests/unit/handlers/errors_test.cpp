#include "nmid/handlers/errors.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace nmid::handlers {
namespace {

using namespace std::chrono_literals;

struct Row {
    Errc code;
    int status;                        // default settings, token endpoint
    std::optional<std::string> retry;  // Retry-After value, if any
};

std::optional<std::string> retry_after(const http::HttpResponse& r) {
    for (const auto& [k, v] : r.headers) {
        if (k == "Retry-After") {
            return v;
        }
    }
    return std::nullopt;
}

TEST(ErrorResponse, EveryErrorHasOneStatusAndAnImdsShapedBody) {
    const HandlerSettings settings;
    const std::vector<Row> table = {
        {Errc::metadata_header_missing, 400, {}},
        {Errc::forwarded_for_present, 400, {}},
        {Errc::resource_missing, 400, {}},
        {Errc::invalid_token_path, 400, {}},
        {Errc::host_headers_missing, 400, {}},
        {Errc::bad_request, 400, {}},
        {Errc::not_loopback, 403, {}},
        {Errc::instance_blocked, 403, {}},
        {Errc::path_not_allowed, 403, {}},
        {Errc::path_not_found, 404, {}},
        {Errc::method_not_allowed, 405, {}},
        {Errc::remote_address_invalid, 500, {}},
        {Errc::pod_not_found, 500, {}},
        {Errc::pod_ip_ambiguous, 500, {}},
        {Errc::pod_source_failed, 500, "1"},
        {Errc::no_binding, 404, {}},
        {Errc::identity_not_found, 404, {}},
        {Errc::identity_unsupported, 503, "1"},
        {Errc::upstream_refused, 403, {}},
        {Errc::upstream_throttled, 429, "1"},
        {Errc::upstream_unavailable, 503, "1"},
        {Errc::upstream_bad_payload, 503, "1"},
        {Errc::timeout, 503, "1"},
        {Errc::cancelled, 503, "1"},
        {Errc::not_ready, 503, "1"},
        {Errc::overloaded, 503, "1"},
        {Errc::pod_over_limit, 429, "1"},
        {Errc::parse_error, 500, {}},
        {Errc::io_error, 500, {}},
    };
    for (const auto& row : table) {
        const auto r = error_response(row.code, "why", settings);
        EXPECT_EQ(r.status, row.status) << to_string(row.code);
        EXPECT_EQ(status_for(row.code, settings), row.status) << to_string(row.code);
        EXPECT_EQ(retry_after(r), row.retry) << to_string(row.code);
        EXPECT_EQ(r.content_type, "application/json; charset=utf-8");
        const auto body = nlohmann::json::parse(r.body, nullptr, false);
        ASSERT_FALSE(body.is_discarded()) << r.body;
        EXPECT_EQ(body["error_description"], "why");
        // 400 only for malformed requests: SDKs treat it as final.
        if (row.status == 400) {
            EXPECT_EQ(body["error"], "invalid_request");
        }
    }
}

TEST(ErrorResponse, PathsNmiAnswersItselfAreNeverRetryable) {
    HandlerSettings settings;
    settings.set_retry_after_header = true;
    for (Errc code : {Errc::path_not_allowed, Errc::path_not_found, Errc::method_not_allowed}) {
        const auto r = error_response(code, "x", settings, Endpoint::other);
        EXPECT_EQ(retry_after(r), std::nullopt) << to_string(code);
        EXPECT_EQ(r.status, status_for(code, HandlerSettings{})) << to_string(code);
    }
}

TEST(ErrorResponse, RetryAfterFlagTurnsIdentityMissesInto503OnTheTokenEndpointOnly) {
    HandlerSettings settings;
    settings.set_retry_after_header = true;
    for (Errc code : {Errc::no_binding, Errc::identity_not_found}) {
        const auto token = error_response(code, "x", settings, Endpoint::token);
        EXPECT_EQ(token.status, 503);
        EXPECT_EQ(retry_after(token), "20");
        const auto host = error_response(code, "x", settings, Endpoint::host_token);
        EXPECT_EQ(host.status, 404);
        EXPECT_EQ(retry_after(host), std::nullopt);
    }
}

TEST(ErrorResponse, UpstreamRetryAfterWins) {
    const auto r =
        error_response(Errc::upstream_throttled, "x", HandlerSettings{}, Endpoint::token, 17s);
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(retry_after(r), "17");
    // IMDS's own code for a throttled answer (issue 14), as for a pod over its share.
    EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "too_many_requests");
    const auto pod = error_response(Errc::pod_over_limit, "x", HandlerSettings{}, Endpoint::token);
    EXPECT_EQ(nlohmann::json::parse(pod.body)["error"], "too_many_requests");
}

}  // namespace
}  // namespace nmid::handlers
