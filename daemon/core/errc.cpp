#include "nmid/core/errc.hpp"

#include <string>

namespace nmid {
namespace {

class ErrcCategory final : public boost::system::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "nmid"; }
    [[nodiscard]] std::string message(int ev) const override {
        return std::string{to_string(static_cast<Errc>(ev))};
    }
};

}  // namespace

const boost::system::error_category& errc_category() noexcept {
    static const ErrcCategory category;
    return category;
}

std::string_view to_string(Errc e) noexcept {
    switch (e) {
        case Errc::ok:
            return "ok";
        case Errc::metadata_header_missing:
            return "metadata_header_missing";
        case Errc::forwarded_for_present:
            return "forwarded_for_present";
        case Errc::resource_missing:
            return "resource_missing";
        case Errc::invalid_token_path:
            return "invalid_token_path";
        case Errc::bad_request:
            return "bad_request";
        case Errc::remote_address_invalid:
            return "remote_address_invalid";
        case Errc::not_loopback:
            return "not_loopback";
        case Errc::host_headers_missing:
            return "host_headers_missing";
        case Errc::instance_blocked:
            return "instance_blocked";
        case Errc::path_not_allowed:
            return "path_not_allowed";
        case Errc::path_not_found:
            return "path_not_found";
        case Errc::method_not_allowed:
            return "method_not_allowed";
        case Errc::pod_not_found:
            return "pod_not_found";
        case Errc::pod_ip_ambiguous:
            return "pod_ip_ambiguous";
        case Errc::pod_source_failed:
            return "pod_source_failed";
        case Errc::no_binding:
            return "no_binding";
        case Errc::identity_not_found:
            return "identity_not_found";
        case Errc::identity_unsupported:
            return "identity_unsupported";
        case Errc::upstream_refused:
            return "upstream_refused";
        case Errc::upstream_throttled:
            return "upstream_throttled";
        case Errc::upstream_unavailable:
            return "upstream_unavailable";
        case Errc::upstream_bad_payload:
            return "upstream_bad_payload";
        case Errc::timeout:
            return "timeout";
        case Errc::cancelled:
            return "cancelled";
        case Errc::not_ready:
            return "not_ready";
        case Errc::overloaded:
            return "overloaded";
        case Errc::parse_error:
            return "parse_error";
        case Errc::io_error:
            return "io_error";
        case Errc::invalid_config:
            return "invalid_config";
        case Errc::pod_over_limit:
            return "pod_over_limit";
    }
    return "unknown";
}

}  // namespace nmid
