#include "nmid/kube/config.hpp"

#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "nmid/kube/url.hpp"

namespace nmid::kube {

namespace {

constexpr std::size_t kMaxKubeconfig = std::size_t{4} * 1024 * 1024;

std::string trim(std::string_view s) {
    const auto is_space = [](char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
    };
    while (!s.empty() && is_space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_space(s.back())) {
        s.remove_suffix(1);
    }
    return std::string{s};
}

/// Standard base64 (RFC 4648 section 4) with or without padding; whitespace ignored (kubeconfig
/// writers wrap long values). False on any other byte.
bool base64_decode(std::string_view in, std::string& out) {
    static constexpr std::array<signed char, 256> kTable = [] {
        std::array<signed char, 256> t{};
        t.fill(-1);
        constexpr std::string_view kAlphabet =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
            t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<signed char>(i);
        }
        return t;
    }();
    out.clear();
    std::uint32_t acc = 0;
    int bits = 0;
    bool padding = false;
    for (const char c : in) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            continue;
        }
        if (c == '=') {
            padding = true;
            continue;
        }
        const signed char v = kTable[static_cast<unsigned char>(c)];
        if (v < 0 || padding) {
            return false;
        }
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    // 6 leftover bits cannot come from whole bytes.
    return bits < 6;
}

std::string in_quotes(std::string_view s) {
    // Appended, not `"\"" + std::string{s} + "\""`: at -O3 g++ 12 inlines that operator+'s
    // insert at the front into a memcpy it then reports as overlapping (-Werror=restrict), a
    // false positive (GCC bug 105651).
    std::string quoted;
    quoted.reserve(s.size() + 2);
    quoted.append(1, '"').append(s).append(1, '"');
    return quoted;
}

/// The `section` entry (`clusters`, `users`, `contexts`) named `name`: its inner map
/// (`cluster`, `user`, `context`), or an undefined node.
YAML::Node find_named(const YAML::Node& root, const char* section, const char* inner,
                      const std::string& name) {
    const YAML::Node list = root[section];
    if (!list || !list.IsSequence()) {
        return YAML::Node{YAML::NodeType::Undefined};
    }
    for (const auto& entry : list) {
        if (entry.IsMap() && entry["name"] && entry["name"].IsScalar() &&
            entry["name"].Scalar() == name) {
            const YAML::Node value = entry[inner];
            return value ? value : YAML::Node{YAML::NodeType::Map};
        }
    }
    return YAML::Node{YAML::NodeType::Undefined};
}

std::string scalar(const YAML::Node& map, const char* key) {
    const YAML::Node value = map[key];
    if (!value || value.IsNull()) {
        return {};
    }
    return value.as<std::string>();  // a map or list here throws: reported as malformed
}

std::string resolve(const std::filesystem::path& base, const std::string& file) {
    if (file.empty()) {
        return {};
    }
    const std::filesystem::path p{file};
    return p.is_absolute() ? file : (base / p).lexically_normal().string();
}

bool decode_field(const YAML::Node& map, const char* key, std::string& out, std::string& error,
                  const std::string& owner) {
    const std::string encoded = scalar(map, key);
    if (encoded.empty()) {
        return true;
    }
    if (!base64_decode(encoded, out) || out.empty()) {
        error = owner + ": " + key + " is not valid base64";
        return false;
    }
    return true;
}

Result<KubeConfig> parse_document(const YAML::Node& root, const std::filesystem::path& base_dir,
                                  std::string& error, std::string_view wanted_context) {
    if (!root.IsMap()) {
        error = "kubeconfig: not a YAML/JSON map";
        return Errc::invalid_config;
    }
    std::string context_name{wanted_context};
    if (context_name.empty()) {
        context_name = scalar(root, "current-context");
        if (context_name.empty()) {
            error = "kubeconfig: current-context is not set";
            return Errc::invalid_config;
        }
    }
    const YAML::Node context = find_named(root, "contexts", "context", context_name);
    if (!context) {
        error = "kubeconfig: context " + in_quotes(context_name) + " not found";
        return Errc::invalid_config;
    }
    const std::string cluster_name = scalar(context, "cluster");
    if (cluster_name.empty()) {
        error = "kubeconfig: context " + in_quotes(context_name) + " names no cluster";
        return Errc::invalid_config;
    }
    const YAML::Node cluster = find_named(root, "clusters", "cluster", cluster_name);
    const std::string cluster_owner = "kubeconfig: cluster " + in_quotes(cluster_name);
    if (!cluster) {
        error = cluster_owner + " (context " + in_quotes(context_name) + ") not found";
        return Errc::invalid_config;
    }
    KubeConfig out;
    out.server = scalar(cluster, "server");
    if (out.server.empty()) {
        error = cluster_owner + " has no server";
        return Errc::invalid_config;
    }
    if (!parse_url(out.server)) {
        error = cluster_owner + ": server " + in_quotes(out.server) +
                " is not an http(s)://host[:port][/path] URL";
        return Errc::invalid_config;
    }
    if (!decode_field(cluster, "certificate-authority-data", out.ca_pem, error, cluster_owner)) {
        return Errc::invalid_config;
    }
    out.ca_file = resolve(base_dir, scalar(cluster, "certificate-authority"));
    if (const YAML::Node insecure = cluster["insecure-skip-tls-verify"]; insecure) {
        out.insecure_skip_tls_verify = insecure.as<bool>();
    }
    out.tls_server_name = scalar(cluster, "tls-server-name");

    const std::string user_name = scalar(context, "user");
    if (!user_name.empty()) {
        const YAML::Node user = find_named(root, "users", "user", user_name);
        const std::string user_owner = "kubeconfig: user " + in_quotes(user_name);
        if (!user) {
            error = user_owner + " (context " + in_quotes(context_name) + ") not found";
            return Errc::invalid_config;
        }
        out.token = scalar(user, "token");
        out.token_file = resolve(base_dir, scalar(user, "tokenFile"));
        if (!decode_field(user, "client-certificate-data", out.client_cert_pem, error,
                          user_owner) ||
            !decode_field(user, "client-key-data", out.client_key_pem, error, user_owner)) {
            return Errc::invalid_config;
        }
        out.client_cert_file = resolve(base_dir, scalar(user, "client-certificate"));
        out.client_key_file = resolve(base_dir, scalar(user, "client-key"));
        const bool has_cert = !out.client_cert_pem.empty() || !out.client_cert_file.empty();
        const bool has_key = !out.client_key_pem.empty() || !out.client_key_file.empty();
        if (has_cert != has_key) {
            error = user_owner + (has_cert ? ": client certificate without client-key"
                                           : ": client key without client-certificate");
            return Errc::invalid_config;
        }
        const bool has_token = !out.token.empty() || !out.token_file.empty();
        if (!has_token && !has_cert) {
            if (user["exec"]) {
                error = user_owner +
                        ": exec credential plugins are not supported; use a token, "
                        "tokenFile or client certificate";
                return Errc::invalid_config;
            }
            if (user["auth-provider"]) {
                error = user_owner +
                        ": auth-provider is not supported; use a token, tokenFile "
                        "or client certificate";
                return Errc::invalid_config;
            }
            if (user["username"] || user["password"]) {
                error = user_owner + ": basic authentication is not supported";
                return Errc::invalid_config;
            }
        }
    }
    out.namespace_name = scalar(context, "namespace");
    if (out.namespace_name.empty()) {
        out.namespace_name = "default";
    }
    return out;
}

}  // namespace

