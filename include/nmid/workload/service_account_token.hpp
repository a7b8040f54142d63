#pragma once

// PLACEHOLDER FOR MERGE: the clients helper's header replaces this one (same names).

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <cstdint>
#include <string>

#include "nmid/core/clock.hpp"
#include "nmid/model/pod.hpp"
#include "nmid/token/token_source.hpp"

namespace nmid::workload {

struct ServiceAccountToken {
    std::string token;
    std::int64_t expires_on = 0;
    std::int64_t issued_at = 0;
};

using SaTokenResult = boost::system::result<ServiceAccountToken, FetchError>;

class TokenRequester {
public:
    virtual ~TokenRequester() = default;
    virtual boost::asio::awaitable<SaTokenResult> request(const PodInfo& pod,
                                                          SteadyTime deadline) = 0;
};

}  // namespace nmid::workload
