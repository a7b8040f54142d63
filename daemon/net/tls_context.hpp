#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>

#include "nmid/net/http_client.hpp"

namespace nmid::net::detail {

/// Client TLS context from `tls`: TLS 1.2 or newer, trust anchors, client certificate, and the
/// verification mode (name verification is set per connection). Throws std::invalid_argument
/// with a readable reason when material cannot be loaded (start-up only).
[[nodiscard]] std::shared_ptr<boost::asio::ssl::context> make_tls_context(const TlsSettings& tls);

}  // namespace nmid::net::detail
