#pragma once

// The Node status subresource for FakeApiServer: `PATCH /api/v1/nodes/<name>/status` as
// kube-apiserver applies it. A strategic merge patch merges `status.conditions` by `type`
// (an entry of another type is kept, fields not in the patch are kept); a JSON merge patch
// replaces the whole list (which is why a writer of one condition must not use it); other
// patch types are 415. Unknown nodes are 404. Changes outside `status` are ignored, as the
// status subresource does.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/fake_api_server.hpp"
#include "support/fake_http_server.hpp"

namespace nmid::test {

struct NodePatchCall {
    std::string node;
    std::string content_type;
    nlohmann::json body;
    int status = 0;
};

class FakeNodeStatus {
public:
    /// The server whose `nodes` it patches (FakeApiServerOptions from with_nodes()).
    void attach(FakeApiServer& api) { api_ = &api; }
    /// `api_handler` with the status subresource answered here.
    FakeHttpServer::Handler wrap(FakeHttpServer::Handler api_handler);
    /// One PATCH, as wrap() answers it (for tests that drive it without HTTP).
    FakeResponse handle(const FakeRequest& request);

    [[nodiscard]] const std::vector<NodePatchCall>& calls() const { return calls_; }
    /// `status.conditions` of `node` as stored (an empty array when none or no node).
    [[nodiscard]] nlohmann::json conditions(const std::string& node) const;
    /// The condition of `type` of `node`, null when absent.
    [[nodiscard]] nlohmann::json condition(const std::string& node, const std::string& type) const;

private:
    FakeApiServer* api_ = nullptr;
    std::vector<NodePatchCall> calls_;
};

/// FakeApiServerOptions with core v1 Nodes (cluster-scoped) added.
[[nodiscard]] FakeApiServerOptions with_nodes(FakeApiServerOptions options = {});

/// A Node object named `name` with kubelet's Ready condition.
[[nodiscard]] nlohmann::json node_object(const std::string& name);

}  // namespace nmid::test
