#include "nmid/kube/config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "support/test_ca.hpp"

namespace nmid::kube {
namespace {

std::string base64(std::string_view in) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                           (static_cast<unsigned char>(in[i + 1]) << 8) |
                           static_cast<unsigned char>(in[i + 2]);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (i + 1 == in.size()) {
        const unsigned v = static_cast<unsigned char>(in[i]) << 16;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                           (static_cast<unsigned char>(in[i + 1]) << 8);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

/// A kubeconfig with one context `ctx` -> cluster `c` and user `u`, plus what the case adds.
std::string kubeconfig(const std::string& cluster, const std::string& user,
                       const std::string& context_extra = "", const std::string& current = "ctx") {
    return "apiVersion: v1\nkind: Config\ncurrent-context: " + current +
           "\nclusters:\n- name: other\n  cluster:\n    server: https://wrong:1\n"
           "- name: c\n  cluster:\n" +
           cluster + "users:\n- name: u\n  user:\n" + user +
           "contexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\n" + context_extra;
}

struct KubeconfigCase {
    const char* name;
    std::string text;
    bool ok;
    KubeConfig want;         ///< fields compared when ok
    const char* error_part;  ///< substring of the error when not ok
};

TEST(ParseKubeconfig, Table) {
    const std::string ca = test::test_pki().ca.cert_pem();
    const std::string cert = test::test_pki().client.cert_pem;
    const std::string key = test::test_pki().client.key_pem;
    const std::string server = "    server: https://127.0.0.1:6443\n";
    const KubeconfigCase cases[] = {
        {"CA data and token",
         kubeconfig(server + "    certificate-authority-data: " + base64(ca) + "\n",
                    "    token: abc.def\n"),
         true,
         KubeConfig{.server = "https://127.0.0.1:6443",
                    .ca_pem = ca,
                    .token = "abc.def",
                    .namespace_name = "default"},
         ""},
        {"CA file relative to the kubeconfig and tokenFile",
         kubeconfig(server + "    certificate-authority: certs/ca.crt\n",
                    "    tokenFile: /var/run/token\n"),
         true,
         KubeConfig{.server = "https://127.0.0.1:6443",
                    .ca_file = "/etc/kube/certs/ca.crt",
                    .token_file = "/var/run/token",
                    .namespace_name = "default"},
         ""},
        {"client certificate and key data",
         kubeconfig(server + "    certificate-authority-data: " + base64(ca) + "\n",
                    "    client-certificate-data: " + base64(cert) +
                        "\n    client-key-data: " + base64(key) + "\n"),
         true,
         KubeConfig{.server = "https://127.0.0.1:6443",
                    .ca_pem = ca,
                    .client_cert_pem = cert,
                    .client_key_pem = key,
                    .namespace_name = "default"},
         ""},
        {"client certificate and key files",
         kubeconfig(server, "    client-certificate: /pki/c.crt\n    client-key: k.key\n"), true,
         KubeConfig{.server = "https://127.0.0.1:6443",
                    .client_cert_file = "/pki/c.crt",
                    .client_key_file = "/etc/kube/k.key",
                    .namespace_name = "default"},
         ""},
        {"insecure, tls-server-name and namespace",
         kubeconfig(server + "    insecure-skip-tls-verify: true\n    tls-server-name: "
                             "kubernetes.default\n",
                    "    token: t\n", "    namespace: kube-system\n"),
         true,
         KubeConfig{.server = "https://127.0.0.1:6443",
                    .insecure_skip_tls_verify = true,
                    .tls_server_name = "kubernetes.default",
                    .token = "t",
                    .namespace_name = "kube-system"},
         ""},
        {"JSON is YAML too",
         R"({"current-context":"x","clusters":[{"name":"c","cluster":{"server":"https://[::1]:6443"}}],)"
         R"("users":[{"name":"u","user":{"token":"j"}}],)"
         R"("contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}]})",
         true,
         KubeConfig{.server = "https://[::1]:6443", .token = "j", .namespace_name = "default"}, ""},
        {"no current-context",
         kubeconfig(server, "    token: t\n", "", "\"\""),
         false,
         {},
         "current-context is not set"},
        {"unknown context",
         kubeconfig(server, "    token: t\n", "", "nope"),
         false,
         {},
         "context \"nope\" not found"},
        {"context without cluster",
         "current-context: x\ncontexts:\n- name: x\n  context:\n    user: u\n",
         false,
         {},
         "names no cluster"},
        {"unknown cluster",
         "current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: gone\n",
         false,
         {},
         "cluster \"gone\" (context \"x\") not found"},
        {"unknown user",
         "current-context: x\nclusters:\n- name: c\n  cluster:\n    server: https://h\n"
         "contexts:\n- name: x\n  context:\n    cluster: c\n    user: ghost\n",
         false,
         {},
         "user \"ghost\""},
        {"cluster without server",
         kubeconfig("    insecure-skip-tls-verify: true\n", ""),
         false,
         {},
         "has no server"},
        {"bad server URL",
         kubeconfig("    server: 10.0.0.1:6443\n", ""),
         false,
         {},
         "is not an http(s)"},
        {"bad base64",
         kubeconfig(server + "    certificate-authority-data: '***'\n", ""),
         false,
         {},
         "certificate-authority-data is not valid base64"},
        {"certificate without key",
         kubeconfig(server, "    client-certificate-data: " + base64(cert) + "\n"),
         false,
         {},
         "client certificate without client-key"},
        {"exec plugin only",
         kubeconfig(server,
                    "    exec:\n      command: kubelogin\n      apiVersion: "
                    "client.authentication.k8s.io/v1beta1\n"),
         false,
         {},
         "exec credential plugins are not supported"},
        {"auth-provider only",
         kubeconfig(server, "    auth-provider:\n      name: azure\n"),
         false,
         {},
         "auth-provider is not supported"},
        {"basic auth only",
         kubeconfig(server, "    username: a\n    password: b\n"),
         false,
         {},
         "basic authentication"},
        {"not a map", "- just\n- a list\n", false, {}, "not a YAML/JSON map"},
        {"YAML syntax error", "clusters: [unclosed\n", false, {}, "malformed"},
        {"server is a map", kubeconfig("    server: {a: 1}\n", ""), false, {}, "malformed"},
    };
    for (const auto& tc : cases) {
        std::string error;
        const auto got = parse_kubeconfig(tc.text, "/etc/kube", error);
        ASSERT_EQ(got.has_value(), tc.ok) << tc.name << ": " << error;
        if (!tc.ok) {
            EXPECT_EQ(got.error(), Errc::invalid_config) << tc.name;
            EXPECT_NE(error.find(tc.error_part), std::string::npos) << tc.name << ": " << error;
            continue;
        }
        EXPECT_EQ(got->server, tc.want.server) << tc.name;
        EXPECT_EQ(got->ca_pem, tc.want.ca_pem) << tc.name;
        EXPECT_EQ(got->ca_file, tc.want.ca_file) << tc.name;
        EXPECT_EQ(got->insecure_skip_tls_verify, tc.want.insecure_skip_tls_verify) << tc.name;
        EXPECT_EQ(got->tls_server_name, tc.want.tls_server_name) << tc.name;
        EXPECT_EQ(got->token, tc.want.token) << tc.name;
        EXPECT_EQ(got->token_file, tc.want.token_file) << tc.name;
        EXPECT_EQ(got->client_cert_pem, tc.want.client_cert_pem) << tc.name;
        EXPECT_EQ(got->client_cert_file, tc.want.client_cert_file) << tc.name;
        EXPECT_EQ(got->client_key_pem, tc.want.client_key_pem) << tc.name;
        EXPECT_EQ(got->client_key_file, tc.want.client_key_file) << tc.name;
        EXPECT_EQ(got->namespace_name, tc.want.namespace_name) << tc.name;
    }
}

