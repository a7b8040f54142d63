#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>
#include <string>

#include "nmid/token/token_source.hpp"

namespace nmid {

void throw_exception_from_error(const FetchError& e, const boost::source_location& loc) {
    // The upstream body stays out of the message: exceptions end up in logs.
    std::string what = "token fetch failed";
    if (e.upstream_status != 0) {
        what += " (upstream status " + std::to_string(e.upstream_status) + ")";
    }
    boost::throw_exception(boost::system::system_error(make_error_code(e.code), what), loc);
}

}  // namespace nmid
