// Request framing at the listener (issue 11.5, RFC 9112 6.1/6.3): a transfer coding other than
// one final `chunked` is a 400 and a close, never "no body" with the rest read as a second
// request; chunked trailers never reach the handler as header fields.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server_fixture.hpp"

namespace nmid::http::test {
namespace {

TEST_F(HttpServerTest, UnknownTransferCodingIsOne400AndCloseNotASmuggledRequest) {
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        co_await send(s,
                      "POST /first HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n"
                      "GET /metadata/identity/oauth2/token?resource=x HTTP/1.1\r\nHost: h\r\n"
                      "Metadata: true\r\n\r\n");
        const ReadAll all = co_await read_to_end(s);
        EXPECT_TRUE(all.data.starts_with("HTTP/1.1 400 Bad Request\r\n")) << all.data;
        EXPECT_EQ(all.data.find("HTTP/1.1", 1), std::string::npos) << all.data;  // one answer
        EXPECT_NE(all.data.find("Connection: close\r\n"), std::string::npos);
        EXPECT_EQ(all.ec, asio::error::eof);
    });
    EXPECT_TRUE(handler_.seen().empty());
    EXPECT_EQ(server_->stats().bad_requests, 1U);
    EXPECT_EQ(server_->stats().requests, 0U);
}

TEST_F(HttpServerTest, EveryFramingOtherThanOneChunkedIs400AndClose) {
    const std::vector<std::string> fields = {
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding:\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
    };
    start();
    run([&]() -> asio::awaitable<void> {
        for (const std::string& f : fields) {
            auto s = co_await connect(port());
            co_await send(s, "POST / HTTP/1.1\r\nHost: h\r\n" + f + "\r\n3\r\nabc\r\n0\r\n\r\n" +
                                 get("/after"));
            const ReadAll all = co_await read_to_end(s);
            EXPECT_TRUE(all.data.starts_with("HTTP/1.1 400 ")) << f << all.data;
            EXPECT_EQ(all.data.find("HTTP/1.1", 1), std::string::npos) << f << all.data;
            EXPECT_EQ(all.ec, asio::error::eof) << f;
        }
    });
    EXPECT_TRUE(handler_.seen().empty());
    EXPECT_EQ(server_->stats().bad_requests, fields.size());
}

TEST_F(HttpServerTest, ChunkedTrailerIsNeverAHeader) {
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        co_await send(s,
                      "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n0\r\nMetadata: true\r\n\r\n" +
                          get("/next", "Connection: close\r\n"));
        std::string pending;
        const auto first = co_await read_response(s, pending);
        const auto second = co_await read_response(s, pending);
        EXPECT_TRUE(first && first->status() == 200 && first->body == "/p:abc");
        EXPECT_TRUE(second && second->status() == 200 && second->body == "/next");
    });
    const auto seen = handler_.seen();
    ASSERT_EQ(seen.size(), 2U);
    EXPECT_FALSE(seen[0].has_metadata);
    EXPECT_EQ(seen[0].metadata_lower, "");
    EXPECT_EQ(seen[0].fields, (std::vector<std::pair<std::string, std::string>>{
                                  {"Host", "h"}, {"Transfer-Encoding", "chunked"}}));
}

}  // namespace
}  // namespace nmid::http::test
