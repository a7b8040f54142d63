#pragma once

// Response heads, socket-free: the status line and fields written before a body, and the
// IMDS-shaped JSON error answers the listener gives itself. Private to the http module.

#include <string>
#include <string_view>

#include "nmid/http/message.hpp"

namespace nmid::http::detail {

/// Status line, Content-Type, Content-Length, extra fields, Connection: the head, sized first
/// and then filled (`out` keeps its size between responses, so the same answer again is
/// written over the previous one without clearing). Returns the body to send after it (none
/// for HEAD and for statuses without a body): written from the response itself, not copied.
std::string_view serialize(const HttpResponse& r, bool head, bool keep_alive, unsigned version,
                           std::string& out);

/// `{"error":"<error>","error_description":"<description>"}` with `status`, closing the
/// connection. `error` and `description` are written as given (callers pass fixed text).
HttpResponse error_response(int status, std::string_view error, std::string_view description);

}  // namespace nmid::http::detail
