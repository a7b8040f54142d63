#include "nmid/logging/logging.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace nmid::logging {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in{text};
    std::string line;
    while (std::getline(in, line)) {
        lines.push_back(line);
    }
    return lines;
}

class LoggingTest : public ::testing::Test {
protected:
    void use(LogFormat format, std::string level = "info") {
        out_ = std::make_shared<std::ostringstream>();
        setup_for_test({.format = format, .level = std::move(level)}, out_);
    }
    /// Everything written so far, after flushing the buffer.
    std::string flushed() {
        flush();
        return out_->str();
    }
    std::vector<nlohmann::json> json_lines() {
        std::vector<nlohmann::json> out;
        for (const auto& line : lines_of(flushed())) {
            auto doc = nlohmann::json::parse(line, nullptr, false);
            EXPECT_FALSE(doc.is_discarded()) << "not JSON: " << line;
            EXPECT_TRUE(doc.is_object()) << line;
            out.push_back(std::move(doc));
        }
        return out;
    }

    std::shared_ptr<std::ostringstream> out_;
};

AuditRecord token_record() {
    return AuditRecord{.method = "GET",
                       .path = "/metadata/identity/oauth2/token",
                       .remote = "10.240.0.117",
                       .status = 200,
                       .took = 537597ns,
                       .route = "token",
                       .pod_namespace = "default",
                       .pod_name = "app-7d9",
                       .identity = "default/app-id",
                       .cache = "hit",
                       .error = ""};
}

// "YYYY-MM-DDTHH:MM:SS.mmmZ" (std::regex trips GCC 12's maybe-uninitialized under ASan).
bool is_timestamp(std::string_view ts) {
    static constexpr std::string_view kShape = "0000-00-00T00:00:00.000Z";
    if (ts.size() != kShape.size()) {
        return false;
    }
    for (std::size_t i = 0; i < ts.size(); ++i) {
        const bool digit = ts[i] >= '0' && ts[i] <= '9';
        if (kShape[i] == '0' ? !digit : ts[i] != kShape[i]) {
            return false;
        }
    }
    return true;
}

/// `<timestamp> <level letter> `, as every text line starts.
bool has_text_prefix(std::string_view line) {
    return line.size() > 26 && is_timestamp(line.substr(0, 24)) && line[24] == ' ' &&
           std::string_view{"TDIWEC"}.find(line[25]) != std::string_view::npos && line[26] == ' ';
}

TEST_F(LoggingTest, TextAuditLineKeepsNmiPrefixAndAddsFields) {
    use(LogFormat::text);
    audit(token_record());

    const auto lines = lines_of(flushed());
    ASSERT_EQ(lines.size(), 1U);
    EXPECT_TRUE(has_text_prefix(lines[0])) << lines[0];
    EXPECT_EQ(lines[0].substr(25),
              "I status (200) took 537597 ns for req.method=GET "
              "reg.path=/metadata/identity/oauth2/token req.remote=10.240.0.117 route=token "
              "pod=default/app-7d9 identity=default/app-id cache=hit");
}

TEST_F(LoggingTest, TextAuditOmitsEmptyFieldsAndQuotesErrorWithSpaces) {
    use(LogFormat::text);
    audit({.method = "GET",
           .path = "/metadata/identity/oauth2/token",
           .remote = "10.0.0.9",
           .status = 404,
           .took = 1ms,
           .route = "token",
           .error = "pod \"x\" not found"});

    const auto lines = lines_of(flushed());
    ASSERT_EQ(lines.size(), 1U);
    EXPECT_TRUE(lines[0].ends_with(
        "status (404) took 1000000 ns for req.method=GET reg.path=/metadata/identity/oauth2/token "
        "req.remote=10.0.0.9 route=token error=\"pod \\\"x\\\" not found\""))
        << lines[0];
    EXPECT_EQ(lines[0].find("pod="), std::string::npos);
    EXPECT_EQ(lines[0].find("cache="), std::string::npos);
}

