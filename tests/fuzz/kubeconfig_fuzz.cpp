// Fuzz target: kubeconfig text (kube/config: parse_kubeconfig), YAML or JSON, for the current
// context and for a context named by the input's first line.
//
// Invariants:
// - nothing throws (parse_kubeconfig promises never to throw);
// - a failure says why (`error` is set); a success has a server, a namespace, and every file
//   path absolute (relative ones are resolved against the kubeconfig's directory);
// - a client certificate never comes without its key.

#include <string>

#include "fuzz_check.hpp"
#include "nmid/kube/config.hpp"

using nmid::fuzz::check;

namespace {

bool absolute_or_empty(const std::string& path) {
    return path.empty() || path.front() == '/';
}

void parse_for(std::string_view text, std::string_view context) {
    std::string error;
    const nmid::Result<nmid::kube::KubeConfig> config =
        nmid::kube::parse_kubeconfig(text, "/etc/kubernetes", error, context);
    if (!config) {
        check(!error.empty(), "kubeconfig rejected without a reason");
        return;
    }
    check(!config->server.empty(), "kubeconfig without a server");
    check(!config->namespace_name.empty(), "kubeconfig without a namespace");
    check(absolute_or_empty(config->ca_file) && absolute_or_empty(config->token_file) &&
              absolute_or_empty(config->client_cert_file) &&
              absolute_or_empty(config->client_key_file),
          "a relative file path");
    const bool cert = !config->client_cert_pem.empty() || !config->client_cert_file.empty();
    const bool key = !config->client_key_pem.empty() || !config->client_key_file.empty();
    check(cert == key, "client certificate and key not both present");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return nmid::fuzz::run_no_throw(data, size, [](std::string_view text) {
        parse_for(text, {});
        parse_for(text, text.substr(0, std::min<std::size_t>(text.find('\n'), 64)));
    });
}
