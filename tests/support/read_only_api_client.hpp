#pragma once

// Base of the hand fakes of kube::ApiServerClient that script LIST and WATCH only: a POST is
// a test failure (nothing they stand in for creates objects).

#include <gtest/gtest.h>

#include <boost/asio/awaitable.hpp>
#include <string>

#include "nmid/kube/client.hpp"

namespace nmid::test {

class ReadOnlyApiServerClient : public kube::ApiServerClient {
public:
    boost::asio::awaitable<Result<kube::Response>> post(std::string target, std::string /*body*/,
                                                        SteadyTime /*deadline*/) override {
        ADD_FAILURE() << "unexpected POST " << target;
        co_return Errc::io_error;
    }
};

}  // namespace nmid::test