TEST_F(LoggingTest, AuditNeverLogsQueryString) {
    for (const auto format : {LogFormat::text, LogFormat::json}) {
        use(format);
        auto record = token_record();
        record.path = "/metadata/identity/oauth2/token?api-version=2018-02-01&client_id=secret-cid";
        audit(record);
        const std::string text = flushed();
        EXPECT_EQ(text.find("secret-cid"), std::string::npos) << text;
        EXPECT_EQ(text.find("api-version"), std::string::npos) << text;
        EXPECT_NE(text.find("/metadata/identity/oauth2/token"), std::string::npos) << text;
    }
}

TEST_F(LoggingTest, TextReplacesControlCharactersSoOneRecordIsOneLine) {
    use(LogFormat::text);
    auto record = token_record();
    record.path = "/a\nI forged line\r\x01\x7f";
    audit(record);
    spdlog::info("multi\nline\tmessage \xff end");

    const auto lines = lines_of(flushed());
    ASSERT_EQ(lines.size(), 2U);
    EXPECT_NE(lines[0].find("reg.path=/a\\nI forged line\\r\\x01\\x7f req.remote="),
              std::string::npos)
        << lines[0];
    EXPECT_TRUE(lines[1].ends_with(" I multi\\nline\\tmessage \\xff end")) << lines[1];
}

TEST_F(LoggingTest, TextPlainLineHasTimestampAndLevelLetter) {
    use(LogFormat::text, "trace");
    spdlog::trace("t");
    spdlog::debug("d");
    spdlog::info("listening on {}:{}", "127.0.0.1", 2579);
    spdlog::warn("w");
    spdlog::error("e");
    spdlog::critical("c");

    const auto lines = lines_of(flushed());
    ASSERT_EQ(lines.size(), 6U);
    const char letters[] = {'T', 'D', 'I', 'W', 'E', 'C'};
    for (std::size_t i = 0; i < lines.size(); ++i) {
        EXPECT_TRUE(has_text_prefix(lines[i])) << lines[i];
        EXPECT_EQ(lines[i][25], letters[i]) << lines[i];
    }
    EXPECT_TRUE(lines[2].ends_with(" I listening on 127.0.0.1:2579"));
}

TEST_F(LoggingTest, JsonAuditRecordHasAllFields) {
    use(LogFormat::json);
    audit(token_record());

    const auto docs = json_lines();
    ASSERT_EQ(docs.size(), 1U);
    const auto& doc = docs[0];
    EXPECT_EQ(doc["level"], "info");
    EXPECT_EQ(doc["msg"], "request");
    EXPECT_EQ(doc["status"], 200);
    EXPECT_EQ(doc["took_ns"], 537597);
    EXPECT_EQ(doc["req.method"], "GET");
    EXPECT_EQ(doc["reg.path"], "/metadata/identity/oauth2/token");
    EXPECT_EQ(doc["req.remote"], "10.240.0.117");
    EXPECT_EQ(doc["route"], "token");
    EXPECT_EQ(doc["pod"], "default/app-7d9");
    EXPECT_EQ(doc["identity"], "default/app-id");
    EXPECT_EQ(doc["cache"], "hit");
    EXPECT_FALSE(doc.contains("error"));
    ASSERT_TRUE(doc["ts"].is_string());
    EXPECT_TRUE(is_timestamp(doc["ts"].get<std::string>())) << doc["ts"];
}