TEST(ParseKubeconfig, ExplicitContextOverridesCurrentContext) {
    const std::string text =
        "current-context: a\n"
        "clusters:\n- name: ca\n  cluster:\n    server: https://a:1\n"
        "- name: cb\n  cluster:\n    server: https://b:2\n"
        "contexts:\n- name: a\n  context:\n    cluster: ca\n"
        "- name: b\n  context:\n    cluster: cb\n";
    std::string error;
    EXPECT_EQ(parse_kubeconfig(text, "/", error)->server, "https://a:1");
    EXPECT_EQ(parse_kubeconfig(text, "/", error, "b")->server, "https://b:2");
}

TEST(LoadKubeconfig, ReadsTheFileAndResolvesPathsAgainstItsDirectory) {
    test::PemDir dir;
    const auto path = dir.write(
        "sub/config", kubeconfig("    server: https://127.0.0.1:6443\n    certificate-authority: "
                                 "ca.crt\n",
                                 "    tokenFile: ../token\n"));
    std::string error;
    const auto got = load_kubeconfig(path.string(), error);
    ASSERT_TRUE(got.has_value()) << error;
    EXPECT_EQ(got->ca_file, (dir.path() / "sub" / "ca.crt").string());
    EXPECT_EQ(got->token_file, (dir.path() / "token").string());
    EXPECT_EQ(got->source, path.string());
}

