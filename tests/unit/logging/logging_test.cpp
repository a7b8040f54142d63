#include "nmid/logging/logging.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "nmid/core/utf8.hpp"

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

// ---------------------------------------------------------------------------------------------
// The audit line against an oracle written from the documented format (the line spdlog's
// formatters produced around audit()'s payload before audit() wrote into the sink directly).

std::string hex_escape(unsigned char c) {
    static constexpr std::string_view kHex = "0123456789abcdef";
    return std::string{"\\x"} + kHex[c >> 4U] + kHex[c & 0xFU];
}

std::string oracle_text_escape(std::string_view s, bool quoted) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t n = utf8_sequence_length(s, i);
            out += n == 0 ? hex_escape(c) : std::string{s.substr(i, n)};
            i += n == 0 ? 1 : n;
            continue;
        }
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7F) {
            out += hex_escape(c);
        } else if (quoted && (c == '"' || c == '\\')) {
            out += '\\';
            out += static_cast<char>(c);
        } else {
            out += static_cast<char>(c);
        }
        ++i;
    }
    return out;
}

std::string oracle_text_field(std::string_view key, std::string_view value) {
    if (value.empty()) {
        return "";
    }
    const bool quoted = value.find_first_of(" \"=") != std::string_view::npos;
    const std::string escaped = oracle_text_escape(value, quoted);
    return " " + std::string{key} + "=" + (quoted ? "\"" + escaped + "\"" : escaped);
}

std::string oracle_json_escape(std::string_view s) {
    static constexpr std::string_view kHex = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t n = utf8_sequence_length(s, i);
            out += n == 0 ? std::string{"\\ufffd"} : std::string{s.substr(i, n)};
            i += n == 0 ? 1 : n;
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    out += std::string{"\\u00"} + kHex[c >> 4U] + kHex[c & 0xFU];
                } else {
                    out += static_cast<char>(c);
                }
        }
        ++i;
    }
    return out;
}

std::string oracle_json_field(std::string_view key, std::string_view value) {
    return value.empty() ? ""
                         : ",\"" + std::string{key} + "\":\"" + oracle_json_escape(value) + "\"";
}

std::string path_of(const AuditRecord& r) {
    return std::string{r.path.substr(0, r.path.find('?'))};
}

/// The text line after "<timestamp> ".
std::string oracle_text(const AuditRecord& r) {
    std::string line = "I status (" + std::to_string(r.status) + ") took " +
                       std::to_string(r.took.count()) +
                       " ns for req.method=" + oracle_text_escape(r.method, false) +
                       " reg.path=" + oracle_text_escape(path_of(r), false) +
                       " req.remote=" + oracle_text_escape(r.remote, false);
    line += oracle_text_field("route", r.route);
    if (!r.pod_namespace.empty() || !r.pod_name.empty()) {
        line +=
            oracle_text_field("pod", std::string{r.pod_namespace} + "/" + std::string{r.pod_name});
    }
    line += oracle_text_field("identity", r.identity);
    line += oracle_text_field("cache", r.cache);
    line += oracle_text_field("error", r.error);
    return line;
}

/// The JSON line after `{"ts":"<timestamp>`.
std::string oracle_json(const AuditRecord& r) {
    std::string line =
        "\",\"level\":\"info\",\"msg\":\"request\",\"status\":" + std::to_string(r.status) +
        ",\"took_ns\":" + std::to_string(r.took.count()) + ",\"req.method\":\"" +
        oracle_json_escape(r.method) + "\",\"reg.path\":\"" + oracle_json_escape(path_of(r)) +
        "\",\"req.remote\":\"" + oracle_json_escape(r.remote) + "\"";
    line += oracle_json_field("route", r.route);
    if (!r.pod_namespace.empty() || !r.pod_name.empty()) {
        line += ",\"pod\":\"" + oracle_json_escape(r.pod_namespace) + "/" +
                oracle_json_escape(r.pod_name) + "\"";
    }
    line += oracle_json_field("identity", r.identity);
    line += oracle_json_field("cache", r.cache);
    line += oracle_json_field("error", r.error);
    return line + "}";
}

