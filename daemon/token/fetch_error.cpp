#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>
#include <string>
#include <utility>

#include "nmid/token/token_source.hpp"

namespace nmid {

FetchError fetch_error(Errc code, int status, std::string body, std::chrono::seconds retry_after) {
    constexpr std::size_t kMaxErrorBody = 4096;
    FetchError e;
    e.code = code;
    e.upstream_status = status;
    if (body.size() > kMaxErrorBody) {
        body.resize(kMaxErrorBody);
    }
    e.upstream_body = std::move(body);
    e.retry_after = retry_after;
    return e;
}

void throw_exception_from_error(const FetchError& e, const boost::source_location& loc) {
    // The upstream body stays out of the message: exceptions end up in logs.
    std::string what = "token fetch failed";
    if (e.upstream_status != 0) {
        what += " (upstream status " + std::to_string(e.upstream_status) + ")";
    }
    boost::throw_exception(boost::system::system_error(make_error_code(e.code), what), loc);
}

}  // namespace nmid
