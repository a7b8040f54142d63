#pragma once

// PLACEHOLDER FOR MERGE: the reflector helper's header replaces this one (same struct).

#include <string>

namespace nmid::workload {

struct ServiceAccountInfo {
    std::string namespace_name;
    std::string name;
    std::string uid;
    std::string client_id;
    std::string tenant_id;
    bool has_client_id = false;
    std::string invalid_reason;
};

}  // namespace nmid::workload