/// Checks that `text` holds one line per record, each as the oracle writes the record in
/// `format` (after the timestamp).
void expect_oracle_lines(LogFormat format, const std::vector<AuditRecord>& records,
                         const std::string& text) {
    const auto lines = lines_of(text);
    ASSERT_EQ(lines.size(), records.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (format == LogFormat::text) {
            EXPECT_EQ(lines[i].substr(25), oracle_text(records[i])) << i;
        } else {
            EXPECT_EQ(lines[i].substr(31), oracle_json(records[i])) << i;
        }
    }
}

TEST_F(LoggingTest, AuditLinesMatchTheDocumentedFormatForTrickyInputs) {
    const std::string invalid_utf8 = "\xff\xc0\xaf\xe2\x82";
    std::vector<AuditRecord> records;
    records.push_back(token_record());
    auto r = token_record();
    r.path = "/p a=b\"c\\d\n\r\t\x01\x7f/\xc3\xa9/?client_id=secret";
    r.method = "G\"ET";
    r.remote = "::1";
    records.push_back(r);
    r = token_record();
    r.pod_namespace = "ns with space";  // quotes the whole pod field
    r.pod_name = "na\"me\\";
    r.identity = "id=x";
    r.cache = "";
    r.error = "pod \"x\" not found\n";
    records.push_back(r);
    r = token_record();
    r.pod_namespace = invalid_utf8;  // an invalid sequence may not run on into the '/'
    r.pod_name = "\x80name\xe2\x82\xac";
    r.route = "";
    r.status = -1;
    r.took = -5ns;
    records.push_back(r);
    r = token_record();
    r.pod_namespace = "";
    r.pod_name = "only-name";
    r.identity = std::string_view{"\0\x1f", 2};
    r.error = "\xf0\x9f\x98\x80 emoji";
    records.push_back(r);
    r = AuditRecord{};  // every optional field empty
    records.push_back(r);
    r = token_record();
    r.status = std::numeric_limits<int>::min();
    r.took = std::chrono::nanoseconds{std::numeric_limits<std::int64_t>::min()};
    records.push_back(r);
    r.status = std::numeric_limits<int>::max();
    r.took = std::chrono::nanoseconds{std::numeric_limits<std::int64_t>::max()};
    records.push_back(r);

    use(LogFormat::text);
    for (const auto& record : records) {
        audit(record);
    }
    const auto text_lines = lines_of(flushed());
    ASSERT_EQ(text_lines.size(), records.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
        EXPECT_TRUE(has_text_prefix(text_lines[i])) << text_lines[i];
        EXPECT_EQ(text_lines[i].substr(25), oracle_text(records[i])) << i;
    }

    use(LogFormat::json);
    for (const auto& record : records) {
        audit(record);
    }
    const auto json_text = lines_of(flushed());
    ASSERT_EQ(json_text.size(), records.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
        ASSERT_TRUE(json_text[i].starts_with("{\"ts\":\"")) << json_text[i];
        EXPECT_TRUE(is_timestamp(json_text[i].substr(7, 24))) << json_text[i];
        EXPECT_EQ(json_text[i].substr(31), oracle_json(records[i])) << i;
        EXPECT_FALSE(nlohmann::json::parse(json_text[i], nullptr, false).is_discarded());
    }
}

TEST_F(LoggingTest, AuditEscapingIsRightAtEveryPositionOfLongValues) {
    // The escapers skip clean runs eight bytes at a time: a special byte must be caught at
    // every offset of a word and in the tail, in every field and both formats.
    const std::vector<std::string> specials = {"\n",   "\"",   "\\",       "=",    " ",
                                               "\x7f", "\x01", "\xc3\xa9", "\xff", "\xe2\x82"};
    const std::string alphabet = "abcdefghijklmnopqrstuvwxy";
    std::vector<std::string> values;
    for (const std::size_t length : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 25}) {
        const std::string clean = alphabet.substr(0, length);
        values.push_back(clean);
        for (const auto& special : specials) {
            for (std::size_t pos = 0; pos <= clean.size(); ++pos) {
                values.push_back(clean.substr(0, pos) + special + clean.substr(pos));
            }
        }
    }
    for (const auto format : {LogFormat::text, LogFormat::json}) {
        use(format);
        std::vector<AuditRecord> records;
        for (std::size_t i = 0; i < values.size(); ++i) {
            auto r = token_record();
            const std::string_view v = values[i];
            switch (i % 5) {
                case 0:
                    r.path = v;
                    break;
                case 1:
                    r.pod_namespace = v;
                    break;
                case 2:
                    r.pod_name = v;
                    break;
                case 3:
                    r.identity = v;
                    break;
                default:
                    r.error = v;
                    break;
            }
            records.push_back(r);
            audit(r);
        }
        expect_oracle_lines(format, records, flushed());
    }
}

