#include "nmid/iptables/settings.hpp"

#include <gtest/gtest.h>

namespace nmid::iptables {
namespace {

using namespace std::chrono_literals;

TEST(IptablesSettings, DefaultsAreNmis) {
    const Settings s;
    EXPECT_EQ(s.backend, BackendChoice::automatic);
    EXPECT_EQ(s.metadata_ip, "169.254.169.254");
    EXPECT_EQ(s.metadata_port, 80);
    EXPECT_EQ(s.target_ip, "127.0.0.1");
    EXPECT_EQ(s.target_port, 2579);
    EXPECT_EQ(s.update_interval, 60s);
    EXPECT_FALSE(s.cleanup_on_exit);
    EXPECT_TRUE(validate(s));
    EXPECT_EQ(validation_error(s), "");
}

TEST(IptablesSettings, BackendChoiceRoundTrip) {
    for (const auto choice :
         {BackendChoice::automatic, BackendChoice::nft, BackendChoice::legacy}) {
        EXPECT_EQ(parse_backend_choice(to_string(choice)), choice);
    }
    EXPECT_EQ(parse_backend_choice("Auto"), std::nullopt);
    EXPECT_EQ(parse_backend_choice(""), std::nullopt);
    EXPECT_EQ(parse_backend_choice("iptables"), std::nullopt);
    EXPECT_EQ(to_string(Backend::legacy), "legacy");
    EXPECT_EQ(to_string(Backend::nft), "nft");
}

TEST(IptablesSettings, EffectiveTargetMapsAnyToLoopback) {
    EXPECT_EQ(effective_target_ip({.target_ip = "0.0.0.0"}), "127.0.0.1");
    EXPECT_EQ(effective_target_ip({.target_ip = "10.240.0.4"}), "10.240.0.4");
}

TEST(IptablesSettings, ValidationRejectsWhatCouldBreakTheRestoreText) {
    struct Case {
        Settings settings;
        std::string error_prefix;
    };
    const std::vector<Case> cases = {
        {{.metadata_ip = "169.254.169.254\n-A PREROUTING -j ACCEPT"}, "--metadata-ip"},
        {{.metadata_ip = "169.254.169.254/32"}, "--metadata-ip"},
        {{.metadata_ip = "fd00::1"}, "--metadata-ip"},
        {{.target_ip = "localhost"}, "--nmi-listen-address"},
        {{.target_ip = "127.0.0.1 "}, "--nmi-listen-address"},
        {{.metadata_port = 0}, "--metadata-port"},
        {{.target_port = 0}, "--nmi-port"},
        {{.update_interval = 0s}, "--ipt-update-interval-sec"},
        {{.lock_wait_seconds = -1}, "iptables lock wait"},
        {{.command_timeout = 0ms}, "iptables command timeout"},
        {{.retry_base = 5000ms, .retry_cap = 1000ms}, "iptables retry delays"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.error_prefix);
        EXPECT_EQ(validation_error(c.settings).rfind(c.error_prefix, 0), 0U)
            << validation_error(c.settings);
        EXPECT_EQ(validate(c.settings).error(), make_error_code(Errc::invalid_config));
    }
    EXPECT_TRUE(validate({.target_ip = "0.0.0.0"}));
}

}  // namespace
}  // namespace nmid::iptables
