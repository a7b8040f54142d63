// ServiceAccounts by list+watch against the fake API server (the real wire format): the first
// list, annotation changes through the watch, deletion, and a relist after 410.
#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <vector>

#include "nmid/kube/transport.hpp"
#include "nmid/workload/service_accounts.hpp"
#include "support/fake_api_server.hpp"
#include "support/fake_token_issuer.hpp"
#include "support/manual_clock.hpp"

namespace nmid::workload {
namespace {

namespace asio = boost::asio;
using nlohmann::json;

constexpr std::string_view kClient = "6f0a6a3e-7e3b-4b38-9a4c-0123456789ab";

json account(std::string ns, std::string name, json annotations = json::object()) {
    return {{"apiVersion", "v1"},
            {"kind", "ServiceAccount"},
            {"metadata", {{"name", name}, {"namespace", ns}, {"annotations", annotations}}}};
}

class ServiceAccountSourceTest : public ::testing::Test {
protected:
    ServiceAccountSourceTest() {
        kube::KubeConfig config;
        config.server = "http://127.0.0.1:" + std::to_string(server_.port());
        std::string error;
        auto client = kube::make_api_server_client(ioc_.get_executor(), config, nullptr,
                                                   kube::ApiServerClientSettings{}, error);
        EXPECT_TRUE(client) << error;
        client_ = std::move(*client);
        source_ = std::make_unique<ServiceAccountSource>(
            ioc_.get_executor(), *client_, clock_,
            kube::ReflectorSettings{.name = "sa", .seed = 7});
    }
    ~ServiceAccountSourceTest() override {
        stop_.emit(asio::cancellation_type::terminal);
        test::run_until(
            ioc_, [] { return false; }, std::chrono::milliseconds{50});
    }

    void start() {
        asio::co_spawn(ioc_, source_->run(),
                       asio::bind_cancellation_slot(stop_.slot(), asio::detached));
        ASSERT_TRUE(test::run_until(ioc_, [&] { return source_->synced(); })) << "no first LIST";
    }

    bool until(const std::function<bool(const ServiceAccountSnapshot&)>& pred) {
        return test::run_until(ioc_, [&] { return pred(*source_->snapshot()); });
    }

