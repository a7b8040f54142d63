#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "nmid/core/errc.hpp"

namespace nmid::kube {

/// Where the service account's files are mounted in a pod.
inline constexpr std::string_view kServiceAccountDir =
    "/var/run/secrets/kubernetes.io/serviceaccount";

/// How to reach and authenticate to the API server, from the pod's service account
/// (in-cluster) or a kubeconfig file. File paths are absolute (kubeconfig paths are resolved
/// against the kubeconfig's directory). Loading checks the shape only; files named here are
/// read by the factories (make_api_server_client), which report unreadable ones.
struct KubeConfig {
    std::string server{};   ///< base URL, e.g. `https://10.0.0.1:443` (may carry a path prefix)
    std::string ca_pem{};   ///< trusted CAs as PEM data (certificate-authority-data, decoded)
    std::string ca_file{};  ///< trusted CAs as a file (in-cluster ca.crt, certificate-authority)
    bool insecure_skip_tls_verify = false;
    std::string tls_server_name{};  ///< verified name when not the server URL's host
    /// Bearer token file, re-read periodically (in-cluster token, kubeconfig tokenFile).
    /// Wins over `token` when both are set (as in client-go).
    std::string token_file{};
    std::string token{};             ///< static bearer token (kubeconfig `token`)
    std::string client_cert_pem{};   ///< client-certificate-data (decoded)
    std::string client_cert_file{};  ///< client-certificate
    std::string client_key_pem{};    ///< client-key-data (decoded)
    std::string client_key_file{};   ///< client-key
    std::string namespace_name{};    ///< the pod's namespace, or the context's; "default" if none
    std::string source{};            ///< "in-cluster" or the kubeconfig path (for logs)
};

/// Inputs of the in-cluster configuration; tests point `service_account_dir` at a temp dir.
struct InClusterEnv {
    std::string service_host{};  ///< KUBERNETES_SERVICE_HOST
    std::string service_port{};  ///< KUBERNETES_SERVICE_PORT
    std::string service_account_dir{kServiceAccountDir};
};

/// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT of this process, the default directory.
[[nodiscard]] InClusterEnv in_cluster_env_from_process();

/// In-cluster configuration (client-go InClusterConfig): `https://host:port` (IPv6 in
/// brackets), `<dir>/token` as the token file, `<dir>/ca.crt` as the CA file, `<dir>/namespace`
/// (trimmed; "default" when absent). Errors: Errc::invalid_config with `error` saying why
/// (not in a cluster: a variable is empty; bad port; token or ca.crt missing).
[[nodiscard]] Result<KubeConfig> load_in_cluster(const InClusterEnv& env, std::string& error);

/// Parses kubeconfig text (YAML, or JSON) for `context` (empty: `current-context`): the
/// context's cluster (server, certificate-authority[-data], insecure-skip-tls-verify,
/// tls-server-name) and user (token, tokenFile, client-certificate[-data], client-key[-data]).
/// Relative paths are resolved against `base_dir`. Pure (no file is read), never throws.
/// Errors: Errc::invalid_config with `error` naming the missing or bad entry (no context,
/// unknown cluster or user, no server, bad base64, certificate without key, unsupported
/// exec/auth-provider/basic-auth users, YAML syntax).
[[nodiscard]] Result<KubeConfig> parse_kubeconfig(std::string_view text,
                                                  const std::filesystem::path& base_dir,
                                                  std::string& error,
                                                  std::string_view context = {});

/// Reads and parses the kubeconfig at `path` (see parse_kubeconfig). Blocking file read: at
/// start-up only.
[[nodiscard]] Result<KubeConfig> load_kubeconfig(const std::string& path, std::string& error,
                                                 std::string_view context = {});

/// nmid's choice of configuration: `kubeconfig_flag` (--kubeconfig) when set, else the first
/// path of KUBECONFIG when set, else in-cluster from the process environment.
[[nodiscard]] Result<KubeConfig> load_kube_config(const std::string& kubeconfig_flag,
                                                  std::string& error);

}  // namespace nmid::kube
