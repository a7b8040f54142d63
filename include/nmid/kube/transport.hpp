#pragma once

// The `kube` transport: ApiServerClient and KubeletClient over net::HttpClient (HTTPS with the
// cluster's CA, bearer tokens re-read from their file, keep-alive). `app` builds them with the
// factories below; consumers see only nmid/kube/client.hpp.

#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <memory>
#include <string>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/kube/client.hpp"
#include "nmid/kube/config.hpp"
#include "nmid/kube/token_provider.hpp"

namespace nmid::kube {

/// API server client knobs (the address and credentials come from KubeConfig).
struct ApiServerClientSettings {
    Millis connect_timeout{5'000};  ///< TCP connect plus TLS handshake
    std::size_t pool_size = 4;      ///< idle keep-alive connections (watches hold their own)
    std::size_t max_response_body = std::size_t{64} * 1024 * 1024;  ///< get(), error bodies
    std::size_t max_line = std::size_t{16} * 1024 * 1024;           ///< one watch event
    Seconds token_reread_interval{60};                              ///< token file
    std::string user_agent{"nmid"};
};

/// Kubelet client (metrics-server's flag names in brackets).
struct KubeletClientSettings {
    std::string url{};  ///< --kubelet-url: `https://<node IP>:10250` or `http://<node IP>:10255`
    /// --kubelet-ca-file. Empty with `ca_pem` empty too: the system's CAs (so `app` should
    /// pass the cluster CA, KubeConfig::ca_file, when the flag is not given).
    std::string ca_file{};
    std::string ca_pem{};
    bool insecure_skip_tls_verify = false;  ///< --kubelet-insecure-tls
    std::string tls_server_name{};          ///< verified name; default the URL's host
    Millis connect_timeout{2'000};
    std::size_t pool_size = 2;
    std::size_t max_response_body = std::size_t{64} * 1024 * 1024;
    std::string user_agent{"nmid"};
};

/// The bearer-token source a KubeConfig names: a FileTokenProvider for `token_file` (wins),
/// a StaticTokenProvider for `token`, null when neither (client certificate or no auth).
/// The token file is read once here. Errors: Errc::invalid_config when the token file cannot
/// be read (message in `error`).
[[nodiscard]] Result<std::shared_ptr<TokenProvider>> make_token_provider(const KubeConfig& config,
                                                                         const Clock& clock,
                                                                         Seconds reread_interval,
                                                                         std::string& error);

/// ApiServerClient for `config`: TLS settings from its CA, client certificate and server
/// name; the bearer token from make_token_provider(config, clock, ...). Requests carry
/// `Authorization: Bearer …` (when a token exists), `Accept: application/json` and
/// `User-Agent`; targets are appended to the server URL's path prefix. A 401 answer makes
/// the next request re-read the token file. `clock` must outlive the client.
/// Errors: Errc::invalid_config (bad server URL, unreadable CA/certificate/key/token file;
/// the reason in `error`).
[[nodiscard]] Result<std::unique_ptr<ApiServerClient>> make_api_server_client(
    const boost::asio::any_io_executor& executor, const KubeConfig& config, const Clock& clock,
    const ApiServerClientSettings& settings, std::string& error);

/// As above with a token provider of the caller's (shared with the kubelet client, or a fake).
/// `token` may be null (no Authorization header); the KubeConfig's own token fields are then
/// ignored.
[[nodiscard]] Result<std::unique_ptr<ApiServerClient>> make_api_server_client(
    const boost::asio::any_io_executor& executor, const KubeConfig& config,
    std::shared_ptr<TokenProvider> token, const ApiServerClientSettings& settings,
    std::string& error);

/// KubeletClient for `settings.url` (GET `<url path>/pods`), with `token` as bearer (null: no
/// Authorization header, e.g. the read-only port). TLS when the URL is https.
/// Errors: Errc::invalid_config (bad URL, unreadable CA file; the reason in `error`).
[[nodiscard]] Result<std::unique_ptr<KubeletClient>> make_kubelet_client(
    const boost::asio::any_io_executor& executor, const KubeletClientSettings& settings,
    std::shared_ptr<TokenProvider> token, std::string& error);

}  // namespace nmid::kube