TEST(LoadKubeconfig, MissingFileAndBadContentNameTheFile) {
    test::PemDir dir;
    std::string error;
    const auto missing = (dir.path() / "absent").string();
    EXPECT_EQ(load_kubeconfig(missing, error).error(), Errc::invalid_config);
    EXPECT_NE(error.find(missing), std::string::npos) << error;
    const auto bad = dir.write("bad", "current-context: x\n");
    EXPECT_EQ(load_kubeconfig(bad.string(), error).error(), Errc::invalid_config);
    EXPECT_NE(error.find(bad.string()), std::string::npos) << error;
    EXPECT_NE(error.find("context \"x\" not found"), std::string::npos) << error;
}

class InClusterTest : public ::testing::Test {
protected:
    InClusterEnv env(std::string host = "10.0.0.1", std::string port = "443") const {
        return InClusterEnv{.service_host = std::move(host),
                            .service_port = std::move(port),
                            .service_account_dir = dir_.path().string()};
    }
    test::PemDir dir_;
};

TEST_F(InClusterTest, ServiceAccountFilesAndServiceAddress) {
    dir_.write("token", "jwt");
    dir_.write("ca.crt", test::test_pki().ca.cert_pem());
    dir_.write("namespace", "kube-system\n");
    std::string error;
    const auto got = load_in_cluster(env(), error);
    ASSERT_TRUE(got.has_value()) << error;
    EXPECT_EQ(got->server, "https://10.0.0.1:443");
    EXPECT_EQ(got->token_file, (dir_.path() / "token").string());
    EXPECT_EQ(got->ca_file, (dir_.path() / "ca.crt").string());
    EXPECT_EQ(got->namespace_name, "kube-system");
    EXPECT_EQ(got->source, "in-cluster");
    EXPECT_TRUE(got->token.empty());
}

TEST_F(InClusterTest, Ipv6HostIsBracketedAndMissingNamespaceIsDefault) {
    dir_.write("token", "jwt");
    dir_.write("ca.crt", "x");
    std::string error;
    const auto got = load_in_cluster(env("fd00:10:96::1", "6443"), error);
    ASSERT_TRUE(got.has_value()) << error;
    EXPECT_EQ(got->server, "https://[fd00:10:96::1]:6443");
    EXPECT_EQ(got->namespace_name, "default");
}

TEST_F(InClusterTest, ErrorsSayWhatIsMissing) {
    std::string error;
    EXPECT_EQ(load_in_cluster(env("", "443"), error).error(), Errc::invalid_config);
    EXPECT_NE(error.find("KUBERNETES_SERVICE_HOST"), std::string::npos) << error;
    EXPECT_EQ(load_in_cluster(env("10.0.0.1", ""), error).error(), Errc::invalid_config);
    EXPECT_NE(error.find("not running in a cluster"), std::string::npos) << error;
    EXPECT_EQ(load_in_cluster(env("10.0.0.1", "http"), error).error(), Errc::invalid_config);
    EXPECT_EQ(load_in_cluster(env(), error).error(), Errc::invalid_config);
    EXPECT_NE(error.find("token"), std::string::npos) << error;
    dir_.write("token", "jwt");
    EXPECT_EQ(load_in_cluster(env(), error).error(), Errc::invalid_config);
    EXPECT_NE(error.find("ca.crt"), std::string::npos) << error;
}

TEST(LoadKubeConfig, FlagWinsOverKubeconfigEnvironment) {
    test::PemDir dir;
    const auto flag = dir.write("flag", kubeconfig("    server: https://flag:1\n", ""));
    const auto env = dir.write("env", kubeconfig("    server: https://env:1\n", ""));
    ::setenv("KUBECONFIG", (env.string() + ":/nonexistent").c_str(), 1);
    std::string error;
    EXPECT_EQ(load_kube_config(flag.string(), error)->server, "https://flag:1");
    EXPECT_EQ(load_kube_config("", error)->server, "https://env:1");
    ::unsetenv("KUBECONFIG");
}

}  // namespace
}  // namespace nmid::kube
