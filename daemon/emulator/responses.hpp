#pragma once

// What the emulator's route files (handler.cpp, metadata_routes.cpp) answer with (private).

#include <string>
#include <string_view>
#include <utility>

#include "nmid/core/json.hpp"
#include "nmid/http/message.hpp"

namespace nmid::emulator {

inline constexpr std::string_view kJson = "application/json; charset=utf-8";
inline constexpr std::string_view kMetadataMissing = "Required metadata header not specified";
inline constexpr std::string_view kForwardedFor = "X-Forwarded-For header is not allowed";

inline http::HttpResponse json_response(int status, std::string body) {
    http::HttpResponse response;
    response.status = status;
    response.content_type = kJson;
    response.body = std::move(body);
    return response;
}

inline http::HttpResponse reset_response() {
    http::HttpResponse response;
    response.reset = true;
    return response;
}

inline http::HttpResponse method_not_allowed(std::string_view allow) {
    auto response =
        json_response(405, error_json("invalid_request", "The request method is not allowed"));
    response.headers.emplace_back("Allow", std::string{allow});
    return response;
}

}  // namespace nmid::emulator
