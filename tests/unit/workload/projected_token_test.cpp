#include "nmid/workload/projected_token.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nmid/cloud/base64.hpp"
#include "support/manual_clock.hpp"

namespace nmid::workload {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::string_view kUid = "0f0e0d0c-0b0a-4009-8807-060504030201";

std::string jwt(std::int64_t iat, std::int64_t exp,
                const std::string& sub = "system:serviceaccount:shop:web") {
    const std::string header = R"({"alg":"RS256","kid":"k1"})";
    const std::string claims = R"({"aud":["api://AzureADTokenExchange"],"exp":)" +
                               std::to_string(exp) + R"(,"iat":)" + std::to_string(iat) +
                               R"(,"sub":")" + sub + R"("})";
    return cloud::base64url_encode(header, false) + "." + cloud::base64url_encode(claims, false) +
           ".c2lnbmF0dXJl";
}

PodInfo pod(std::string volume = "azure-identity-token",
            std::string path = "token/azure-identity-token") {
    PodInfo p;
    p.namespace_name = "shop";
    p.name = "web-0";
    p.uid = std::string{kUid};
    p.service_account = "web";
    p.token_projections.push_back({.volume = "kube-api-access-x", .path = "token", .audience = ""});
    p.token_projections.push_back({.volume = std::move(volume),
                                   .path = std::move(path),
                                   .audience = "api://AzureADTokenExchange",
                                   .expiration_seconds = 3600});
    return p;
}

// The kubelet's atomic writer: <volume>/..<ts>/token/azure-identity-token, ..data -> ..<ts>,
// token -> ..data/token.
class ProjectedTokenTest : public ::testing::Test {
protected:
    ProjectedTokenTest() {
        volume_ = fs::path{root_} / "pods" / std::string{kUid} / "volumes" /
                  "kubernetes.io~projected" / "azure-identity-token";
        fs::create_directories(volume_);
    }
    ~ProjectedTokenTest() override { fs::remove_all(root_); }

    void project(const std::string& token, const std::string& generation) {
        const fs::path dir = volume_ / (".." + generation) / "token";
        fs::create_directories(dir);
        std::ofstream{dir / "azure-identity-token"} << token;
        const fs::path tmp = volume_ / "..data_tmp";
        fs::create_directory_symlink(".." + generation, tmp);
        fs::rename(tmp, volume_ / "..data");
        if (!fs::exists(fs::symlink_status(volume_ / "token"))) {
            fs::create_directory_symlink("..data/token", volume_ / "token");
        }
    }

    static std::string make_root() {
        char tmpl[] = "/tmp/nmid-kubelet-XXXXXX";
        return ::mkdtemp(tmpl);
    }

    std::string root_ = make_root();  // before provider_, which keeps a copy
    fs::path volume_;
    test::ManualClock clock_;  // 1,700,000,000
    ProjectedTokenProvider provider_{root_, clock_};
};

TEST_F(ProjectedTokenTest, ReadsTheKubeletsTokenOnceUntilItChanges) {
    const std::string first = jwt(1'700'000'000, 1'700'003'600);
    project(first, "2026_12_06_10_00_00.1");
    SaTokenResult r = provider_.read(pod());
    ASSERT_TRUE(r) << r.error().upstream_body;
    EXPECT_EQ(r->token, first);
    EXPECT_EQ(r->expires_on, 1'700'003'600);
    EXPECT_EQ(r->issued_at, 1'700'000'000);
    for (int i = 0; i < 10; ++i) {
        ASSERT_EQ(provider_.read(pod())->token, first);
    }
    EXPECT_EQ(provider_.stats().reads, 1U);
    EXPECT_EQ(provider_.stats().reused, 10U);

    // The kubelet rotates: a new generation directory and ..data swapped.
    const std::string second = jwt(1'700'002'900, 1'700'006'500);
    project(second, "2026_12_06_10_48_00.2");
    r = provider_.read(pod());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->token, second);
    EXPECT_EQ(provider_.stats().reads, 2U);
}

TEST_F(ProjectedTokenTest, AnExpiredTokenSaysTheKubeletIsNotRotatingIt) {
    project(jwt(1'699'990'000, 1'699'999'999), "1");
    const SaTokenResult r = provider_.read(pod());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::upstream_bad_payload);
    EXPECT_NE(r.error().upstream_body.find("is the kubelet rotating it?"), std::string::npos);
}

TEST_F(ProjectedTokenTest, ASymlinkOutOfTheVolumeIsRefused) {
    const fs::path outside = fs::path{root_} / "outside";
    fs::create_directories(outside / "token");
    std::ofstream{outside / "token" / "azure-identity-token"} << jwt(1'700'000'000, 1'700'003'600);
    fs::create_directory_symlink(outside, volume_ / "..data");
    fs::create_directory_symlink("..data/token", volume_ / "token");
    const SaTokenResult r = provider_.read(pod());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::upstream_refused);
    EXPECT_NE(r.error().upstream_body.find("outside its volume"), std::string::npos);
}