TEST_F(LoggingTest, JsonEscapesQuotesNewlinesControlsAndInvalidUtf8) {
    use(LogFormat::json);
    auto record = token_record();
    const std::string path = std::string{"/p\"q\\r\n\r\t\x01\x1f\x7f/\xc3\xa9/"} + "\xff\xc0\xaf";
    record.path = path;
    record.error = "bad \"thing\"\n";
    audit(record);
    spdlog::info("plain \"quoted\" {}\n\x02 \xe2\x82", "\\");

    const auto docs = json_lines();
    ASSERT_EQ(docs.size(), 2U);
    EXPECT_EQ(docs[0]["reg.path"],
              "/p\"q\\r\n\r\t\x01\x1f\x7f/\xc3\xa9/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    EXPECT_EQ(docs[0]["error"], "bad \"thing\"\n");
    EXPECT_EQ(docs[1]["msg"], "plain \"quoted\" \\\n\x02 \xef\xbf\xbd\xef\xbf\xbd");
    EXPECT_EQ(docs[1]["level"], "info");
}

TEST_F(LoggingTest, JsonPlainLinesAreObjectsWithLevelNames) {
    use(LogFormat::json, "debug");
    spdlog::debug("d");
    spdlog::info("i");
    spdlog::warn("w");
    spdlog::error("e");

    const auto docs = json_lines();
    ASSERT_EQ(docs.size(), 4U);
    const char* levels[] = {"debug", "info", "warn", "error"};
    const char* messages[] = {"d", "i", "w", "e"};
    for (std::size_t i = 0; i < docs.size(); ++i) {
        EXPECT_EQ(docs[i]["level"], levels[i]);
        EXPECT_EQ(docs[i]["msg"], messages[i]);
        EXPECT_EQ(docs[i].size(), 3U) << docs[i];
    }
}

TEST_F(LoggingTest, LevelFiltersLowerRecordsAndAudit) {
    use(LogFormat::text, "warn");
    spdlog::info("hidden");
    spdlog::debug("hidden too");
    audit(token_record());
    spdlog::warn("shown");

    const auto lines = lines_of(flushed());
    ASSERT_EQ(lines.size(), 1U);
    EXPECT_TRUE(lines[0].ends_with(" W shown"));
}

TEST_F(LoggingTest, OffSilencesEverything) {
    use(LogFormat::json, "off");
    spdlog::critical("nothing");
    audit(token_record());
    EXPECT_EQ(flushed(), "");
}

TEST_F(LoggingTest, UnknownLevelIsRejected) {
    auto out = std::make_shared<std::ostringstream>();
    EXPECT_THROW(setup_for_test({.format = LogFormat::text, .level = "verbose"}, out),
                 std::invalid_argument);
}

TEST_F(LoggingTest, InfoIsBufferedUntilFlush) {
    use(LogFormat::text);
    spdlog::info("first");
    audit(token_record());
    EXPECT_EQ(out_->str(), "");

    flush();
    const auto lines = lines_of(out_->str());
    ASSERT_EQ(lines.size(), 2U);
    EXPECT_TRUE(lines[0].ends_with(" I first"));
}

TEST_F(LoggingTest, WarnWritesAtOnceWithWhatWasBufferedBefore) {
    use(LogFormat::text);
    spdlog::info("before");
    spdlog::warn("problem");

    const auto lines = lines_of(out_->str());  // no flush()
    ASSERT_EQ(lines.size(), 2U);
    EXPECT_TRUE(lines[0].ends_with(" I before"));
    EXPECT_TRUE(lines[1].ends_with(" W problem"));
    spdlog::error("worse");
    EXPECT_TRUE(lines_of(out_->str()).back().ends_with(" E worse"));
}

TEST_F(LoggingTest, BufferIsWrittenWhen32KiBAccumulate) {
    use(LogFormat::text);
    const std::string chunk(1000, 'x');
    int logged = 0;
    while (out_->str().empty()) {
        spdlog::info("{}", chunk);
        ++logged;
        ASSERT_LT(logged, 100) << "buffer never written";
    }
    // Each line is ~1026 bytes, so the write happens on the line that crosses 32 KiB.
    EXPECT_EQ(logged, 32);
    EXPECT_GE(out_->str().size(), 32U * 1024U);
    EXPECT_EQ(lines_of(out_->str()).size(), 32U);
}

}  // namespace
}  // namespace nmid::logging