TEST_F(LoggingTest, RepeatedAuditRecordsReuseNothingStaleWhenOneFieldChanges) {
    // Each thread remembers the formatted tail of its last line: a record that differs in any
    // one field (or only in where one field ends and the next begins), the same record in the
    // other format, and the same record again must each get their own right line.
    std::vector<AuditRecord> records;
    const auto base = token_record();
    records.push_back(base);
    records.push_back(base);  // identical: the remembered tail
    auto r = base;
    r.status = 503;  // head only
    r.took = 7ns;
    records.push_back(r);
    const std::vector<std::string_view AuditRecord::*> fields = {
        &AuditRecord::method,   &AuditRecord::path,          &AuditRecord::remote,
        &AuditRecord::route,    &AuditRecord::pod_namespace, &AuditRecord::pod_name,
        &AuditRecord::identity, &AuditRecord::cache,         &AuditRecord::error};
    for (const auto field : fields) {
        r = base;
        r.*field = "changed value";
        records.push_back(r);
        records.push_back(base);
    }
    r = base;
    r.pod_namespace = "defaultapp";  // the same bytes as "default" + "app-7d9"'s start...
    r.pod_name = "-7d9";             // ...split at another place
    records.push_back(r);
    r = base;
    r.path = "/metadata/identity/oauth2/token?client_id=secret";  // the same path once cut
    records.push_back(r);
    r = base;
    const std::string long_path(3000, 'p');
    r.path = long_path;  // too long to keep: formatted every time
    records.push_back(r);
    records.push_back(r);
    records.push_back(base);

    for (const auto format : {LogFormat::text, LogFormat::json, LogFormat::text}) {
        use(format);
        for (const auto& record : records) {
            audit(record);
        }
        expect_oracle_lines(format, records, flushed());
    }
}

TEST_F(LoggingTest, AuditThroughAnotherDefaultLoggerKeepsThePayload) {
    use(LogFormat::text);
    // A logger installed after setup() (not ours): audit() falls back to an ordinary record.
    auto previous = spdlog::default_logger();
    auto other = std::make_shared<spdlog::logger>("other", previous->sinks().begin(),
                                                  previous->sinks().end());
    spdlog::set_default_logger(other);
    audit(token_record());
    const auto lines = lines_of(flushed());
    spdlog::set_default_logger(previous);
    ASSERT_EQ(lines.size(), 1U);
    EXPECT_EQ(lines[0].substr(25), oracle_text(token_record()));
}

// ---------------------------------------------------------------------------------------------
// The flusher thread (setup()'s): the threads that log never write to stdout themselves.

