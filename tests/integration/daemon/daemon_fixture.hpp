#pragma once

// The Daemon fixture: the real nmid and imds-emulator binaries, as separate processes on loopback.
// Clients bind 127.0.0.2 (pod default/demo, bound), 127.0.0.3 (default/unbound), 127.0.0.4
// (kube-system, excepted) so nmid sees them as different pods.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/http_get.hpp"
#include "support/process.hpp"

namespace nmid::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Headers = std::vector<std::pair<std::string, std::string>>;

inline constexpr auto kStartTimeout = 20s;
inline const std::string kClientId = "00000000-0000-0000-0000-0000000000a1";
inline const std::string kResourceId =
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/kv-reader";
inline const std::string kTokenPath = "/metadata/identity/oauth2/token";
inline const std::string kVault = "api-version=2018-02-01&resource=https://vault.azure.net";

inline std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class DaemonTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (!fs::exists(bin("nmid")) || !fs::exists(bin("imds-emulator"))) {
            GTEST_SKIP() << "nmid or imds-emulator not built in " << NMID_BIN_DIR;
        }
        char tmpl[] = "/tmp/nmid-daemon-test-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        fs::copy_file(fs::path{NMID_SOURCE_DIR} / "deploy/standalone/pods.json",
                      dir_ / "pods.json");
        fs::copy_file(fs::path{NMID_SOURCE_DIR} / "deploy/standalone/crds.yaml",
                      dir_ / "crds.yaml");
    }

    void TearDown() override {
        nmid_.reset();
        emulator_.reset();
        if (!dir_.empty()) {
            fs::remove_all(dir_);
        }
    }

    static std::string bin(const std::string& name) {
        return std::string{NMID_BIN_DIR} + "/" + name;
    }

    void start_emulator(std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"--listen", "127.0.0.1:0", "--identity",
                                      kClientId + ":" + kResourceId};
        args.insert(args.end(), extra.begin(), extra.end());
        emulator_ = std::make_unique<test::ChildProcess>(bin("imds-emulator"), args);
        auto line = emulator_->wait_for_line("listening on", kStartTimeout);
        ASSERT_TRUE(line) << emulator_->output();
        emulator_port_ = test::port_after(*line, "listening on").value_or(-1);
        ASSERT_GT(emulator_port_, 0);
    }

    void start_nmid(std::vector<std::string> extra = {}, bool wait_ready = true) {
        std::vector<std::string> args = test::local_nmid_args(emulator_port_);
        args.insert(args.end(), {
                                    "--pod-poll-interval=20ms",
                                    "--crd-poll-interval=20ms",
                                    "--pods-file=" + (dir_ / "pods.json").string(),
                                    "--crds-file=" + (dir_ / "crds.yaml").string(),
                                });
        args.insert(args.end(), extra.begin(), extra.end());
        nmid_ = std::make_unique<test::ChildProcess>(bin("nmid"), args);
        auto line = nmid_->wait_for_line("listening on", kStartTimeout);
        ASSERT_TRUE(line) << nmid_->output();
        const test::NmidPorts ports = test::nmid_ports(*line);
        port_ = ports.token;
        probe_port_ = ports.probe;
        metrics_port_ = ports.metrics;
        debug_port_ = ports.debug;
        ASSERT_GT(port_, 0);
        ASSERT_GT(probe_port_, 0);
        if (wait_ready) {
            wait_until_ready();
        }
    }

    // Ready once both sources have loaded (the daemon logs each), then /readyz must agree.
    void wait_until_ready() {
        ASSERT_TRUE(nmid_->wait_for_text("pod index: ready", kStartTimeout)) << nmid_->output();
        ASSERT_TRUE(nmid_->wait_for_text(": loaded ", kStartTimeout)) << nmid_->output();
        auto r = test::http_get("127.0.0.1", probe_port_, "/readyz");
        ASSERT_TRUE(r);
        ASSERT_EQ(r->status, 200) << r->body;
    }

    std::optional<test::SimpleResponse> token(const std::string& ip, const std::string& query,
                                              const Headers& headers = {{"Metadata", "true"}}) {
        return test::http_get(ip, port_, kTokenPath + "?" + query, headers);
    }

    nlohmann::json emulator_stats() {
        auto r = test::http_get("127.0.0.1", emulator_port_, "/_emulator/stats");
        EXPECT_TRUE(r && r->status == 200);
        return r ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json{};
    }

    void set_faults(const std::string& json) {
        auto r = test::http_request("127.0.0.1", emulator_port_, "POST", "/_emulator/faults",
                                    {{"Content-Type", "application/json"}}, json);
        ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    }

    static nlohmann::json body_json(const test::SimpleResponse& r) {
        return nlohmann::json::parse(r.body, nullptr, false);
    }

    fs::path dir_;
    std::unique_ptr<test::ChildProcess> emulator_;
    std::unique_ptr<test::ChildProcess> nmid_;
    int emulator_port_ = -1;
    int port_ = -1;
    int probe_port_ = -1;
    int metrics_port_ = -1;
    int debug_port_ = -1;
};

}  // namespace nmid::test
