#include "nmid/crd/crd_file_source.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "log_capture.hpp"
#include "support/manual_clock.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::LogCapture;

constexpr auto kInterval = 1s;

std::string identity_yaml(const std::string& name, const std::string& client_id) {
    return "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentity\nmetadata: {name: " + name +
           "}\nspec: {clientID: " + client_id + "}\n";
}

// A private directory under $TMPDIR, removed with everything in it.
class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "nmid-crd-XXXXXX");
        path_ = ::mkdtemp(pattern.data());
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// Writes like editors and ConfigMap volumes do: a new file renamed over the old one.
void replace_file(const std::filesystem::path& path, const std::string& content) {
    const auto tmp = path.string() + ".tmp";
    {
        std::ofstream out{tmp, std::ios::binary | std::ios::trunc};
        out << content;
    }
    std::filesystem::rename(tmp, path);
}

void overwrite_in_place(const std::filesystem::path& path, const std::string& content) {
    std::ofstream out{path, std::ios::binary | std::ios::trunc};
    out << content;
}

class CrdFileSourceTest : public ::testing::Test {
protected:
    CrdFileSourceTest() : file_(dir_.path() / "crds.yaml") {}

    ~CrdFileSourceTest() override {
        if (source_ && !done_) {
            signal_.emit(asio::cancellation_type::terminal);
            ioc_.poll();
        }
    }

    void start() {
        source_ = std::make_unique<CrdFileSource>(
            clock_, CrdSettings{.crds_file = file_.string(), .poll_interval = kInterval});
        asio::co_spawn(
            ioc_, source_->run([this](CrdSnapshotPtr s) { published_.push_back(std::move(s)); }),
            asio::bind_cancellation_slot(signal_.slot(), [this](std::exception_ptr e) {
                done_ = true;
                error_ = std::move(e);
            }));
        ioc_.poll();
    }

    void tick() {
        clock_.advance(kInterval);
        ioc_.poll();
    }

    [[nodiscard]] std::string last_client_id() const {
        if (published_.empty() || published_.back()->identities.empty()) {
            return "<none>";
        }
        return published_.back()->identities.front().client_id;
    }

    TempDir dir_;
    std::filesystem::path file_;
    asio::io_context ioc_;
    test::ManualClock clock_;
    asio::cancellation_signal signal_;
    std::unique_ptr<CrdFileSource> source_;
    std::vector<CrdSnapshotPtr> published_;
    bool done_ = false;
    std::exception_ptr error_;
};

TEST_F(CrdFileSourceTest, PublishesAtOnceAndCountsObjects) {
    replace_file(file_, identity_yaml("a", "c1") + "---\n" +
                            "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentityBinding\n"
                            "metadata: {name: b}\nspec: {azureIdentity: a, selector: s}\n");
    start();
    ASSERT_EQ(published_.size(), 1U);
    EXPECT_EQ(last_client_id(), "c1");
    const CrdFileStats stats = source_->stats();
    EXPECT_EQ(stats.reloads, 1U);
    EXPECT_EQ(stats.failures, 0U);
    EXPECT_EQ(stats.identities, 1U);
    EXPECT_EQ(stats.bindings, 1U);
    EXPECT_EQ(stats.exceptions, 0U);
    EXPECT_EQ(stats.assigned, 0U);
}

TEST_F(CrdFileSourceTest, RepublishesOnlyWhenTheFileChanges) {
    replace_file(file_, identity_yaml("a", "c1"));
    start();
    ASSERT_EQ(published_.size(), 1U);
    tick();
    tick();
    EXPECT_EQ(published_.size(), 1U);

    replace_file(file_, identity_yaml("a", "c2-changed"));
    EXPECT_EQ(published_.size(), 1U);  // nothing before the next poll
    tick();
    ASSERT_EQ(published_.size(), 2U);
    EXPECT_EQ(last_client_id(), "c2-changed");
    EXPECT_EQ(source_->stats().reloads, 2U);
}

TEST_F(CrdFileSourceTest, SameBytesRewrittenAreNotRepublished) {
    replace_file(file_, identity_yaml("a", "c1"));
    start();
    replace_file(file_, identity_yaml("a", "c1"));
    tick();
    EXPECT_EQ(published_.size(), 1U);
}

TEST_F(CrdFileSourceTest, InPlaceRewriteOfTheSameSizeIsSeen) {
    replace_file(file_, identity_yaml("a", "c1"));
    start();
    // Same inode, same size, and possibly the same coarse mtime tick as the first read.
    overwrite_in_place(file_, identity_yaml("a", "c9"));
    tick();
    ASSERT_EQ(published_.size(), 2U);
    EXPECT_EQ(last_client_id(), "c9");
}

