#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kube_fakes.hpp"
#include "nmid/pods/pod_list_json.hpp"

namespace nmid {
namespace {

using pods_test::bookmark_json;
using pods_test::event_json;
using pods_test::pod_json;
using pods_test::pod_list_json;
using pods_test::status_json;
using Type = PodWatchEvent::Type;

struct EventCase {
    std::string line;
    bool ok;
    Type type;
    std::string rv;
    std::string pod;  // "ns/name@ip" for pod events
    int code;
};

TEST(PodWatchEvent, ParsesEachEventType) {
    const std::string web = pod_json("default", "web", "10.0.0.1", "Running", "4720", true);
    const std::vector<EventCase> table = {
        {event_json("ADDED", web), true, Type::added, "4720", "default/web@10.0.0.1", 0},
        {event_json("MODIFIED", web), true, Type::modified, "4720", "default/web@10.0.0.1", 0},
        {event_json("DELETED", web), true, Type::deleted, "4720", "default/web@10.0.0.1", 0},
        {bookmark_json("abc"), true, Type::bookmark, "abc", "", 0},
        // A bookmark with a bare skeleton object (no name) is still a bookmark.
        {R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}})", true,
         Type::bookmark, "9", "", 0},
        {event_json("ERROR", status_json(410, "Expired", "too old resource version: 1 (2)")), true,
         Type::error, "", "", 410},
        {event_json("ERROR", status_json(500, "InternalError", "boom")), true, Type::error, "", "",
         500},
        // Items without `kind` are accepted as in a PodList.
        {event_json("ADDED", pod_json("default", "web", "10.0.0.1")), true, Type::added, "",
         "default/web@10.0.0.1", 0},
        {R"({"type":"ADDED"})", false, Type::added, "", "", 0},
        {R"({"type":"SOMETHING","object":{}})", false, Type::added, "", "", 0},
        {R"({"type":5,"object":{}})", false, Type::added, "", "", 0},
        {R"({"type":"ADDED","object":[]})", false, Type::added, "", "", 0},
        {R"({"type":"ADDED","object":{"kind":"Service","metadata":{"name":"x"}}})", false,
         Type::added, "", "", 0},
        {R"({"type":"ADDED","object":{"metadata":{"namespace":"x"}}})", false, Type::added, "", "",
         0},
        {R"({"type":"ADDED","object":{"metadata":{"name":"x","resourceVersion":7}}})", false,
         Type::added, "", "", 0},
        {R"({"type":"ERROR","object":{"code":"410"}})", false, Type::error, "", "", 0},
        {R"({"type":"ADDED","object":)", false, Type::added, "", "", 0},
        {"[]", false, Type::added, "", "", 0},
    };
    for (const auto& c : table) {
        std::string detail;
        const auto r = parse_pod_watch_event(c.line, &detail);
        ASSERT_EQ(r.has_value(), c.ok) << c.line << " " << detail;
        if (!c.ok) {
            EXPECT_EQ(r.error(), Errc::parse_error);
            EXPECT_FALSE(detail.empty()) << c.line;
            continue;
        }
        EXPECT_EQ(r->type, c.type) << c.line;
        EXPECT_EQ(r->resource_version, c.rv) << c.line;
        EXPECT_EQ(r->status_code, c.code) << c.line;
        const std::string got = r->pod.name.empty()
                                    ? ""
                                    : r->pod.namespace_name + "/" + r->pod.name + "@" +
                                          (r->pod.ips.empty() ? "" : r->pod.ips[0]);
        EXPECT_EQ(got, c.pod) << c.line;
    }
}

TEST(PodWatchEvent, ErrorMessageIsOneLine) {
    const auto r = parse_pod_watch_event(
        R"({"type":"ERROR","object":{"kind":"Status","message":"a\nb\u0007c","code":410}})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->message, "a b c");
}

TEST(PodListPage, KeepsTheListResourceVersion) {
    const auto page =
        parse_pod_list_page(pod_list_json({pod_json("default", "web", "10.0.0.1")}, "4711"));
    ASSERT_TRUE(page);
    EXPECT_EQ(page->resource_version, "4711");
    ASSERT_EQ(page->list.pods.size(), 1U);
    EXPECT_EQ(page->list.pods[0].name, "web");

    const auto kubelet = parse_pod_list_page(pod_list_json({}));
    ASSERT_TRUE(kubelet);
    EXPECT_EQ(kubelet->resource_version, "");
    EXPECT_TRUE(kubelet->list.pods.empty());

    EXPECT_EQ(parse_pod_list_page(R"({"metadata":{"resourceVersion":5},"items":[]})").error(),
              Errc::parse_error);
    EXPECT_EQ(parse_pod_list_page(R"({"metadata":[],"items":[]})").error(), Errc::parse_error);
    // The list's metadata does not disturb the plain parser.
    EXPECT_TRUE(parse_pod_list(R"({"metadata":{"resourceVersion":5},"items":[]})"));
}

}  // namespace
}  // namespace nmid
