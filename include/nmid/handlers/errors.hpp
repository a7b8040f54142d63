#pragma once

#include <chrono>
#include <string_view>

#include "nmid/config/settings.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/http/message.hpp"

namespace nmid::handlers {

/// Where an error is answered: NMI answers identity-lookup failures on `/host/token` with 404
/// even when `--set-retry-after-header` is on.
enum class Endpoint { token, host_token, other };

/// The only mapping from nmid errors to HTTP (house rule R4). `description` becomes
/// `error_description` (NMI's texts are kept there); `retry_after` overrides the
/// Retry-After value when the error carries one from upstream.
[[nodiscard]] http::HttpResponse error_response(Errc code, std::string_view description,
                                                const HandlerSettings& settings,
                                                Endpoint endpoint = Endpoint::token,
                                                std::chrono::seconds retry_after = {});

/// error_response() with another `error` code in the body: an upstream's own (Azure AD's
/// `invalid_request` with its AADSTS description) so the pod sees what Azure AD said.
[[nodiscard]] http::HttpResponse error_response_as(Errc code, std::string_view error,
                                                   std::string_view description,
                                                   const HandlerSettings& settings,
                                                   std::chrono::seconds retry_after = {});

/// The HTTP status `error_response` uses for `code` (for tests and metrics).
[[nodiscard]] int status_for(Errc code, const HandlerSettings& settings,
                             Endpoint endpoint = Endpoint::token);

}  // namespace nmid::handlers
