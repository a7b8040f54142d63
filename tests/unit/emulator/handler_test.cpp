#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nmid/emulator/emulator.hpp"
#include "support/manual_clock.hpp"

namespace nmid::emulator {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using http::HttpRequest;
using http::HttpResponse;
using nlohmann::json;

constexpr std::string_view kToken =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net";

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

class MapHeaders final : public http::HeaderView {
public:
    explicit MapHeaders(std::vector<std::pair<std::string, std::string>> fields)
        : fields_{std::move(fields)} {}
    std::string_view get(std::string_view name) const override {
        for (const auto& [n, v] : fields_) {
            if (iequal(n, name)) {
                return v;
            }
        }
        return {};
    }
    bool contains(std::string_view name) const override {
        return std::any_of(fields_.begin(), fields_.end(),
                           [&](const auto& f) { return iequal(f.first, name); });
    }
    void for_each(void (*fn)(void*, std::string_view, std::string_view), void* ctx) const override {
        for (const auto& [n, v] : fields_) {
            fn(ctx, n, v);
        }
    }

private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

using Fields = std::vector<std::pair<std::string, std::string>>;
const Fields kMetadata{{"Metadata", "true"}};

/// A request whose storage lives as long as the handler coroutine, and its answer.
struct Call {
    Call(std::string m, std::string t, Fields f, std::string b)
        : method{std::move(m)}, target{std::move(t)}, body{std::move(b)}, headers{std::move(f)} {
        request.method = method;
        request.target = target;
        request.body = body;
        request.headers = &headers;
        request.peer = asio::ip::make_address("127.0.0.1");
    }
    std::string method;
    std::string target;
    std::string body;
    MapHeaders headers;
    HttpRequest request;
    std::optional<HttpResponse> response;
};

std::string header(const HttpResponse& response, std::string_view name) {
    for (const auto& [n, v] : response.headers) {
        if (iequal(n, name)) {
            return v;
        }
    }
    return {};
}

std::string base64url_decode(std::string_view text) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') {
            return c - 'A';
        }
        if (c >= 'a' && c <= 'z') {
            return c - 'a' + 26;
        }
        if (c >= '0' && c <= '9') {
            return c - '0' + 52;
        }
        if (c == '-') {
            return 62;
        }
        if (c == '_') {
            return 63;
        }
        ADD_FAILURE() << "not base64url: " << c;
        return 0;
    };
    std::string out;
    std::uint32_t buffer = 0;
    int bits = 0;
    for (char c : text) {
        buffer = (buffer << 6U) | static_cast<std::uint32_t>(value(c));
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> static_cast<unsigned>(bits)) & 0xffU);
        }
    }
    return out;
}

std::vector<std::string> split(std::string_view text, char sep) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (true) {
        auto at = text.find(sep, start);
        parts.emplace_back(text.substr(start, at - start));
        if (at == std::string_view::npos) {
            return parts;
        }
        start = at + 1;
    }
}

Identity alpha() {
    return {.client_id = "aaaaaaaa-1111-4111-8111-111111111111",
            .resource_id =
                "/subscriptions/s/resourcegroups/rg/providers/"
                "Microsoft.ManagedIdentity/userAssignedIdentities/alpha",
            .object_id = ""};
}
Identity beta() {
    return {.client_id = "bbbbbbbb-2222-4222-8222-222222222222",
            .resource_id =
                "/subscriptions/s/resourcegroups/rg/providers/"
                "Microsoft.ManagedIdentity/userAssignedIdentities/beta",
            .object_id = "0b0b0b0b-0000-4000-8000-00000000000b"};
}
Identity system() {
    return {
        .client_id = "5555aaaa-5555-4555-8555-555555555555", .resource_id = "", .object_id = ""};
}

class Emulator : public ::testing::Test {
protected:
    void make(EmulatorSettings settings) {
        handler_ = std::make_unique<EmulatorHandler>(clock_, std::move(settings));
    }

    /// Starts a request; it may complete at once or wait on the clock.
    std::shared_ptr<Call> start(std::string target, Fields fields = kMetadata,
                                std::string method = "GET", std::string body = {},
                                asio::cancellation_slot slot = {}) {
        auto call = std::make_shared<Call>(std::move(method), std::move(target), std::move(fields),
                                           std::move(body));
        asio::co_spawn(ioc_, handler_->handle(call->request),
                       asio::bind_cancellation_slot(
                           slot, [call](const std::exception_ptr& error, HttpResponse r) {
                               EXPECT_FALSE(error);
                               call->response = std::move(r);
                           }));
        poll();
        return call;
    }