TEST_F(CrdFileSourceTest, BadEditKeepsThePreviousSnapshotAndWarnsOnce) {
    const LogCapture log;
    replace_file(file_, identity_yaml("a", "c1"));
    start();
    replace_file(file_, identity_yaml("a", "c1") + "spec: {type: [broken\n");
    tick();
    tick();
    tick();
    EXPECT_EQ(published_.size(), 1U);
    EXPECT_EQ(last_client_id(), "c1");
    EXPECT_EQ(source_->stats().failures, 1U);
    const auto warnings = log.lines("warning");
    ASSERT_EQ(warnings.size(), 1U);
    EXPECT_NE(warnings[0].find(file_.string()), std::string::npos) << warnings[0];
    EXPECT_NE(warnings[0].find("keeping the previous snapshot"), std::string::npos);

    replace_file(file_, identity_yaml("a", "c3-fixed"));
    tick();
    ASSERT_EQ(published_.size(), 2U);
    EXPECT_EQ(last_client_id(), "c3-fixed");
}

TEST_F(CrdFileSourceTest, WrongFieldTypeIsReportedWithTheParseDetail) {
    const LogCapture log;
    replace_file(file_, identity_yaml("a", "c1"));
    start();
    replace_file(file_,
                 "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentity\n"
                 "metadata: {name: a}\nspec: {type: one}\n");
    tick();
    EXPECT_EQ(published_.size(), 1U);
    const auto warnings = log.lines("warning");
    ASSERT_EQ(warnings.size(), 1U);
    EXPECT_NE(warnings[0].find("document 1: AzureIdentity default/a: spec.type must be an integer"),
              std::string::npos)
        << warnings[0];
}

TEST_F(CrdFileSourceTest, MissingFileIsRetriedUntilItAppears) {
    const LogCapture log;
    start();
    EXPECT_TRUE(published_.empty());
    tick();
    tick();
    EXPECT_TRUE(published_.empty());
    EXPECT_EQ(log.lines("warning").size(), 1U);
    EXPECT_EQ(source_->stats().failures, 1U);

    replace_file(file_, identity_yaml("a", "late"));
    tick();
    ASSERT_EQ(published_.size(), 1U);
    EXPECT_EQ(last_client_id(), "late");
}

TEST_F(CrdFileSourceTest, BadFileAtStartIsRetriedUntilFixed) {
    replace_file(file_, "kind: [");
    start();
    tick();
    EXPECT_TRUE(published_.empty());
    replace_file(file_, identity_yaml("a", "good"));
    tick();
    ASSERT_EQ(published_.size(), 1U);
    EXPECT_EQ(last_client_id(), "good");
}

TEST_F(CrdFileSourceTest, DeletedFileKeepsTheSnapshotUntilItComesBack) {
    replace_file(file_, identity_yaml("a", "c1"));
    start();
    std::filesystem::remove(file_);
    tick();
    tick();
    EXPECT_EQ(published_.size(), 1U);
    EXPECT_EQ(source_->stats().failures, 1U);
    replace_file(file_, identity_yaml("a", "c1"));
    tick();
    // Same bytes as published: nothing new to publish.
    EXPECT_EQ(published_.size(), 1U);
    replace_file(file_, identity_yaml("a", "c2"));
    tick();
    ASSERT_EQ(published_.size(), 2U);
    EXPECT_EQ(last_client_id(), "c2");
}

TEST_F(CrdFileSourceTest, FollowsASymlinkSwap) {
    // ConfigMap volumes: the file is a symlink into a directory swapped atomically.
    const auto v1 = dir_.path() / "v1.yaml";
    const auto v2 = dir_.path() / "v2.yaml";
    replace_file(v1, identity_yaml("a", "from-v1"));
    replace_file(v2, identity_yaml("a", "from-v2"));
    std::filesystem::create_symlink(v1, file_);
    start();
    EXPECT_EQ(last_client_id(), "from-v1");
    const auto link_tmp = dir_.path() / "link.tmp";
    std::filesystem::create_symlink(v2, link_tmp);
    std::filesystem::rename(link_tmp, file_);
    tick();
    ASSERT_EQ(published_.size(), 2U);
    EXPECT_EQ(last_client_id(), "from-v2");
}

TEST_F(CrdFileSourceTest, ReturnsWhenCancelled) {
    replace_file(file_, identity_yaml("a", "c1"));
    start();
    EXPECT_FALSE(done_);
    EXPECT_EQ(clock_.waiters(), 1U);
    signal_.emit(asio::cancellation_type::terminal);
    ioc_.poll();
    EXPECT_TRUE(done_);
    EXPECT_EQ(error_, nullptr);
    EXPECT_EQ(clock_.waiters(), 0U);
    // No more polls after cancellation.
    replace_file(file_, identity_yaml("a", "c2"));
    tick();
    EXPECT_EQ(published_.size(), 1U);
}

TEST(CrdFileSourceAge, AFileIsAlwaysFresh) {
    test::ManualClock clock;
    const CrdFileSource source{clock, CrdSettings{}};
    clock.advance(std::chrono::hours{24});
    EXPECT_EQ(source.snapshot_age(), Millis{0});
    EXPECT_TRUE(tokens_allowed(source.snapshot_age(), Millis{1}));
}

}  // namespace
}  // namespace nmid