    asio::io_context ioc_;
    test::ManualClock clock_;
    test::FakeApiServer server_{ioc_, test::with_service_accounts()};
    std::unique_ptr<kube::ApiServerClient> client_;
    std::unique_ptr<ServiceAccountSource> source_;
    asio::cancellation_signal stop_;
};

TEST_F(ServiceAccountSourceTest, FirstListThenAnnotationChangesAndDeletionThroughTheWatch) {
    server_.create("serviceaccounts", account("shop", "web",
                                              {{"azure.workload.identity/client-id", kClient},
                                               {"azure.workload.identity/tenant-id", "tenant-a"}}));
    server_.create("serviceaccounts", account("shop", "default"));
    start();
    auto snap = source_->snapshot();
    ASSERT_EQ(snap->accounts.size(), 2U);
    const ServiceAccountPtr web = snap->find("shop", "web");
    ASSERT_NE(web, nullptr);
    EXPECT_TRUE(web->has_client_id);
    EXPECT_EQ(web->client_id, kClient);
    EXPECT_EQ(web->tenant_id, "tenant-a");
    EXPECT_FALSE(web->uid.empty());
    EXPECT_FALSE(snap->find("shop", "default")->has_client_id);
    EXPECT_EQ(snap->find("bank", "web"), nullptr);

    // Annotated later: applies through the watch, without a relist.
    server_.update("serviceaccounts",
                   account("shop", "default", {{"azure.workload.identity/client-id", "c2"}}));
    ASSERT_TRUE(until([](const auto& s) {
        const auto a = s.find("shop", "default");
        return a && a->client_id == "c2";
    }));
    EXPECT_EQ(source_->snapshot()->find("shop", "web"), web)
        << "an unchanged entry keeps its pointer";
    // Annotation removed.
    server_.update("serviceaccounts", account("shop", "web"));
    ASSERT_TRUE(until([](const auto& s) { return !s.find("shop", "web")->has_client_id; }));
    server_.remove("serviceaccounts", "shop", "web");
    ASSERT_TRUE(until([](const auto& s) { return s.find("shop", "web") == nullptr; }));
    EXPECT_EQ(source_->stats().reflector.lists, 1U);
    EXPECT_GE(source_->stats().reflector.events, 3U);
}

TEST_F(ServiceAccountSourceTest, AnExpiredWatchRelistsAndKeepsEveryChange) {
    server_.create("serviceaccounts", account("shop", "web"));
    start();
    ASSERT_TRUE(test::run_until(ioc_, [&] { return server_.open_watches() == 1; }));
    server_.compact();
    server_.expire_watches();
    server_.create("serviceaccounts",
                   account("shop", "api", {{"azure.workload.identity/client-id", "c3"}}));
    ASSERT_TRUE(until([](const auto& s) { return s.find("shop", "api") != nullptr; }));
    EXPECT_GE(source_->stats().reflector.expired, 1U);
    EXPECT_GE(source_->stats().reflector.lists, 2U);
}

TEST_F(ServiceAccountSourceTest, HostileAnnotationsAreKeptAsInvalidNeverUsed) {
    server_.create("serviceaccounts",
                   account("shop", "web",
                           {{"azure.workload.identity/client-id", kClient},
                            {"azure.workload.identity/tenant-id", "../../evil?x=1"}}));
    server_.create("serviceaccounts",
                   account("shop", "api", {{"azure.workload.identity/client-id", "a b&scope=x"}}));
    start();
    const auto snap = source_->snapshot();
    EXPECT_NE(snap->find("shop", "web")->invalid_reason.find("tenant-id"), std::string::npos);
    EXPECT_EQ(snap->find("shop", "web")->tenant_id, "");
    EXPECT_NE(snap->find("shop", "api")->invalid_reason.find("client-id"), std::string::npos);
    EXPECT_EQ(snap->find("shop", "api")->client_id, "");
    EXPECT_EQ(source_->stats().invalid, 2U);
}

TEST(ServiceAccountAnnotations, WhatIsAClientIdAndATenant) {
    EXPECT_TRUE(valid_client_id(kClient));
    EXPECT_TRUE(valid_client_id("my_app.client-1"));
    for (const std::string& bad :
         std::vector<std::string>{"", "a b", "a&b", "a/b", "a%20", std::string(129, 'a'), "é"}) {
        EXPECT_FALSE(valid_client_id(bad)) << bad;
    }
    EXPECT_TRUE(valid_tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47"));
    EXPECT_TRUE(valid_tenant_id("contoso.onmicrosoft.com"));
    for (const std::string& bad :
         std::vector<std::string>{"", ".", "..", "a..b", ".contoso", "-x", "a/b", "a?b", "a#b",
                                  "a%2F", "a_b", std::string(254, 'a')}) {
        EXPECT_FALSE(valid_tenant_id(bad)) << bad;
    }
}

TEST(ServiceAccountParse, ObjectsWithoutANameAreUnusableAndOthersParse) {
    ServiceAccountInfo out;
    std::string detail;
    EXPECT_FALSE(
        parse_service_account(json::parse(R"({"metadata":{"namespace":"a"}})"), out, detail));
    EXPECT_FALSE(parse_service_account(json::parse(R"([])"), out, detail));
    EXPECT_FALSE(parse_service_account(json::parse(R"({"metadata":"x"})"), out, detail));
    ServiceAccountInfo ok;
    EXPECT_TRUE(parse_service_account(
        json::parse(
            R"({"metadata":{"name":"a","namespace":"b","annotations":{"azure.workload.identity/client-id":7}}})"),
        ok, detail));
    EXPECT_TRUE(ok.has_client_id);
    EXPECT_FALSE(ok.invalid_reason.empty()) << "a non-string annotation is refused, not ignored";
}

}  // namespace
}  // namespace nmid::workload