    HttpResponse get(std::string target, Fields fields = kMetadata, std::string method = "GET",
                     std::string body = {}) {
        auto call = start(std::move(target), std::move(fields), std::move(method), std::move(body));
        EXPECT_TRUE(call->response.has_value()) << "the handler did not answer at once";
        return call->response.value_or(HttpResponse{});
    }

    json get_json(std::string target, int expected_status = 200, Fields fields = kMetadata,
                  std::string method = "GET", std::string body = {}) {
        auto response =
            get(std::move(target), std::move(fields), std::move(method), std::move(body));
        EXPECT_EQ(response.status, expected_status) << response.body;
        auto doc = json::parse(response.body, nullptr, false);
        EXPECT_FALSE(doc.is_discarded()) << response.body;
        return doc;
    }

    json stats() { return get_json("/_emulator/stats", 200, {}); }

    /// Runs whatever is ready; poll() leaves the context stopped once it runs out of work.
    void poll() {
        ioc_.restart();
        ioc_.poll();
    }

    test::ManualClock clock_;
    std::unique_ptr<EmulatorHandler> handler_;
    // Destroyed first: requests still waiting are torn down while the handler is alive.
    asio::io_context ioc_;
};

// --- Request contract -----------------------------------------------------------------

struct RejectRow {
    const char* name;
    std::string target;
    Fields fields;
    int status;
    std::string error;
    std::string description;  ///< substring
};

TEST_F(Emulator, RejectsRequestsThatBreakTheImdsContract) {
    make({.user_assigned = {alpha()}});
    const std::string base = "/metadata/identity/oauth2/token";
    const std::vector<RejectRow> rows = {
        {"no metadata header",
         std::string{kToken},
         {},
         400,
         "invalid_request",
         "Required metadata header not specified"},
        {"metadata True",
         std::string{kToken},
         {{"Metadata", "True"}},
         400,
         "invalid_request",
         "Required metadata header not specified"},
        {"metadata 1",
         std::string{kToken},
         {{"Metadata", "1"}},
         400,
         "invalid_request",
         "Required metadata header not specified"},
        {"JS probe: no query, no metadata",
         base,
         {{"Accept", "application/json"}},
         400,
         "invalid_request",
         "Required metadata header not specified"},
        {"x-forwarded-for",
         std::string{kToken},
         {{"metadata", "true"}, {"X-Forwarded-For", "10.0.0.1"}},
         400,
         "invalid_request",
         "X-Forwarded-For"},
        {"no api-version", base + "?resource=https://vault.azure.net", kMetadata, 400,
         "invalid_request", "api-version"},
        {"empty api-version", base + "?api-version=&resource=r", kMetadata, 400, "invalid_request",
         "api-version"},
        {"no resource", base + "?api-version=2018-02-01", kMetadata, 400, "invalid_request",
         "resource"},
        {"two selectors",
         std::string{kToken} + "&client_id=" + alpha().client_id +
             "&msi_res_id=" + alpha().resource_id,
         kMetadata, 400, "invalid_request", "Only one of"},
        {"unknown client_id", std::string{kToken} + "&client_id=cccccccc-0000", kMetadata, 400,
         "invalid_request", "Identity not found"},
        {"unknown object_id", std::string{kToken} + "&object_id=cccccccc-0000", kMetadata, 400,
         "invalid_request", "Identity not found"},
        {"unknown msi_res_id", std::string{kToken} + "&msi_res_id=/subscriptions/x", kMetadata, 400,
         "invalid_request", "Identity not found"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        auto response = get(row.target, row.fields);
        EXPECT_EQ(response.status, row.status);
        EXPECT_EQ(response.content_type, "application/json; charset=utf-8");
        auto body = json::parse(response.body, nullptr, false);
        ASSERT_TRUE(body.is_object()) << response.body;
        EXPECT_EQ(body.value("error", ""), row.error);
        EXPECT_NE(body.value("error_description", "").find(row.description), std::string::npos)
            << body.dump();
    }
    auto s = stats();
    EXPECT_EQ(s["rejected_requests"], rows.size());
    EXPECT_EQ(s["token_requests"], 0);
}

TEST_F(Emulator, TokenEndpointAnswersOnlyGet) {
    make({.user_assigned = {alpha()}});
    for (const char* method : {"POST", "PUT", "DELETE", "HEAD"}) {
        SCOPED_TRACE(method);
        auto response = get(std::string{kToken}, kMetadata, method);
        EXPECT_EQ(response.status, 405);
        EXPECT_EQ(header(response, "Allow"), "GET");
    }
    EXPECT_EQ(stats()["token_requests"], 0);
}

struct SelectRow {
    const char* name;
    std::string query;  ///< appended to kToken
    std::string expected_client_id;
};

TEST_F(Emulator, SelectsTheIdentityTheRequestNames) {
    make({.user_assigned = {alpha(), beta()}, .system_assigned = system()});
    auto upper = alpha().client_id;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](char c) { return static_cast<char>(std::toupper(c)); });
    std::string encoded_beta_res;
    for (char c : beta().resource_id) {
        encoded_beta_res += c == '/' ? std::string{"%2F"} : std::string{c};
    }
    const std::vector<SelectRow> rows = {
        {"none: system-assigned", "", system().client_id},
        {"client_id", "&client_id=" + beta().client_id, beta().client_id},
        {"client_id any case", "&client_id=" + upper, alpha().client_id},
        {"client_id of system-assigned", "&client_id=" + system().client_id, system().client_id},
        {"object_id given", "&object_id=" + beta().object_id, beta().client_id},
        {"msi_res_id", "&msi_res_id=" + alpha().resource_id, alpha().client_id},
        {"mi_res_id percent-encoded", "&mi_res_id=" + encoded_beta_res, beta().client_id},
        {"empty selector is absent", "&client_id=", system().client_id},
        {"unknown params ignored", "&bypass_cache=true&client_id=" + beta().client_id,
         beta().client_id},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        auto body = get_json(std::string{kToken} + row.query);
        EXPECT_EQ(body.value("client_id", ""), row.expected_client_id);
    }
    auto by_client = stats()["token_requests_by_client_id"];
    EXPECT_EQ(by_client[alpha().client_id], 2);
    EXPECT_EQ(by_client[beta().client_id], 4);
    EXPECT_EQ(by_client[system().client_id], 3);
}

