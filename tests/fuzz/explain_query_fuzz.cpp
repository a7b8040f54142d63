// /debug/explain's query (explain::parse_query) and the report rendered for what it accepts:
// no input crashes, an accepted query names exactly one pod, validly, and the rendered forms
// stay one line per fact (no control character from the query reaches the output).

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <variant>

#include "fuzz_check.hpp"
#include "nmid/explain/report.hpp"
#include "nmid/workload/constants.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace nmid;
    const auto text = fuzz::as_text(data, size);
    const auto parsed = explain::parse_query(text);
    if (std::holds_alternative<std::string>(parsed)) {
        fuzz::check(!std::get<std::string>(parsed).empty(), "a refusal carries a reason");
        return 0;
    }
    const auto& q = std::get<explain::Query>(parsed);
    fuzz::check(q.ip.empty() != q.pod.empty(), "exactly one of ip or pod");
    if (!q.ip.empty()) {
        fuzz::check(q.ip.find('\0') == std::string::npos, "no NUL in an accepted address");
        boost::system::error_code ec;
        boost::asio::ip::make_address(q.ip, ec);
        fuzz::check(!ec, "an accepted ip parses");
    } else {
        fuzz::check(workload::dns_label(q.namespace_name), "an accepted namespace is a label");
    }
    explain::Report report;
    report.query = q;
    report.pod_error = "pod_not_found";
    const std::string out = explain::render_text(report);
    fuzz::check(std::count(out.begin(), out.end(), '\n') == 1, "the not-found report is one line");
    fuzz::check(
        std::none_of(out.begin(), out.end(),
                     [](char c) { return c != '\n' && static_cast<unsigned char>(c) < 0x20; }),
        "no control character in the text");
    try {
        (void)nlohmann::json::parse(explain::render_json(report));
    } catch (const std::exception&) {
        fuzz::escaped("render_json produced invalid JSON");
    }
    return 0;
}
