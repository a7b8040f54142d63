#include "nmid/pods/pod_file_source.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "nmid/pods/pod_index.hpp"
#include "support/manual_clock.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using ListResult = Result<std::shared_ptr<const PodList>>;

std::string read_fixture(const std::string& name) {
    std::ifstream in{std::string{NMID_FIXTURES_DIR} + "/" + name, std::ios::binary};
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void write_file(const fs::path& path, const std::string& body) {
    std::ofstream out{path, std::ios::binary | std::ios::trunc};
    out << body;
}

std::string one_pod(const std::string& name, const std::string& ip) {
    return R"({"kind":"PodList","items":[{"metadata":{"name":")" + name +
           R"(","namespace":"default"},"status":{"phase":"Running","podIP":")" + ip + R"("}}]})";
}

class PodFileSourceTest : public ::testing::Test {
protected:
    PodFileSourceTest() {
        dir_ = fs::temp_directory_path() /
               ("nmid-pods-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    ~PodFileSourceTest() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    ListResult list(PodFileSource& source) {
        std::optional<ListResult> out;
        asio::co_spawn(ioc_, source.list(SteadyTime::max()),
                       [&](const std::exception_ptr& e, ListResult r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           out = std::move(r);
                       });
        ioc_.restart();
        ioc_.run();
        EXPECT_TRUE(out.has_value());
        return out ? *out : ListResult{Errc::io_error};
    }

    fs::path dir_;
    asio::io_context ioc_;
};

TEST_F(PodFileSourceTest, ReadsAPodListFile) {
    const auto path = dir_ / "pods.json";
    write_file(path, read_fixture("pods_example.json"));
    PodFileSource source{path.string()};
    auto r = list(source);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    ASSERT_EQ((*r)->pods.size(), 3U);
    EXPECT_EQ((*r)->pods[0].name, "demo");
}

TEST_F(PodFileSourceTest, UnchangedFileReturnsTheSamePointer) {
    const auto path = dir_ / "pods.json";
    write_file(path, one_pod("a", "10.0.0.1"));
    PodFileSource source{path.string()};
    auto first = list(source);
    auto second = list(source);
    ASSERT_TRUE(first.has_value());
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(first->get(), second->get());
}

TEST_F(PodFileSourceTest, RewrittenFileReturnsANewList) {
    const auto path = dir_ / "pods.json";
    write_file(path, one_pod("a", "10.0.0.1"));
    PodFileSource source{path.string()};
    auto first = list(source);
    write_file(path, one_pod("bb", "10.0.0.2"));  // another size: seen even within one mtime tick
    auto second = list(source);
    ASSERT_TRUE(first.has_value());
    ASSERT_TRUE(second.has_value());
    EXPECT_NE(first->get(), second->get());
    EXPECT_EQ((*second)->pods.at(0).name, "bb");
    EXPECT_EQ((*first)->pods.at(0).name, "a");  // the old list is untouched
}

TEST_F(PodFileSourceTest, FileReplacedByRenameReturnsANewList) {
    const auto path = dir_ / "pods.json";
    write_file(path, one_pod("a", "10.0.0.1"));
    PodFileSource source{path.string()};
    auto first = list(source);
    const auto staged = dir_ / "pods.json.tmp";
    write_file(staged, one_pod("b", "10.0.0.2"));  // same size, new inode
    fs::rename(staged, path);
    auto second = list(source);
    ASSERT_TRUE(second.has_value());
    EXPECT_NE(first->get(), second->get());
    EXPECT_EQ((*second)->pods.at(0).name, "b");
}

TEST_F(PodFileSourceTest, MissingFileIsPodSourceFailed) {
    PodFileSource source{(dir_ / "absent.json").string()};
    auto r = list(source);
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error(), Errc::pod_source_failed);
}

TEST_F(PodFileSourceTest, DirectoryIsPodSourceFailed) {
    PodFileSource source{dir_.string()};
    auto r = list(source);
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error(), Errc::pod_source_failed);
}

TEST_F(PodFileSourceTest, InvalidFileIsParseErrorUntilFixed) {
    const auto path = dir_ / "pods.json";
    write_file(path, R"({"kind":"PodList","items":[{"metadata":{"name":1}}]})");
    PodFileSource source{path.string()};
    auto bad = list(source);
    ASSERT_TRUE(bad.has_error());
    EXPECT_EQ(bad.error(), Errc::parse_error);
    auto still_bad = list(source);  // same version: not re-parsed, same answer
    ASSERT_TRUE(still_bad.has_error());
    EXPECT_EQ(still_bad.error(), Errc::parse_error);

    write_file(path, one_pod("fixed", "10.0.0.3"));
    auto good = list(source);
    ASSERT_TRUE(good.has_value());
    EXPECT_EQ((*good)->pods.at(0).name, "fixed");
}

TEST_F(PodFileSourceTest, FileDeletedAfterASuccessfulRead) {
    const auto path = dir_ / "pods.json";
    write_file(path, one_pod("a", "10.0.0.1"));
    PodFileSource source{path.string()};
    ASSERT_TRUE(list(source).has_value());
    fs::remove(path);
    auto r = list(source);
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error(), Errc::pod_source_failed);
    write_file(path, one_pod("a", "10.0.0.1"));
    EXPECT_TRUE(list(source).has_value());
}

TEST_F(PodFileSourceTest, FeedsThePodIndex) {
    const auto path = dir_ / "pods.json";
    write_file(path, read_fixture("pods_example.json"));
    PodFileSource source{path.string()};
    test::ManualClock clock;
    PodIndex index{ioc_.get_executor(), source, clock, {}};
    std::optional<Result<void>> refreshed;
    asio::co_spawn(ioc_, index.refresh(), [&](const std::exception_ptr& e, Result<void> r) {
        if (e) {
            std::rethrow_exception(e);
        }
        refreshed = r;
    });
    ioc_.run();
    ASSERT_TRUE(refreshed.has_value());
    ASSERT_TRUE(refreshed->has_value());
    auto demo = index.find(asio::ip::make_address("127.0.0.2"));
    ASSERT_TRUE(demo.has_value());
    EXPECT_EQ((*demo)->name, "demo");
    EXPECT_EQ((*demo)->labels.at("aadpodidbinding"), "kv-reader");
    EXPECT_EQ((*index.find(asio::ip::make_address("127.0.0.4")))->namespace_name, "kube-system");
}

}  // namespace
}  // namespace nmid