TEST_F(ProjectedTokenTest, MissingFileNotAJwtAndNoVolumeAreRefusalsThatSaySo) {
    SaTokenResult r = provider_.read(pod());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().upstream_body.find("no projected token file at " + root_),
              std::string::npos)
        << r.error().upstream_body;
    project("not a jwt", "1");
    r = provider_.read(pod());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::upstream_bad_payload);
    PodInfo none = pod();
    none.token_projections.pop_back();
    r = provider_.read(none);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().upstream_body.find("no projected ServiceAccount token volume with audience "
                                           "api://AzureADTokenExchange"),
              std::string::npos);
}

TEST_F(ProjectedTokenTest, RetainForgetsPodsThatLeft) {
    project(jwt(1'700'000'000, 1'700'003'600), "1");
    ASSERT_TRUE(provider_.read(pod()));
    provider_.retain({});
    ASSERT_TRUE(provider_.read(pod()));
    EXPECT_EQ(provider_.stats().reads, 2U);
}

TEST_F(ProjectedTokenTest, TheCoroutineAnswersAsRead) {
    project(jwt(1'700'000'000, 1'700'003'600), "1");
    boost::asio::io_context ioc;
    auto f = boost::asio::co_spawn(
        ioc, provider_.token(std::make_shared<PodInfo>(pod()), SteadyTime::max()),
        boost::asio::use_future);
    ioc.run();
    EXPECT_TRUE(f.get());
}

TEST(ProjectedTokenPath, HostileNamesNeverBecomeAPath) {
    const auto ok = projected_token_path("/var/lib/kubelet", pod());
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->file,
              "/var/lib/kubelet/pods/0f0e0d0c-0b0a-4009-8807-060504030201/volumes/"
              "kubernetes.io~projected/azure-identity-token/token/azure-identity-token");
    const struct {
        std::string volume, path;
    } bad[] = {{"../../etc", "token"},
               {"Azure", "token"},
               {"a/b", "token"},
               {"", "token"},
               {"v", "../token"},
               {"v", "/etc/shadow"},
               {"v", "a//b"},
               {"v", "a/./b"},
               {"v", "a/.."},
               {"v", ""},
               {"v", std::string{"a\0b", 3}}};
    for (const auto& c : bad) {
        EXPECT_FALSE(projected_token_path("/var/lib/kubelet", pod(c.volume, c.path)))
            << c.volume << " " << c.path;
    }
    PodInfo uid = pod();
    uid.uid = "../../x";
    EXPECT_FALSE(projected_token_path("/var/lib/kubelet", uid));
}

TEST(JwtTimes, ReadsExpAndIatWithoutTrustingAnythingElse) {
    EXPECT_EQ(jwt_times(jwt(10, 20))->expires_on, 20);
    EXPECT_EQ(jwt_times(jwt(10, 20))->issued_at, 10);
    for (const std::string& bad : std::vector<std::string>{
             "", "a.b", "a.b.c.d", "a.!!!.c", "a." + cloud::base64url_encode("[]", false) + ".c",
             "a." + cloud::base64url_encode(R"({"exp":"20"})", false) + ".c"}) {
        EXPECT_FALSE(jwt_times(bad)) << bad;
    }
}

}  // namespace
}  // namespace nmid::workload