TEST_F(Emulator, DerivedObjectIdSelectsAndIsStable) {
    make({.user_assigned = {alpha(), beta()}});
    auto first = get_json(std::string{kToken} + "&client_id=" + alpha().client_id);
    auto claims =
        json::parse(base64url_decode(split(first["access_token"].get<std::string>(), '.')[1]));
    auto oid = claims["oid"].get<std::string>();
    EXPECT_EQ(oid.size(), 36U);
    EXPECT_EQ(oid[14], '4');  // UUID version nibble
    auto again = get_json(std::string{kToken} + "&object_id=" + oid);
    EXPECT_EQ(again["client_id"], alpha().client_id);

    // Another handler (another run) derives the same object ID.
    EmulatorHandler other{clock_, {.user_assigned = {alpha()}}};
    Call call{"GET", std::string{kToken} + "&object_id=" + oid, kMetadata, ""};
    asio::co_spawn(
        ioc_, other.handle(call.request),
        [&](const std::exception_ptr&, HttpResponse r) { call.response = std::move(r); });
    poll();
    ASSERT_TRUE(call.response);
    EXPECT_EQ(call.response->status, 200);
}

TEST_F(Emulator, WithoutSelectorUsesTheOnlyUserAssignedIdentity) {
    make({.user_assigned = {beta()}});
    EXPECT_EQ(get_json(std::string{kToken})["client_id"], beta().client_id);
}

TEST_F(Emulator, WithoutSelectorAndSeveralIdentitiesAsksForOne) {
    make({.user_assigned = {alpha(), beta()}});
    auto body = get_json(std::string{kToken}, 400);
    EXPECT_EQ(body["error"], "invalid_request");
    EXPECT_EQ(body["error_description"],
              "Multiple user assigned identities exist, please specify the clientId / resourceId "
              "of the identity in the token request");
}

TEST_F(Emulator, WithoutAnyIdentityReportsIdentityNotFound) {
    make({});
    auto body = get_json(std::string{kToken}, 400);
    EXPECT_EQ(body["error_description"], "Identity not found");
}

// --- Success body and JWT ---------------------------------------------------------------

