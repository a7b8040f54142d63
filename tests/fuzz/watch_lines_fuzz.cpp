// Fuzz target: watch streams from the API server. The input is the body of a watch response:
// kube/line_splitter cuts it into lines, and each line goes to both watch event parsers, the
// pods one (pods/pod_list_json: parse_pod_watch_event) and the CRD one
// (crd/api_server_source: parse_watch_event, then crd_json's conversion of its object as each
// of the four kinds, as the CRD watcher does).
//
// Invariants:
// - the lines delivered and the splitter's final status do not depend on how the body is cut
//   into chunks (one chunk, or chunks of a few bytes); no line is empty, holds '\n' or is
//   longer than max_line;
// - nothing throws (the parsers promise never to throw);
// - a pod watch event's pod has a name and a namespace, an ERROR's message has no control
//   characters (it is logged);
// - a CRD watch event's resourceVersion is its object's metadata.resourceVersion, an ERROR's
//   code is in 0..999, and an object accepted as a kind is appended exactly once.

#include <string>
#include <vector>

#include "../../daemon/crd/crd_json.hpp"
#include "fuzz_check.hpp"
#include "nmid/crd/api_server_source.hpp"
#include "nmid/kube/line_splitter.hpp"
#include "nmid/pods/pod_list_json.hpp"

using nmid::fuzz::check;

namespace {

struct Split {
    std::vector<std::string> lines;
    nmid::kube::LineSplitter::Status status = nmid::kube::LineSplitter::Status::more;
    friend bool operator==(const Split&, const Split&) = default;
};

Split split(std::string_view body, std::size_t chunk, std::size_t max_line) {
    Split out;
    nmid::kube::LineSplitter splitter{max_line};
    const nmid::kube::LineHandler keep = [&out](std::string_view line) {
        out.lines.emplace_back(line);
        return true;
    };
    while (!body.empty()) {
        const std::string_view piece = body.substr(0, chunk);
        body.remove_prefix(piece.size());
        out.status = splitter.feed(piece, keep);
        if (out.status != nmid::kube::LineSplitter::Status::more) {
            return out;
        }
    }
    out.status = splitter.finish(keep);
    return out;
}

void pod_event(std::string_view line) {
    const auto event = nmid::parse_pod_watch_event(line);
    if (!event) {
        return;
    }
    using Type = nmid::PodWatchEvent::Type;
    if (event->type == Type::added || event->type == Type::modified ||
        event->type == Type::deleted) {
        check(!event->pod.name.empty() && !event->pod.namespace_name.empty(),
              "watched pod without name or namespace");
    }
    for (const char c : event->message) {
        check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F,
              "control character in a watch error message");
    }
}

void crd_event(std::string_view line) {
    const auto event = nmid::parse_watch_event(line);
    if (!event) {
        return;
    }
    check(event->object.is_object(), "watch event object is not an object");
    check(event->code >= 0 && event->code <= 999, "watch error code out of range");
    const auto md = event->object.find("metadata");
    if (md != event->object.end() && md->is_object()) {
        const auto rv = md->find("resourceVersion");
        if (rv != md->end() && rv->is_string()) {
            check(event->resource_version == rv->get<std::string>(), "resourceVersion differs");
        }
    }
    using nmid::crd_detail::CrdKind;
    for (const CrdKind kind :
         {CrdKind::identity, CrdKind::binding, CrdKind::exception, CrdKind::assigned}) {
        nmid::CrdSnapshot snapshot;
        std::string error;
        const bool ok = nmid::crd_detail::append_object(event->object, kind, snapshot, error);
        const std::size_t objects = snapshot.identities.size() + snapshot.bindings.size() +
                                    snapshot.exceptions.size() + snapshot.assigned.size();
        check(ok ? objects == 1 && error.empty() : objects == 0 && !error.empty(),
              "append_object's result and its effect disagree");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return nmid::fuzz::run_no_throw(data, size, [size](std::string_view body) {
        const std::size_t max_line = std::size_t{256} << (size % 6);
        const Split whole = split(body, body.size() + 1, max_line);
        const Split pieces = split(body, 1 + size % 13, max_line);
        check(whole == pieces, "lines depend on how the stream is cut");
        for (const std::string& line : whole.lines) {
            check(!line.empty() && line.size() <= max_line && line.find('\n') == std::string::npos,
                  "a line that is empty, too long or holds a newline");
            pod_event(line);
            crd_event(line);
        }
    });
}
