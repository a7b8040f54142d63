#pragma once

// Base of the hand fakes of kube::ApiServerClient that script LIST and WATCH only: a POST or
// PATCH is a test failure (nothing they stand in for creates objects).

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
    boost::asio::awaitable<Result<kube::Response>> patch(std::string target,
                                                         std::string /*body*/,
                                                         std::string /*content_type*/,
                                                         SteadyTime /*deadline*/) override {
        ADD_FAILURE() << "unexpected PATCH " << target;
        co_return Errc::io_error;
    }
};

}  // namespace nmid::test