TEST_F(Emulator, SuccessBodyHasImdsShapeWithStringValues) {
    make({.user_assigned = {alpha()}, .token_lifetime = 3600s});
    auto response = get(std::string{kToken});
    ASSERT_EQ(response.status, 200);
    EXPECT_EQ(response.content_type, "application/json; charset=utf-8");
    auto body = json::parse(response.body);
    std::vector<std::string> keys;
    for (const auto& [key, value] : body.items()) {
        keys.push_back(key);
        EXPECT_TRUE(value.is_string()) << key;
    }
    EXPECT_EQ(keys,
              (std::vector<std::string>{"access_token", "client_id", "expires_in", "expires_on",
                                        "ext_expires_in", "not_before", "resource", "token_type"}));
    auto now = clock_.unix_seconds();
    EXPECT_EQ(body["expires_on"], std::to_string(now + 3600));
    EXPECT_EQ(body["not_before"], std::to_string(now));
    EXPECT_EQ(body["expires_in"], "3600");
    EXPECT_EQ(body["ext_expires_in"], "3600");
    EXPECT_EQ(body["resource"], "https://vault.azure.net");
    EXPECT_EQ(body["token_type"], "Bearer");
    EXPECT_EQ(body["client_id"], alpha().client_id);
}

TEST_F(Emulator, ResourceIsEchoedExactlyAfterDecoding) {
    make({.user_assigned = {alpha()}});
    const std::vector<std::pair<std::string, std::string>> rows = {
        {"https%3A%2F%2Fmanagement.azure.com%2F", "https://management.azure.com/"},
        {"api://my-app", "api://my-app"},
        {"a%22quoted%5C%22+x", "a\"quoted\\\" x"},
        {"ctrl%01char",
         "ctrl\x01"
         "char"},
    };
    for (const auto& [raw, decoded] : rows) {
        SCOPED_TRACE(raw);
        auto body =
            get_json("/metadata/identity/oauth2/token?resource=" + raw + "&api-version=2019-08-01");
        EXPECT_EQ(body["resource"], decoded);
        auto claims =
            json::parse(base64url_decode(split(body["access_token"].get<std::string>(), '.')[1]));
        EXPECT_EQ(claims["aud"], decoded);
    }
}

TEST_F(Emulator, AccessTokenIsAJwtWithIdentityClaims) {
    make({.user_assigned = {alpha(), beta()}, .token_lifetime = 86400s});
    auto body = get_json(std::string{kToken} + "&client_id=" + beta().client_id);
    auto parts = split(body["access_token"].get<std::string>(), '.');
    ASSERT_EQ(parts.size(), 3U);
    auto head = json::parse(base64url_decode(parts[0]));
    EXPECT_EQ(head, json::parse(R"({"typ":"JWT","alg":"RS256","kid":"emulator"})"));
    auto claims = json::parse(base64url_decode(parts[1]));
    EXPECT_EQ(claims["aud"], "https://vault.azure.net");
    EXPECT_EQ(claims["appid"], beta().client_id);
    EXPECT_EQ(claims["oid"], beta().object_id);
    EXPECT_EQ(claims["xms_mirid"], beta().resource_id);
    EXPECT_EQ(claims["iss"], "https://sts.windows.net/" + std::string{kTenantId} + "/");
    EXPECT_EQ(claims["tid"], kTenantId);
    auto now = clock_.unix_seconds();
    EXPECT_EQ(claims["iat"], now);
    EXPECT_EQ(claims["nbf"], now);
    EXPECT_EQ(claims["exp"], now + 86400);
    EXPECT_EQ(base64url_decode(parts[2]).size(), 32U);

    auto second = get_json(std::string{kToken} + "&client_id=" + beta().client_id);
    auto parts2 = split(second["access_token"].get<std::string>(), '.');
    EXPECT_NE(json::parse(base64url_decode(parts2[1]))["jti"], claims["jti"]);
    EXPECT_NE(parts2[2], parts[2]);
}

TEST_F(Emulator, TokenWithoutResourceIdHasNoMiridClaim) {
    make({.system_assigned = system()});
    auto body = get_json(std::string{kToken});
    auto claims =
        json::parse(base64url_decode(split(body["access_token"].get<std::string>(), '.')[1]));
    EXPECT_FALSE(claims.contains("xms_mirid"));
    EXPECT_EQ(claims["appid"], system().client_id);
}

