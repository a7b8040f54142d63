#include "nmid/iptables/route_localnet.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace nmid::iptables {
namespace {

namespace fs = std::filesystem;

// A fake /proc with net/ipv4/conf/<if>/route_localnet files; removed at the end.
class FakeProc {
public:
    explicit FakeProc(const std::map<std::string, std::string>& values) {
        static int counter = 0;
        root_ = fs::temp_directory_path() /
                ("nmid-ipt-proc-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
        for (const auto& [name, value] : values) {
            const fs::path dir = root_ / "sys/net/ipv4/conf" / name;
            fs::create_directories(dir);
            std::ofstream{dir / "route_localnet"} << value;
        }
    }
    ~FakeProc() { fs::remove_all(root_); }
    FakeProc(const FakeProc&) = delete;
    FakeProc& operator=(const FakeProc&) = delete;

    [[nodiscard]] std::string root() const { return root_.string(); }
    [[nodiscard]] std::string read(const std::string& name) const {
        std::ifstream in{root_ / "sys/net/ipv4/conf" / name / "route_localnet"};
        return {std::istreambuf_iterator<char>{in}, {}};
    }

private:
    fs::path root_;
};

TEST(RouteLocalnet, NeedsItOnlyForLoopbackTargets) {
    EXPECT_TRUE(needs_route_localnet("127.0.0.1"));
    EXPECT_TRUE(needs_route_localnet("127.1.2.3"));
    EXPECT_FALSE(needs_route_localnet("10.240.0.4"));
    EXPECT_FALSE(needs_route_localnet("128.0.0.1"));
    EXPECT_FALSE(needs_route_localnet("not-an-ip"));
}

TEST(RouteLocalnet, ReadsAllDefaultAndInterfaces) {
    const FakeProc proc{{{"all", "0\n"},
                         {"default", "0\n"},
                         {"lo", "0\n"},
                         {"eth0", "0\n"},
                         {"cali1234", "1\n"},
                         {"azv9", "0\n"}}};
    const RouteLocalnetReport report = read_route_localnet(proc.root());
    EXPECT_TRUE(report.readable);
    EXPECT_FALSE(report.all_enabled);
    EXPECT_FALSE(report.default_enabled);
    EXPECT_EQ(report.interfaces, (std::vector<InterfaceLocalnet>{
                                     {"azv9", false}, {"cali1234", true}, {"eth0", false}}));
    EXPECT_EQ(report.blocked_interfaces(), (std::vector<std::string>{"azv9", "eth0"}));
    EXPECT_TRUE(report.blocks_loopback_dnat());
    EXPECT_EQ(describe_route_localnet(report, "127.0.0.1"),
              "route_localnet is off (net.ipv4.conf.all.route_localnet=0; off on azv9, eth0 and "
              "for new interfaces): DNAT to 127.0.0.1 is dropped as martian; use "
              "--set-route-localnet or a node IP in --nmi-listen-address");
    EXPECT_EQ(describe_route_localnet(report, "10.240.0.4"), "");
}

TEST(RouteLocalnet, AllOnMeansEveryInterface) {
    const FakeProc proc{{{"all", "1\n"}, {"default", "0\n"}, {"eth0", "0\n"}}};
    const RouteLocalnetReport report = read_route_localnet(proc.root());
    EXPECT_TRUE(report.all_enabled);
    EXPECT_TRUE(report.blocked_interfaces().empty());
    EXPECT_FALSE(report.blocks_loopback_dnat());
    EXPECT_EQ(describe_route_localnet(report, "127.0.0.1"), "");
}

TEST(RouteLocalnet, DescriptionCases) {
    struct Case {
        std::map<std::string, std::string> files;
        std::string expected;
    };
    const std::string tail =
        "): DNAT to 127.0.0.1 is dropped as martian; use --set-route-localnet or a node IP in "
        "--nmi-listen-address";
    const std::vector<Case> cases = {
        {{{"all", "0"}, {"default", "1"}, {"eth0", "1"}}, ""},
        {{{"all", "0"}, {"default", "1"}, {"eth0", "0"}},
         "route_localnet is off (net.ipv4.conf.all.route_localnet=0; off on eth0" + tail},
        {{{"all", "0"}, {"default", "0"}},
         "route_localnet is off (net.ipv4.conf.all.route_localnet=0; off for new interfaces" +
             tail},
        {{{"default", "1"}},
         "route_localnet unknown (cannot read <root>/sys/net/ipv4/conf/all/route_localnet): DNAT "
         "to 127.0.0.1 works only where it is 1"},
        {{{"all", "garbage"}},
         "route_localnet unknown (cannot read <root>/sys/net/ipv4/conf/all/route_localnet): DNAT "
         "to 127.0.0.1 works only where it is 1"},
    };
    for (const Case& c : cases) {
        const FakeProc proc{c.files};
        std::string expected = c.expected;
        if (const auto at = expected.find("<root>"); at != std::string::npos) {
            expected.replace(at, 6, proc.root());
        }
        EXPECT_EQ(describe_route_localnet(read_route_localnet(proc.root()), "127.0.0.1"), expected);
    }
}

TEST(RouteLocalnet, ManyBlockedInterfacesAreSummarised) {
    std::map<std::string, std::string> files{{"all", "0"}, {"default", "1"}};
    for (int i = 0; i < 10; ++i) {
        files["veth" + std::to_string(i)] = "0";
    }
    const FakeProc proc{files};
    const std::string text = describe_route_localnet(read_route_localnet(proc.root()), "127.0.0.1");
    EXPECT_NE(text.find("veth7 and 2 more)"), std::string::npos) << text;
}

TEST(RouteLocalnet, EnableWritesAll) {
    const FakeProc proc{{{"all", "0\n"}, {"default", "0\n"}, {"eth0", "0\n"}}};
    ASSERT_TRUE(enable_route_localnet(proc.root()));
    EXPECT_EQ(proc.read("all"), "1\n");
    EXPECT_EQ(proc.read("eth0"), "0\n");  // all is ORed in by the kernel
    EXPECT_FALSE(read_route_localnet(proc.root()).blocks_loopback_dnat());
}

TEST(RouteLocalnet, EnableFailsWithoutTheFile) {
    const FakeProc proc{{}};
    EXPECT_EQ(enable_route_localnet(proc.root() + "/missing").error(),
              make_error_code(Errc::io_error));
}

}  // namespace
}  // namespace nmid::iptables
