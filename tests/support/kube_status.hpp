#pragma once

// A kube-apiserver `Status` failure answer, for the fakes of API server subresources.

#include <nlohmann/json.hpp>
#include <string>

#include "support/fake_http_server.hpp"

namespace nmid::test {

inline FakeResponse kube_status(int code, const std::string& reason, const std::string& message) {
    return FakeResponse{.status = code,
                        .headers = {{"Content-Type", "application/json"}},
                        .body = nlohmann::json{
                            {"kind", "Status"},
                            {"apiVersion", "v1"},
                            {"status", "Failure"},
                            {"message", message},
                            {"reason", reason},
                            {"code",
                             code}}.dump()};
}

}  // namespace nmid::test