TEST_F(Emulator, ExpiryFollowsTheClock) {
    make({.user_assigned = {alpha()}, .token_lifetime = 600s});
    auto before = get_json(std::string{kToken});
    clock_.advance(90s);
    auto after = get_json(std::string{kToken});
    EXPECT_EQ(std::stoll(after["expires_on"].get<std::string>()) -
                  std::stoll(before["expires_on"].get<std::string>()),
              90);
}

// --- Faults -----------------------------------------------------------------------------

TEST_F(Emulator, ScriptedFaultsApplyInOrderThenNormalAnswers) {
    make({.user_assigned = {alpha()},
          .faults = {Fault{.status = 500}, Fault{.status = 429, .retry_after = 2s},
                     Fault{.status = 404}, Fault{.reset = true}, Fault{.status = 410}}});
    auto first = get(std::string{kToken});
    EXPECT_EQ(first.status, 500);
    EXPECT_EQ(json::parse(first.body)["error"], "unknown");
    EXPECT_TRUE(header(first, "Retry-After").empty());

    auto second = get(std::string{kToken});
    EXPECT_EQ(second.status, 429);
    EXPECT_EQ(header(second, "Retry-After"), "2");

    EXPECT_EQ(get(std::string{kToken}).status, 404);
    auto reset = get(std::string{kToken});
    EXPECT_TRUE(reset.reset);
    EXPECT_EQ(get(std::string{kToken}).status, 410);
    EXPECT_EQ(get(std::string{kToken}).status, 200);
    EXPECT_EQ(get(std::string{kToken}).status, 200);

    auto s = stats();
    EXPECT_EQ(s["token_requests"], 7);
    EXPECT_EQ(s["faults_injected"], 5);
    EXPECT_EQ(s["tokens_issued"], 2);
    EXPECT_EQ(s["pending_faults"], 0);
}

TEST_F(Emulator, RejectedRequestsDoNotConsumeFaults) {
    make({.user_assigned = {alpha()}, .faults = {Fault{.status = 503}}});
    EXPECT_EQ(get(std::string{kToken}, {}).status, 400);  // no Metadata header
    EXPECT_EQ(get(std::string{kToken} + "&client_id=nobody").status, 400);
    EXPECT_EQ(get(std::string{kToken}).status, 503);
    EXPECT_EQ(get(std::string{kToken}).status, 200);
}

TEST_F(Emulator, FaultBodyReplacesTheAnswer) {
    make({.user_assigned = {alpha()},
          .faults = {Fault{.status = 200, .body = std::string{"not json"}},
                     Fault{.status = 200, .body = std::string{R"({"access_token":"x"})"}}}});
    EXPECT_EQ(get(std::string{kToken}).body, "not json");
    EXPECT_EQ(get(std::string{kToken}).body, R"({"access_token":"x"})");
    EXPECT_EQ(stats()["tokens_issued"], 0);
}

TEST_F(Emulator, LatencyDelaysTheAnswerUntilTheClockMoves) {
    make({.user_assigned = {alpha()}, .latency = 300ms});
    auto call = start(std::string{kToken});
    EXPECT_FALSE(call->response);
    EXPECT_EQ(stats()["in_flight_token_requests"], 1);
    clock_.advance(299ms);
    poll();
    EXPECT_FALSE(call->response);
    clock_.advance(1ms);
    poll();
    ASSERT_TRUE(call->response);
    EXPECT_EQ(call->response->status, 200);
    EXPECT_EQ(stats()["in_flight_token_requests"], 0);
}

TEST_F(Emulator, FaultLatencyAddsToBaseLatencyAndAppliesToErrors) {
    make({.user_assigned = {alpha()},
          .latency = 100ms,
          .faults = {Fault{.status = 500, .latency = 200ms}}});
    auto call = start(std::string{kToken});
    clock_.advance(299ms);
    poll();
    EXPECT_FALSE(call->response);
    clock_.advance(1ms);
    poll();
    ASSERT_TRUE(call->response);
    EXPECT_EQ(call->response->status, 500);
}

TEST_F(Emulator, HangHoldsTheRequestForTenMinutesThenResets) {
    make({.user_assigned = {alpha()}, .faults = {Fault{.hang = true}}});
    auto call = start(std::string{kToken});
    clock_.advance(kHangLimit - 1s);
    poll();
    EXPECT_FALSE(call->response);
    // Other requests are not held up by the hanging one.
    EXPECT_EQ(get(std::string{kToken}).status, 200);
    clock_.advance(1s);
    poll();
    ASSERT_TRUE(call->response);
    EXPECT_TRUE(call->response->reset);
}

