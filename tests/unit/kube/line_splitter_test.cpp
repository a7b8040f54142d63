#include "nmid/kube/line_splitter.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace nmid::kube {
namespace {

struct SplitCase {
    const char* name;
    std::vector<std::string> chunks;
    std::vector<std::string> lines;  ///< after finish()
};

TEST(LineSplitter, SplitsLinesWhateverTheChunking) {
    const SplitCase cases[] = {
        {"one line per chunk", {"{\"a\":1}\n", "{\"b\":2}\n"}, {"{\"a\":1}", "{\"b\":2}"}},
        {"several lines in one chunk", {"a\nb\nc\n"}, {"a", "b", "c"}},
        {"line split across chunks", {"{\"ty", "pe\":\"ADDED\"}\n"}, {"{\"type\":\"ADDED\"}"}},
        {"line split across three chunks", {"ab", "cd", "ef\ngh\n"}, {"abcdef", "gh"}},
        {"newline alone in a chunk", {"abc", "\n", "def\n"}, {"abc", "def"}},
        {"empty lines skipped", {"\n\na\n\n", "\nb\n"}, {"a", "b"}},
        {"last line without newline delivered at the end", {"a\nb"}, {"a", "b"}},
        {"nothing", {}, {}},
    };
    for (const auto& tc : cases) {
        LineSplitter splitter{1024};
        std::vector<std::string> got;
        const LineHandler collect = [&](std::string_view line) {
            got.emplace_back(line);
            return true;
        };
        for (const auto& chunk : tc.chunks) {
            EXPECT_EQ(splitter.feed(chunk, collect), LineSplitter::Status::more) << tc.name;
        }
        EXPECT_EQ(splitter.finish(collect), LineSplitter::Status::more) << tc.name;
        EXPECT_EQ(got, tc.lines) << tc.name;
        EXPECT_EQ(splitter.pending(), 0U) << tc.name;
    }
}

TEST(LineSplitter, HoldsAnIncompleteLineUntilItsNewline) {
    LineSplitter splitter{1024};
    std::vector<std::string> got;
    const LineHandler collect = [&](std::string_view line) {
        got.emplace_back(line);
        return true;
    };
    EXPECT_EQ(splitter.feed("abc", collect), LineSplitter::Status::more);
    EXPECT_TRUE(got.empty());
    EXPECT_EQ(splitter.pending(), 3U);
    EXPECT_EQ(splitter.feed("d\ne", collect), LineSplitter::Status::more);
    EXPECT_EQ(got, std::vector<std::string>{"abcd"});
    EXPECT_EQ(splitter.pending(), 1U);
}

TEST(LineSplitter, LineOverTheLimitIsTooLongWhetherSplitOrNot) {
    const LineHandler ignore = [](std::string_view) { return true; };
    LineSplitter whole{4};
    EXPECT_EQ(whole.feed("1234\n", ignore), LineSplitter::Status::more);
    EXPECT_EQ(whole.feed("12345\n", ignore), LineSplitter::Status::too_long);

    LineSplitter split{4};
    EXPECT_EQ(split.feed("123", ignore), LineSplitter::Status::more);
    EXPECT_EQ(split.feed("45", ignore), LineSplitter::Status::too_long);

    LineSplitter tail{4};
    EXPECT_EQ(tail.feed("12", ignore), LineSplitter::Status::more);
    EXPECT_EQ(tail.feed("345\n", ignore), LineSplitter::Status::too_long);
}

TEST(LineSplitter, HandlerReturningFalseStops) {
    LineSplitter splitter{1024};
    std::vector<std::string> got;
    const LineHandler first_only = [&](std::string_view line) {
        got.emplace_back(line);
        return false;
    };
    EXPECT_EQ(splitter.feed("a\nb\n", first_only), LineSplitter::Status::stopped);
    EXPECT_EQ(got, std::vector<std::string>{"a"});
}

}  // namespace
}  // namespace nmid::kube
