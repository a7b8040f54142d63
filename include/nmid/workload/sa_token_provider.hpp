#pragma once

// PLACEHOLDER FOR MERGE: the satokens helper's header replaces this one (same names).

#include <string>
#include <vector>

#include "nmid/workload/service_account_token.hpp"

namespace nmid::workload {

class ServiceAccountTokenProvider {
public:
    virtual ~ServiceAccountTokenProvider() = default;
    virtual boost::asio::awaitable<SaTokenResult> token(const PodInfoPtr& pod,
                                                        SteadyTime deadline) = 0;
    virtual void retain(const std::vector<std::string>& live_uids) = 0;
};

}  // namespace nmid::workload
