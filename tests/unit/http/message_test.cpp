#include "nmid/http/message.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace nmid::http {
namespace {

/// Empties this thread's pool (it holds at most four buffers), so a test starts from nothing.
void drain_pool() {
    for (int i = 0; i < 8; ++i) {
        (void)take_response_buffer(0);
    }
}

TEST(ResponseBuffer, GivenBackStorageIsReusedEmptyWithTheRoomAsked) {
    drain_pool();
    std::string body = take_response_buffer(1500);
    EXPECT_TRUE(body.empty());
    EXPECT_GE(body.capacity(), 1500U);
    body.assign(1200, 'x');
    const char* storage = body.data();
    give_back_response_buffer(std::move(body));

    const std::string again = take_response_buffer(100);
    EXPECT_TRUE(again.empty());
    EXPECT_EQ(again.data(), storage);  // no allocation: the buffer written before
    const std::string fresh = take_response_buffer(100);
    EXPECT_NE(fresh.data(), storage);
    EXPECT_GE(fresh.capacity(), 100U);
}

TEST(ResponseBuffer, KeepsAFewModestBuffersPerThread) {
    drain_pool();
    std::string huge(std::size_t{1} << 20, 'h');  // over the 64 KiB bound: freed, not kept
    const char* huge_storage = huge.data();
    give_back_response_buffer(std::move(huge));
    EXPECT_NE(take_response_buffer(16).data(), huge_storage);

    std::vector<const char*> kept;
    for (int i = 0; i < 6; ++i) {  // more than the pool holds
        std::string body = take_response_buffer(2000 + static_cast<std::size_t>(i));
        kept.push_back(body.data());
        give_back_response_buffer(std::move(body));
        (void)take_response_buffer(0);  // keeps the pool from handing the same one back
    }
    std::thread other{[&] {
        // Another thread has a pool of its own: nothing given back here comes out there.
        const std::string body = take_response_buffer(2000);
        for (const char* p : kept) {
            EXPECT_NE(body.data(), p);
        }
    }};
    other.join();
}

}  // namespace
}  // namespace nmid::http
