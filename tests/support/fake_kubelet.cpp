#include "support/fake_kubelet.hpp"

#include <algorithm>
#include <atomic>

#include "support/test_ca.hpp"

namespace nmid::test {

namespace {

using Json = nlohmann::json;

std::string key_of(std::string_view namespace_name, std::string_view name) {
    std::string key{namespace_name};
    key += '/';
    key += name;
    return key;
}

std::string key_of(const Json& pod) {
    const Json& meta = pod.at("metadata");
    return key_of(meta.value("namespace", "default"), meta.at("name").get<std::string>());
}

std::unique_ptr<FakeHttpServer> make_server(boost::asio::io_context& ioc,
                                            FakeHttpServer::Handler handler,
                                            const FakeKubeletOptions& options) {
    if (!options.tls) {
        return std::make_unique<FakeHttpServer>(ioc, std::move(handler), options.address);
    }
    FakeTlsOptions tls = options.tls_options;
    if (tls.cert_pem.empty()) {
        tls.cert_pem = test_pki().server.cert_pem;
        tls.key_pem = test_pki().server.key_pem;
    }
    return std::make_unique<FakeHttpServer>(ioc, std::move(handler), options.address, tls);
}

}  // namespace

Json kubelet_pod(const FakePod& pod) {
    static std::atomic<std::uint64_t> next_uid{1};
    Json meta = {{"name", pod.name},
                 {"namespace", pod.namespace_name},
                 {"uid", pod.uid.empty() ? "uid-" + pod.namespace_name + "-" + pod.name + "-" +
                                               std::to_string(next_uid++)
                                         : pod.uid},
                 {"resourceVersion", "1"},
                 {"creationTimestamp", "2024-05-02T10:00:00Z"}};
    if (!pod.labels.empty()) {
        meta["labels"] = pod.labels;
    }
    Json spec = {{"nodeName", pod.node},
                 {"serviceAccountName", pod.service_account},
                 {"containers", Json::array({{{"name", "app"}, {"image", "debian:12"}}})}};
    if (pod.host_network) {
        spec["hostNetwork"] = true;
    }
    Json status = {{"hostIP", "127.0.0.1"}};
    if (!pod.phase.empty()) {
        status["phase"] = pod.phase;
    }
    if (!pod.ip.empty()) {
        status["podIP"] = pod.ip;
        status["podIPs"] = Json::array({{{"ip", pod.ip}}});
        status["startTime"] = "2024-05-02T10:00:03Z";
    }
    return {
        {"metadata", std::move(meta)}, {"spec", std::move(spec)}, {"status", std::move(status)}};
}

FakeResponse plain_text(int status, std::string body) {
    FakeResponse r;
    r.status = status;
    r.headers = {{"Content-Type", "text/plain; charset=utf-8"},
                 {"X-Content-Type-Options", "nosniff"}};
    r.body = std::move(body);
    r.body += '\n';
    return r;
}

FakeKubelet::FakeKubelet(boost::asio::io_context& ioc, FakeKubeletOptions options)
    : options_(std::move(options)),
      server_(make_server(
          ioc, [this](const FakeRequest& r) { return handle(r); }, options_)) {}

FakeKubelet::~FakeKubelet() {
    server_->stop();
}

std::string FakeKubelet::url() const {
    return std::string{options_.tls ? "https://" : "http://"} + server_->address() + ":" +
           std::to_string(port());
}

std::uint64_t FakeKubelet::put(Json pod) {
    const std::string key = key_of(pod);
    const auto it = std::find_if(pods_.begin(), pods_.end(),
                                 [&](const auto& entry) { return entry.first == key; });
    if (it != pods_.end()) {
        it->second = std::move(pod);
    } else {
        pods_.emplace_back(key, std::move(pod));
    }
    return ++generation_;
}

bool FakeKubelet::remove(std::string_view namespace_name, std::string_view name) {
    const std::string key = key_of(namespace_name, name);
    const auto it = std::find_if(pods_.begin(), pods_.end(),
                                 [&](const auto& entry) { return entry.first == key; });
    if (it == pods_.end()) {
        return false;
    }
    pods_.erase(it);
    ++generation_;
    return true;
}

std::uint64_t FakeKubelet::clear() {
    pods_.clear();
    return ++generation_;
}

void FakeKubelet::script(FakeResponse response) {
    script_.push_back(std::move(response));
}

std::string FakeKubelet::body() const {
    Json items = nullptr;  // the kubelet's Go nil slice on an empty node
    if (!pods_.empty()) {
        items = Json::array();
        for (const auto& [key, pod] : pods_) {
            items.push_back(pod);
        }
    }
    const Json list = {{"kind", "PodList"},
                       {"apiVersion", "v1"},
                       {"metadata", Json::object()},
                       {"items", std::move(items)}};
    return list.dump();
}

FakeResponse FakeKubelet::handle(const FakeRequest& request) {
    if (!options_.token.empty() && request.header("Authorization") != "Bearer " + options_.token) {
        ++unauthorized_;
        return plain_text(401, "Unauthorized");
    }
    const std::string_view path =
        std::string_view{request.target}.substr(0, std::string_view{request.target}.find('?'));
    if (path != "/pods" && path != "/pods/") {
        return plain_text(404, "404 page not found");
    }
    if (request.method != "GET") {
        return plain_text(405, "405 method not allowed");
    }
    FakeResponse r;
    if (!script_.empty()) {
        r = std::move(script_.front());
        script_.pop_front();
    } else {
        ++reads_;
        last_read_generation_ = generation_;
        r.headers = {{"Content-Type", "application/json"}};
        r.body = body();
        r.hold = hold_;
    }
    return r;
}

}  // namespace nmid::test
