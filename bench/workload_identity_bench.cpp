// DEPS: nmid_test_support
// Workload identity against pod identity in the same run (issue 12): the real nmid, the fake
// API server (ServiceAccounts, TokenRequest), the fake Azure AD and the IMDS emulator, on
// loopback. Prints
//   1. cache-hit throughput: 4 keep-alive connections from a workload identity pod, then from
//      a pod-identity pod, each sending requests for one cached token back to back; best of 3
//      alternating rounds each, and the ratio (goal: within 5%);
//   2. first-token latency through the fakes: the workload identity pod's first token (a
//      TokenRequest and an Azure AD exchange), then misses for new resources (the
//      ServiceAccount token is cached: one exchange each), against the pod-identity pod's
//      misses (one IMDS call each).
// Usage: build/bin/workload_identity_bench [SECONDS_PER_ROUND=2] (needs nmid and imds-emulator
// in the same bin dir).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "integration/kube/kube_harness.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace test = nmid::test;
using Json = nlohmann::json;

const test::TestIdentity kReader = test::test_identity("kv-reader", "a1");
constexpr const char* kClient = "6f0a6a3e-7e3b-4b38-9a4c-0123456789ab";
constexpr const char* kWorkloadIp = "127.0.0.5";
constexpr const char* kPodIdentityIp = "127.0.0.2";

/// One keep-alive connection from `source` sending `request` until `stop`; returns answers.
long hammer(const char* source, int port, const std::string& request,
            const std::atomic<bool>& stop) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &local.sin_addr);
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
        std::perror("connect");
        std::exit(1);
    }
    long answers = 0;
    std::string in;
    char buf[16384];
    while (!stop.load(std::memory_order_relaxed)) {
        if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size())) {
            break;
        }
        for (;;) {
            const auto head_end = in.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                const auto cl = in.find("Content-Length: ");
                const std::size_t length =
                    cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 16));
                if (in.size() >= head_end + 4 + length) {
                    if (in.compare(0, 12, "HTTP/1.1 200") != 0) {
                        std::fprintf(stderr, "not a 200: %s\n", in.substr(0, 200).c_str());
                        std::exit(1);
                    }
                    in.erase(0, head_end + 4 + length);
                    break;
                }
            }
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                ::close(fd);
                return answers;
            }
            in.append(buf, static_cast<std::size_t>(n));
        }
        ++answers;
    }
    ::close(fd);
    return answers;
}

double throughput(const char* source, int port, std::chrono::seconds duration) {
    const std::string request =
        test::kTokenPath + "?api-version=2018-02-01&resource=" + test::kVaultResource;
    const std::string wire =
        "GET " + request + " HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\n\r\n";
    std::atomic<bool> stop{false};
    std::atomic<long> total{0};
    std::vector<std::thread> threads;
    threads.reserve(4);
    const auto start = Clock::now();
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&] { total += hammer(source, port, wire, stop); });
    }
    std::this_thread::sleep_for(duration);
    stop = true;
    for (auto& t : threads) {
        t.join();
    }
    const std::chrono::duration<double> took = Clock::now() - start;
    return static_cast<double>(total.load()) / took.count();
}

double ms_for(test::KubeCluster& c, const char* ip, const std::string& resource) {
    const auto start = Clock::now();
    const auto r = c.token(ip, resource);
    const std::chrono::duration<double, std::milli> took = Clock::now() - start;
    if (!r || r->status != 200) {
        std::fprintf(stderr, "no token from %s: %s\n", ip, r ? r->body.c_str() : "no answer");
        std::exit(1);
    }
    return took.count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const std::chrono::seconds round{argc > 1 ? std::atoi(argv[1]) : 2};
    if (!test::KubeCluster::binaries_built()) {
        std::fprintf(stderr, "nmid or imds-emulator not built in %s\n", NMID_BIN_DIR);
        return 1;
    }
    test::KubeCluster c;
    c.on_fakes([&] {
        c.api().create("azureidentities", test::identity_object(kReader));
        c.api().create("azureidentitybindings",
                       test::binding_object("kv-reader-binding", "kv-reader", "kv-reader"));
        c.kubelet().put(test::bound_pod("demo", kPodIdentityIp, "kv-reader"));
        test::FakePod wi;
        wi.name = "web-0";
        wi.namespace_name = "shop";
        wi.ip = kWorkloadIp;
        wi.uid = "0f0e0d0c-0b0a-4009-8807-000000000005";
        wi.service_account = "web";
        wi.labels["azure.workload.identity/use"] = "true";
        c.kubelet().put(wi);
        c.api().create("pods", test::kubelet_pod(wi));
        c.api().create("serviceaccounts",
                       Json{{"apiVersion", "v1"},
                            {"kind", "ServiceAccount"},
                            {"metadata",
                             {{"name", "web"},
                              {"namespace", "shop"},
                              {"annotations",
                               {{"azure.workload.identity/client-id", kClient},
                                {"azure.workload.identity/tenant-id", "tenant-a"}}}}}});
        c.federated().add_federated_credential(kClient, c.issuer().issuer(),
                                               "system:serviceaccount:shop:web");
    });
    c.start_emulator({kReader});
    // The benchmark measures nmid, not its per-pod limits: one source address per pod here.
    c.start_nmid({"--workload-identity", "--workload-identity-authority-host=" + c.on_fakes([&] {
                      return c.federated().base_url();
                  }),
                  "--max-connections-per-pod=0"});
    if (!c.wait_ready()) {
        std::fprintf(stderr, "nmid not ready:\n%s\n", c.nmid().output().c_str());
        return 1;
    }

    std::printf("== 2. first-token latency through the fakes (ms)\n");
    const double first = ms_for(c, kWorkloadIp, test::kVaultResource);
    std::vector<double> wi_miss;
    std::vector<double> pi_miss;
    for (int i = 0; i < 20; ++i) {
        const std::string resource = "https://r" + std::to_string(i) + ".example";
        wi_miss.push_back(ms_for(c, kWorkloadIp, resource));
        pi_miss.push_back(ms_for(c, kPodIdentityIp, resource));
    }
    std::printf("workload identity first token (TokenRequest + Azure AD exchange): %.2f ms\n",
                first);
    std::printf("workload identity miss, ServiceAccount token cached (median of 20): %.2f ms\n",
                median(wi_miss));
    std::printf("pod identity miss, IMDS emulator (median of 20): %.2f ms\n", median(pi_miss));
    std::printf("TokenRequests: %zu, Azure AD calls: %zu\n",
                c.on_fakes([&] { return c.issuer().calls().size(); }),
                c.on_fakes([&] { return c.federated().calls().size(); }));

    std::printf("== 1. cache-hit throughput, 4 keep-alive connections, %lld s rounds\n",
                static_cast<long long>(round.count()));
    (void)ms_for(c, kPodIdentityIp, test::kVaultResource);  // both cached before timing
    double best_wi = 0;
    double best_pi = 0;
    for (int r = 0; r < 3; ++r) {
        const double wi = throughput(kWorkloadIp, c.port(), round);
        const double pi = throughput(kPodIdentityIp, c.port(), round);
        std::printf("round %d: workload identity %.0f req/s, pod identity %.0f req/s\n", r + 1, wi,
                    pi);
        best_wi = std::max(best_wi, wi);
        best_pi = std::max(best_pi, pi);
    }
    const double ratio = best_wi / best_pi;
    std::printf(
        "best: workload identity %.0f req/s, pod identity %.0f req/s, ratio %.3f (goal >= "
        "0.95): %s\n",
        best_wi, best_pi, ratio, ratio >= 0.95 ? "PASS" : "FAIL");
    return 0;
}