/// A writer that records each write and the thread that made it; can hold writes back.
class RecordingWriter {
public:
    std::function<void(std::string_view)> writer() {
        return [this](std::string_view data) {
            std::unique_lock lock{mutex_};
            writes_.push_back({std::this_thread::get_id(), std::string{data}});
            changed_.notify_all();
            changed_.wait(lock, [this] { return !hold_; });
        };
    }
    void hold(bool on) {
        const std::lock_guard lock{mutex_};
        hold_ = on;
        changed_.notify_all();
    }
    /// Waits (bounded safety net) until `n` writes happened.
    bool wait_writes(std::size_t n) {
        std::unique_lock lock{mutex_};
        return changed_.wait_for(lock, 20s, [&] { return writes_.size() >= n; });
    }
    struct Write {
        std::thread::id thread;
        std::string data;
    };
    std::vector<Write> writes() {
        const std::lock_guard lock{mutex_};
        return writes_;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Write> writes_;
    bool hold_ = false;
};

/// Installs a plain test logger at scope exit, so the flusher and the sink that write into a
/// test's locals are gone before the locals are.
struct ReinstallAtExit {
    ReinstallAtExit() = default;
    ReinstallAtExit(const ReinstallAtExit&) = delete;
    ReinstallAtExit& operator=(const ReinstallAtExit&) = delete;
    ~ReinstallAtExit() {
        setup_for_test({.format = LogFormat::text, .level = "info"},
                       std::make_shared<std::ostringstream>());
    }
};

TEST(LoggingFlusher, ThresholdIsWrittenByTheFlusherNotTheLoggingThread) {
    RecordingWriter recorder;
    const ReinstallAtExit reinstall;
    setup_for_test({.format = LogFormat::text, .level = "info"}, recorder.writer(), 1h);
    const std::string chunk(1000, 'x');
    for (int i = 0; i < 140; ++i) {  // crosses the 128 KiB hand-off once
        spdlog::info("{}", chunk);
    }
    ASSERT_TRUE(recorder.wait_writes(1));
    const auto writes = recorder.writes();
    EXPECT_NE(writes[0].thread, std::this_thread::get_id());
    EXPECT_GE(writes[0].data.size(), 128U * 1024U);
    flush();  // the rest, written by this thread
    std::size_t lines = 0;
    for (const auto& w : recorder.writes()) {
        lines += lines_of(w.data).size();
    }
    EXPECT_EQ(lines, 140U);
}

TEST(LoggingFlusher, WritesBufferedLinesEveryInterval) {
    RecordingWriter recorder;
    const ReinstallAtExit reinstall;
    setup_for_test({.format = LogFormat::text, .level = "info"}, recorder.writer(), 5ms);
    audit(token_record());
    ASSERT_TRUE(recorder.wait_writes(1));  // no flush(): the interval wrote it
    const auto writes = recorder.writes();
    EXPECT_NE(writes[0].thread, std::this_thread::get_id());
    const auto lines = lines_of(writes[0].data);
    ASSERT_EQ(lines.size(), 1U);
    EXPECT_EQ(lines[0].substr(25), oracle_text(token_record()));
}

TEST(LoggingFlusher, WarnWaitsForTheFlushersWriteSoLinesStayInOrder) {
    RecordingWriter recorder;
    const ReinstallAtExit reinstall;
    setup_for_test({.format = LogFormat::text, .level = "info"}, recorder.writer(), 1h);
    recorder.hold(true);  // the flusher's first write blocks inside the writer
    const std::string chunk(1000, 'x');
    for (int i = 0; i < 130; ++i) {  // crosses the 128 KiB hand-off
        spdlog::info("{}", chunk);
    }
    ASSERT_TRUE(recorder.wait_writes(1));  // the flusher is inside its write now
    spdlog::info("buffered meanwhile");
    std::thread warner{[] { spdlog::warn("after"); }};  // must not overtake the held write
    recorder.hold(false);
    warner.join();
    flush();
    std::string all;
    for (const auto& w : recorder.writes()) {
        all += w.data;
    }
    const auto lines = lines_of(all);
    ASSERT_EQ(lines.size(), 132U);
    EXPECT_TRUE(lines[130].ends_with(" I buffered meanwhile")) << lines[130];
    EXPECT_TRUE(lines[131].ends_with(" W after")) << lines[131];
}

TEST(LoggingFlusher, NoLineIsLostOrReorderedUnderLoad) {
    std::string all;
    std::mutex all_mutex;
    const ReinstallAtExit reinstall;
    setup_for_test(
        {.format = LogFormat::text, .level = "info"},
        [&](std::string_view data) {
            const std::lock_guard lock{all_mutex};
            all.append(data);
        },
        1ms);
    // ~1.5 MiB from two threads: hand-offs, interval writes and the 1 MiB backpressure path.
    const std::string pad(300, 'p');
    auto log_some = [&](int thread) {
        for (int i = 0; i < 2500; ++i) {
            spdlog::info("t{} n{} {}", thread, i, pad);
        }
    };
    std::thread other{log_some, 1};
    log_some(0);
    other.join();
    flush();
    const std::lock_guard lock{all_mutex};
    const auto lines = lines_of(all);
    ASSERT_EQ(lines.size(), 5000U);
    int next[2] = {0, 0};
    for (const auto& line : lines) {
        const std::size_t t = line.find(" t");
        ASSERT_NE(t, std::string::npos) << line;
        const int thread = line[t + 2] - '0';
        const int n = std::stoi(line.substr(line.find(" n", t) + 2));
        EXPECT_EQ(n, next[thread]) << line;
        next[thread] = n + 1;
    }
}

}  // namespace
}  // namespace nmid::logging