TEST_F(Emulator, StopEndsHangsAndLaterWaitsAtOnce) {
    make({.user_assigned = {alpha()}, .latency = 50ms, .faults = {Fault{.hang = true}}});
    auto hanging = start(std::string{kToken});
    auto slow = start(std::string{kToken});
    EXPECT_EQ(clock_.waiters(), 2U);
    handler_->stop();
    poll();
    ASSERT_TRUE(hanging->response);
    EXPECT_TRUE(hanging->response->reset);
    ASSERT_TRUE(slow->response);
    EXPECT_TRUE(slow->response->reset);
    EXPECT_EQ(clock_.waiters(), 0U);

    auto late = start(std::string{kToken});
    ASSERT_TRUE(late->response);
    EXPECT_TRUE(late->response->reset);
    EXPECT_EQ(stats()["in_flight_token_requests"], 0);
}

TEST_F(Emulator, CallerCancellationEndsAHang) {
    make({.user_assigned = {alpha()}, .faults = {Fault{.hang = true}}});
    asio::cancellation_signal signal;
    auto call = start(std::string{kToken}, kMetadata, "GET", {}, signal.slot());
    EXPECT_FALSE(call->response);
    signal.emit(asio::cancellation_type::terminal);
    poll();
    ASSERT_TRUE(call->response);
    EXPECT_TRUE(call->response->reset);
    EXPECT_EQ(stats()["in_flight_token_requests"], 0);
}

TEST_F(Emulator, CountsConcurrentTokenRequestsWhileTheyWait) {
    make({.user_assigned = {alpha(), beta()}, .latency = 100ms});
    std::vector<std::shared_ptr<Call>> calls;
    calls.reserve(3);
    for (int i = 0; i < 3; ++i) {
        calls.push_back(start(std::string{kToken} + "&client_id=" + alpha().client_id));
    }
    auto s = stats();
    EXPECT_EQ(s["in_flight_token_requests"], 3);
    EXPECT_EQ(s["max_concurrent_token_requests"], 3);
    clock_.advance(100ms);
    poll();
    for (const auto& call : calls) {
        ASSERT_TRUE(call->response);
        EXPECT_EQ(call->response->status, 200);
    }
    calls.push_back(start(std::string{kToken} + "&client_id=" + alpha().client_id));
    s = stats();
    EXPECT_EQ(s["in_flight_token_requests"], 1);
    EXPECT_EQ(s["max_concurrent_token_requests"], 3);
    EXPECT_EQ(s["token_requests"], 4);
}

TEST_F(Emulator, ImmediateAnswersCountAsOneConcurrentRequest) {
    make({.user_assigned = {alpha()}});
    get(std::string{kToken});
    get(std::string{kToken});
    auto s = stats();
    EXPECT_EQ(s["max_concurrent_token_requests"], 1);
    EXPECT_EQ(s["in_flight_token_requests"], 0);
}

// --- Control API ------------------------------------------------------------------------

TEST_F(Emulator, ControlApiReplacesTheFaultSequence) {
    make({.user_assigned = {alpha()}, .faults = {Fault{.status = 404}}});
    auto answer = get_json("/_emulator/faults", 200, {}, "POST",
                           R"({"sequence":[{"status":429,"retry_after":7},{"status":500},
                               {"reset":true},{"status":429},{"status":429,"retry_after":null}]})");
    EXPECT_EQ(answer["pending_faults"], 5);
    EXPECT_EQ(stats()["pending_faults"], 5);

    auto throttled = get(std::string{kToken});
    EXPECT_EQ(throttled.status, 429);
    EXPECT_EQ(header(throttled, "Retry-After"), "7");
    EXPECT_EQ(get(std::string{kToken}).status, 500);
    EXPECT_TRUE(get(std::string{kToken}).reset);
    EXPECT_EQ(header(get(std::string{kToken}), "Retry-After"), "1");
    auto bare = get(std::string{kToken});
    EXPECT_EQ(bare.status, 429);
    EXPECT_TRUE(header(bare, "Retry-After").empty());
    EXPECT_EQ(get(std::string{kToken}).status, 200);
}