InClusterEnv in_cluster_env_from_process() {
    InClusterEnv env;
    if (const char* host = std::getenv("KUBERNETES_SERVICE_HOST")) {
        env.service_host = host;
    }
    if (const char* port = std::getenv("KUBERNETES_SERVICE_PORT")) {
        env.service_port = port;
    }
    return env;
}

Result<KubeConfig> load_in_cluster(const InClusterEnv& env, std::string& error) {
    if (env.service_host.empty() || env.service_port.empty()) {
        error =
            "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must "
            "be set (or pass --kubeconfig)";
        return Errc::invalid_config;
    }
    const bool ipv6 = env.service_host.find(':') != std::string::npos;
    KubeConfig out;
    out.server = "https://" + (ipv6 ? "[" + env.service_host + "]" : env.service_host) + ":" +
                 env.service_port;
    if (!parse_url(out.server)) {
        error = "in-cluster: KUBERNETES_SERVICE_HOST/PORT do not form a URL: " + out.server;
        return Errc::invalid_config;
    }
    const std::filesystem::path dir{env.service_account_dir};
    out.token_file = (dir / "token").string();
    out.ca_file = (dir / "ca.crt").string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(out.token_file, ec)) {
        error = "in-cluster: service account token " + out.token_file +
                " not found (automountServiceAccountToken disabled?)";
        return Errc::invalid_config;
    }
    if (!std::filesystem::is_regular_file(out.ca_file, ec)) {
        error = "in-cluster: service account CA " + out.ca_file + " not found";
        return Errc::invalid_config;
    }
    std::ifstream ns{dir / "namespace"};
    if (ns) {
        std::ostringstream text;
        text << ns.rdbuf();
        out.namespace_name = trim(text.str());
    }
    if (out.namespace_name.empty()) {
        out.namespace_name = "default";
    }
    out.source = "in-cluster";
    return out;
}

Result<KubeConfig> parse_kubeconfig(std::string_view text, const std::filesystem::path& base_dir,
                                    std::string& error, std::string_view context) {
    // yaml-cpp reports malformed input by throwing; the text is the operator's, and every
    // failure becomes a value here.
    try {
        const YAML::Node root = YAML::Load(std::string{text});
        return parse_document(root, base_dir, error, context);
    } catch (const YAML::Exception& e) {
        error = "kubeconfig: malformed: " + e.msg;
        if (!e.mark.is_null()) {
            error += " (line " + std::to_string(e.mark.line + 1) + ")";
        }
        return Errc::invalid_config;
    }
}

Result<KubeConfig> load_kubeconfig(const std::string& path, std::string& error,
                                   std::string_view context) {
    std::ifstream in{path, std::ios::binary};
    if (!in) {
        error = "kubeconfig " + path + ": cannot be read";
        return Errc::invalid_config;
    }
    std::string text;
    text.resize(kMaxKubeconfig + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxKubeconfig) {
        error = "kubeconfig " + path + ": larger than 4 MiB";
        return Errc::invalid_config;
    }
    const auto base = std::filesystem::absolute(std::filesystem::path{path}).parent_path();
    auto parsed = parse_kubeconfig(text, base, error, context);
    if (!parsed) {
        error = path + ": " + error;
        return parsed;
    }
    parsed->source = path;
    return parsed;
}

Result<KubeConfig> load_kube_config(const std::string& kubeconfig_flag, std::string& error) {
    if (!kubeconfig_flag.empty()) {
        return load_kubeconfig(kubeconfig_flag, error);
    }
    if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
        // client-go merges a list; nmid takes the first file (one cluster is all it needs).
        const std::string_view list{env};
        const std::string first{list.substr(0, list.find(':'))};
        if (!first.empty()) {
            return load_kubeconfig(first, error);
        }
    }
    return load_in_cluster(in_cluster_env_from_process(), error);
}

}  // namespace nmid::kube
