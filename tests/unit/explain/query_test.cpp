#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "nmid/explain/report.hpp"

namespace nmid::explain {
namespace {

TEST(ExplainQueryTest, AcceptsAnIpOrANamespaceAndPod) {
    struct Row {
        std::string query;
        std::string ip, ns, pod;
        bool json;
    };
    const std::vector<Row> rows{
        {"ip=10.0.0.5", "10.0.0.5", "", "", false},
        {"ip=fd00%3A%3A5&format=json", "fd00::5", "", "", true},
        {"namespace=default&pod=web-7d9.x", "", "default", "web-7d9.x", false},
        {"format=text&pod=p&namespace=kube-system", "", "kube-system", "p", false},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(r.query);
        const auto parsed = parse_query(r.query);
        ASSERT_TRUE(std::holds_alternative<Query>(parsed)) << std::get<std::string>(parsed);
        const auto& q = std::get<Query>(parsed);
        EXPECT_EQ(q.ip, r.ip);
        EXPECT_EQ(q.namespace_name, r.ns);
        EXPECT_EQ(q.pod, r.pod);
        EXPECT_EQ(q.json, r.json);
    }
}

TEST(ExplainQueryTest, RefusesHostileAndAmbiguousQueriesWithTheReason) {
    struct Row {
        std::string query;
        std::string error;
    };
    const std::vector<Row> rows{
        {"", "give exactly one of ip=<pod IP> or namespace=<ns>&pod=<name>"},
        {"ip=10.0.0.5&namespace=default&pod=p",
         "give exactly one of ip=<pod IP> or namespace=<ns>&pod=<name>"},
        {"ip=10.0.0.5&ip=10.0.0.6", "parameter ip given twice"},
        {"ip=10.0.0.5&token=x",
         "unknown parameter (give ip=<pod IP>, or "
         "namespace=<ns>&pod=<name>, and optionally format=text|json)"},
        {"ip=10.0.0.5&",
         "unknown parameter (give ip=<pod IP>, or namespace=<ns>&pod=<name>, "
         "and optionally format=text|json)"},
        {"ip=10.0.0.5%00", "ip is not an IPv4 or IPv6 address"},
        {"ip=pod.example", "ip is not an IPv4 or IPv6 address"},
        {"namespace=Default&pod=p", "namespace must be a Kubernetes namespace name (a DNS label)"},
        {"namespace=../etc&pod=p", "namespace must be a Kubernetes namespace name (a DNS label)"},
        {"namespace=default", "pod must be a Kubernetes pod name (a DNS subdomain)"},
        {"namespace=default&pod=a..b", "pod must be a Kubernetes pod name (a DNS subdomain)"},
        {"namespace=default&pod=" + std::string(254, 'a'),
         "pod must be a Kubernetes pod name (a DNS subdomain)"},
        {"ip=10.0.0.5&format=xml", "format must be text or json"},
        {"ip=10.0.0.5&format=" + std::string(1100, 'j'), "query longer than 1024 bytes"},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(r.query.substr(0, 80));
        const auto parsed = parse_query(r.query);
        ASSERT_TRUE(std::holds_alternative<std::string>(parsed));
        EXPECT_EQ(std::get<std::string>(parsed), r.error);
    }
}

}  // namespace
}  // namespace nmid::explain