TEST_F(Emulator, ControlApiSetsBaseLatencyAndPerFaultLatency) {
    make({.user_assigned = {alpha()}});
    get_json("/_emulator/faults", 200, {}, "POST",
             R"({"sequence":[{"latency_ms":300}],"latency_ms":20})");
    auto first = start(std::string{kToken});
    clock_.advance(319ms);
    poll();
    EXPECT_FALSE(first->response);
    clock_.advance(1ms);
    poll();
    ASSERT_TRUE(first->response);
    EXPECT_EQ(first->response->status, 200);

    auto second = start(std::string{kToken});
    EXPECT_FALSE(second->response);
    clock_.advance(20ms);
    poll();
    EXPECT_TRUE(second->response);
}

TEST_F(Emulator, ControlApiRejectsMalformedScripts) {
    make({.user_assigned = {alpha()}, .faults = {Fault{.status = 503}}});
    const std::vector<std::string> bodies = {
        "",
        "not json",
        "[]",
        R"({})",
        R"({"sequence":{}})",
        R"({"sequence":[{"status":"500"}]})",
        R"({"sequence":[{"status":99}]})",
        R"({"sequence":[{"status":600}]})",
        R"({"sequence":[{"stauts":500}]})",
        R"({"sequence":[{"hang":true,"reset":true}]})",
        R"({"sequence":[{"retry_after":-1}]})",
        R"({"sequence":[{"latency_ms":1.5}]})",
        R"({"sequence":[1]})",
        R"({"sequence":[],"latency_ms":-5})",
        R"({"sequence":[],"extra":1})",
    };
    for (const auto& body : bodies) {
        SCOPED_TRACE(body);
        auto answer = get_json("/_emulator/faults", 400, {}, "POST", body);
        EXPECT_EQ(answer["error"], "invalid_request");
    }
    EXPECT_EQ(get(std::string{kToken}).status, 503) << "a rejected script must change nothing";
}

TEST_F(Emulator, ControlApiChecksMethods) {
    make({});
    EXPECT_EQ(get("/_emulator/faults", {}, "GET").status, 405);
    EXPECT_EQ(get("/_emulator/reset", {}, "GET").status, 405);
    EXPECT_EQ(get("/_emulator/stats", {}, "POST").status, 405);
    EXPECT_EQ(get("/_emulator/nothing", {}).status, 404);
}

TEST_F(Emulator, ResetClearsFaultsCountersAndRuntimeLatency) {
    make({.user_assigned = {alpha()}, .faults = {Fault{.status = 500}, Fault{.status = 500}}});
    EXPECT_EQ(get(std::string{kToken}).status, 500);
    get(std::string{kToken}, {});
    get_json("/_emulator/faults", 200, {}, "POST",
             R"({"sequence":[{"status":500}],"latency_ms":9})");
    get_json("/_emulator/reset", 200, {}, "POST");
    auto s = stats();
    EXPECT_EQ(s["token_requests"], 0);
    EXPECT_EQ(s["rejected_requests"], 0);
    EXPECT_EQ(s["faults_injected"], 0);
    EXPECT_EQ(s["pending_faults"], 0);
    EXPECT_EQ(s["max_concurrent_token_requests"], 0);
    EXPECT_EQ(s["token_requests_by_client_id"][alpha().client_id], 0);
    EXPECT_EQ(get(std::string{kToken}).status, 200) << "no latency, no faults after reset";
}

TEST_F(Emulator, StatsReportEveryCounter) {
    make({.user_assigned = {alpha(), beta()}});
    get(std::string{kToken} + "&client_id=" + alpha().client_id);
    get(std::string{kToken});  // several identities, none named: rejected
    get("/metadata/instance");
    get("/unknown", {});
    auto s = stats();
    EXPECT_EQ(s["token_requests"], 1);
    EXPECT_EQ(s["tokens_issued"], 1);
    EXPECT_EQ(s["instance_requests"], 1);
    EXPECT_EQ(s["rejected_requests"], 2);
    EXPECT_EQ(s["token_requests_by_client_id"],
              json({{alpha().client_id, 1}, {beta().client_id, 0}}));
    for (const char* key : {"faults_injected", "in_flight_token_requests",
                            "max_concurrent_token_requests", "pending_faults"}) {
        EXPECT_TRUE(s.contains(key)) << key;
    }
}

// --- Instance metadata and other paths --------------------------------------------------

