#pragma once

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/fake_http_server.hpp"

namespace nmid::test {

/// What a test pod looks like; kubelet_pod() turns it into the kubelet's JSON.
struct FakePod {
    std::string name{};
    std::string namespace_name{"default"};
    std::string ip{};   ///< podIP and podIPs[0]; "" while the sandbox has none
    std::string uid{};  ///< "" gives `uid-<namespace>-<name>-<counter>` (fresh per call)
    std::map<std::string, std::string> labels{};  ///< absent from the JSON when empty
    std::string node{"node-1"};
    std::string phase{"Running"};  ///< "" leaves status.phase out (just created)
    bool host_network = false;     ///< spec.hostNetwork (omitted when false, as on the wire)
    std::string service_account{"default"};
};

/// A pod as the kubelet's `/pods` (and the API server) serialise it (wire-formats.md §2):
/// no `kind`, labels absent when empty, hostNetwork omitted when false, podIPs as objects.
[[nodiscard]] nlohmann::json kubelet_pod(const FakePod& pod);

struct FakeKubeletOptions {
    std::string address{"127.0.0.1"};
    /// Non-empty: `/pods` needs `Authorization: Bearer <token>`; otherwise 401 with the
    /// kubelet's plain-text body `Unauthorized`. Change it later with set_token().
    std::string token{};
    /// HTTPS (the kubelet's port 10250) with `tls_options`, or test_pki().server (signed by
    /// the test CA, names localhost, 127.0.0.1 and ::1) when its cert_pem is empty. False:
    /// plain HTTP, as the read-only port 10255.
    bool tls = true;
    FakeTlsOptions tls_options{};
};

/// The node's kubelet as nmid reads it: `GET /pods` answers the pods the test put, in the
/// kubelet's wire format (reference/wire-formats.md §3): `{"kind":"PodList","apiVersion":"v1",
/// "metadata":{},"items":[...]}`, `items` null on an empty node, no resourceVersion, no
/// selectors, no watch. 401 `Unauthorized` (plain text) without the right bearer token;
/// 404 `404 page not found` for other paths, 405 for other methods.
/// Pods are changed by the test (put/remove); each change bumps a generation so tests can
/// tell which state a read served. Slow answers: set_hold() keeps answers (computed when the
/// request arrived, like a kubelet that snapshotted its pods) until release(). Failures:
/// script() replaces the next answers (a 403, a 500, a reset, a truncated body...).
/// Not thread-safe: use it and run its io_context on one thread.
class FakeKubelet {
public:
    explicit FakeKubelet(boost::asio::io_context& ioc, FakeKubeletOptions options = {});
    ~FakeKubelet();
    FakeKubelet(const FakeKubelet&) = delete;
    FakeKubelet& operator=(const FakeKubelet&) = delete;

    [[nodiscard]] std::uint16_t port() const { return server_->port(); }
    /// `https://127.0.0.1:<port>` (or http://): the value of nmid's `--kubelet-url`.
    [[nodiscard]] std::string url() const;
    [[nodiscard]] FakeHttpServer& http() { return *server_; }

    // --- pods ----------------------------------------------------------------------------

    /// Adds `pod` (kubelet JSON, see kubelet_pod()) or replaces the pod with the same
    /// namespace/name in place. Returns the new generation.
    std::uint64_t put(nlohmann::json pod);
    std::uint64_t put(const FakePod& pod) { return put(kubelet_pod(pod)); }
    /// Removes namespace/name; false (and no new generation) when it is not there.
    bool remove(std::string_view namespace_name, std::string_view name);
    /// Removes every pod (the next list has `items: null`). Returns the new generation.
    std::uint64_t clear();
    [[nodiscard]] std::size_t size() const { return pods_.size(); }
    /// Bumped by every change; 0 before the first.
    [[nodiscard]] std::uint64_t generation() const { return generation_; }

    // --- behaviour -----------------------------------------------------------------------

    void set_token(std::string token) { options_.token = std::move(token); }
    /// Holds (FakeResponse::hold) every `/pods` list answer until release() (scripted answers
    /// keep their own `hold`).
    void set_hold(bool hold) { hold_ = hold; }
    /// Lets every held answer go (on the next run of the io_context).
    void release() { server_->release(); }
    [[nodiscard]] std::size_t held() const { return server_->held(); }
    /// The next `/pods` request is answered with `response` instead (FIFO; still counted in
    /// requests(), not in reads()). plain_text() builds the kubelet's error answers.
    void script(FakeResponse response);

    // --- counters ------------------------------------------------------------------------

    [[nodiscard]] std::size_t requests() const { return server_->requests(); }
    /// `/pods` answered with the pod list (200).
    [[nodiscard]] std::size_t reads() const { return reads_; }
    /// Requests refused with 401 (wrong or missing bearer token).
    [[nodiscard]] std::size_t unauthorized() const { return unauthorized_; }
    /// Generation of the list served by the last read (0 when none yet).
    [[nodiscard]] std::uint64_t last_read_generation() const { return last_read_generation_; }
    /// Every request received, in order.
    [[nodiscard]] const std::vector<FakeRequest>& received() const { return server_->received(); }

private:
    FakeResponse handle(const FakeRequest& request);
    [[nodiscard]] std::string body() const;

    FakeKubeletOptions options_;
    std::vector<std::pair<std::string, nlohmann::json>> pods_;  ///< "ns/name" -> pod, in order
    std::uint64_t generation_ = 0;
    std::uint64_t last_read_generation_ = 0;
    std::size_t reads_ = 0;
    std::size_t unauthorized_ = 0;
    bool hold_ = false;
    std::deque<FakeResponse> script_;
    std::unique_ptr<FakeHttpServer> server_;  ///< last: destroyed first (its handler uses this)
};

/// A kubelet-style plain-text answer (`Content-Type: text/plain; charset=utf-8`), e.g.
/// `plain_text(403, "Forbidden (user=system:serviceaccount:kube-system:nmid, verb=get,
/// resource=nodes, subresource=proxy)")`.
[[nodiscard]] FakeResponse plain_text(int status, std::string body);

}  // namespace nmid::test