TEST_F(Emulator, InstanceMetadataIsARealisticDocument) {
    make({});
    auto doc = get_json("/metadata/instance?api-version=2021-02-01");
    for (const char* key :
         {"vmId", "name", "location", "subscriptionId", "resourceGroupName", "vmSize"}) {
        EXPECT_TRUE(doc["compute"][key].is_string()) << key;
    }
    EXPECT_EQ(doc["network"]["interface"][0]["ipv4"]["ipAddress"][0]["privateIpAddress"],
              "10.224.0.4");
    EXPECT_EQ(stats()["instance_requests"], 1);
}

TEST_F(Emulator, InstanceMetadataNavigatesPaths) {
    make({});
    auto vm_id = get_json("/metadata/instance")["compute"]["vmId"].get<std::string>();
    auto text = get("/metadata/instance/compute/vmId?api-version=2021-02-01&format=text");
    EXPECT_EQ(text.status, 200);
    EXPECT_EQ(text.content_type, "text/plain; charset=utf-8");
    EXPECT_EQ(text.body, vm_id);
    EXPECT_EQ(get_json("/metadata/instance/network/interface/0/ipv4/ipAddress/0"),
              json({{"privateIpAddress", "10.224.0.4"}, {"publicIpAddress", ""}}));
    auto listing = get("/metadata/instance/network?format=text");
    EXPECT_EQ(listing.body, "interface/");
    EXPECT_EQ(get("/metadata/instance/compute/nothing").status, 404);
    EXPECT_EQ(get("/metadata/instance/network/interface/7").status, 404);
    EXPECT_EQ(get("/metadata/instance/network/interface/x").status, 404);
}

TEST_F(Emulator, InstanceMetadataFollowsTheHeaderRules) {
    make({});
    EXPECT_EQ(get_json("/metadata/instance", 400, {})["error_description"],
              "Required metadata header not specified");
    EXPECT_EQ(
        get("/metadata/instance", {{"Metadata", "true"}, {"X-Forwarded-For", "1.2.3.4"}}).status,
        400);
    EXPECT_EQ(get("/metadata/instance", kMetadata, "POST").status, 405);
    EXPECT_EQ(stats()["instance_requests"], 0);
}

TEST_F(Emulator, UnknownPathsAnswer404Json) {
    make({});
    for (const char* target : {"/", "/metadata/identity/oauth2/token/extra", "/metadata/instancex",
                               "/metadata/identity/oauth2/tokens?resource=x"}) {
        SCOPED_TRACE(target);
        EXPECT_EQ(get_json(target, 404)["error"], "not_found");
    }
}

// --- Fault JSON -------------------------------------------------------------------------

TEST(EmulatorFaultJson, ParsesEveryShape) {
    struct Row {
        std::string text;
        Fault expected;
    };
    const std::vector<Row> rows = {
        {R"({})", Fault{}},
        {R"({"status":500})", Fault{.status = 500}},
        {R"({"status":429})", Fault{.status = 429, .retry_after = 1s}},
        {R"({"status":429,"retry_after":2})", Fault{.status = 429, .retry_after = 2s}},
        {R"({"status":429,"retry_after":null})", Fault{.status = 429}},
        {R"({"status":503,"retry_after":30})", Fault{.status = 503, .retry_after = 30s}},
        {R"({"hang":true})", Fault{.hang = true}},
        {R"({"reset":true})", Fault{.reset = true}},
        {R"({"latency_ms":300})", Fault{.latency = 300ms}},
        {R"({"status":200,"body":"{}"})", Fault{.body = std::string{"{}"}}},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.text);
        std::string error;
        auto fault = fault_from_json_text(row.text, error);
        ASSERT_TRUE(fault) << error;
        EXPECT_EQ(*fault, row.expected);
    }
    EXPECT_TRUE(Fault{}.is_normal());
    EXPECT_FALSE((Fault{.latency = 1ms}).is_normal());
}

TEST(EmulatorFaultJson, RejectsWithAReason) {
    std::string error;
    EXPECT_FALSE(fault_from_json_text(R"({"status":500,"hnag":true})", error));
    EXPECT_NE(error.find("hnag"), std::string::npos);
    EXPECT_FALSE(fault_from_json_text("{", error));
    EXPECT_FALSE(fault_from_json_text(R"({"body":1})", error));
}

}  // namespace
}  // namespace nmid::emulator
