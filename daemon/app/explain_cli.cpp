#include "nmid/app/explain_cli.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <optional>

#include "nmid/config/config.hpp"
#include "nmid/net/http_client.hpp"

namespace nmid::app {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto kDeadline = 5s;

// Query-value encoding: unreserved characters as they are, everything else %XX.
std::string encode(std::string_view value) {
    static constexpr std::string_view kHex = "0123456789ABCDEF";
    std::string out;
    for (const char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out += c;
        } else {
            out += '%';
            out += kHex[u >> 4U];
            out += kHex[u & 0xFU];
        }
    }
    return out;
}

// "--name=value" or "--name value": the value, advancing `i` past it; nullopt when missing.
std::optional<std::string_view> value_of(std::span<const std::string_view> args, std::size_t& i,
                                         std::string_view name) {
    const std::string_view arg = args[i];
    if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=') {
        return arg.substr(name.size() + 1);
    }
    if (arg == name && i + 1 < args.size()) {
        return args[++i];
    }
    return std::nullopt;
}

}  // namespace

std::string explain_usage() {
    return "usage: nmid explain (--ip POD_IP | --pod NAMESPACE/NAME) [--json] "
           "[--debug-address IP:PORT]\n"
           "Asks the running nmid (its --debug-address, default 127.0.0.1:8086) why the pod\n"
           "gets the answer it gets: the pod found, the bindings and exceptions considered,\n"
           "the identity chosen or the denial, and the cached tokens' times.\n";
}

std::variant<ExplainArgs, std::string> parse_explain_args(std::span<const std::string_view> args) {
    ExplainArgs out;
    std::string ip;
    std::string pod;
    bool json = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        const bool takes_value = arg.starts_with("--ip") || arg.starts_with("--pod") ||
                                 arg.starts_with("--debug-address");
        if (arg == "-h" || arg == "--help") {
            out.help = true;
            return out;
        }
        if (arg == "--json") {
            json = true;
            continue;
        }
        if (!takes_value) {
            return "unknown argument \"" + std::string{arg} + "\"";
        }
        if (auto v = value_of(args, i, "--ip")) {
            ip = *v;
        } else if (auto p = value_of(args, i, "--pod")) {
            pod = *p;
        } else if (auto a = value_of(args, i, "--debug-address")) {
            if (!config::split_endpoint(*a, out.host, out.port)) {
                return "--debug-address: not IP:PORT or [IPv6]:PORT";
            }
        } else {
            return "unknown argument or missing value: \"" + std::string{arg} + "\"";
        }
    }
    if (ip.empty() == pod.empty()) {
        return "give exactly one of --ip POD_IP or --pod NAMESPACE/NAME";
    }
    if (!ip.empty()) {
        out.query = "ip=" + encode(ip);
    } else {
        const auto slash = pod.find('/');
        if (slash == std::string::npos || slash == 0 || slash + 1 == pod.size()) {
            return "--pod must be NAMESPACE/NAME";
        }
        out.query =
            "namespace=" + encode(pod.substr(0, slash)) + "&pod=" + encode(pod.substr(slash + 1));
    }
    if (json) {
        out.query += "&format=json";
    }
    return out;
}

int explain_main(std::span<const std::string_view> args) {
    auto parsed = parse_explain_args(args);
    if (auto* error = std::get_if<std::string>(&parsed)) {
        std::fprintf(stderr, "nmid explain: %s\n%s", error->c_str(), explain_usage().c_str());
        return 2;
    }
    const auto& a = std::get<ExplainArgs>(parsed);
    if (a.help) {
        std::fputs(explain_usage().c_str(), stdout);
        return 0;
    }
    asio::io_context ioc;
    net::HttpClient client(ioc.get_executor(),
                           net::HttpClientSettings{.host = a.host,
                                                   .port = a.port,
                                                   .connect_timeout = Millis{2000},
                                                   .pool_size = 0,
                                                   .max_response_body = std::size_t{4} << 20U,
                                                   .host_header = {},
                                                   .tls = {}});
    net::ClientRequest request;
    request.target = "/debug/explain?" + a.query;
    std::optional<Result<net::ClientResponse>> answer;
    asio::co_spawn(ioc, client.request(request, std::chrono::steady_clock::now() + kDeadline),
                   [&answer](const std::exception_ptr& e, Result<net::ClientResponse> r) {
                       answer = e ? Result<net::ClientResponse>{make_error_code(Errc::io_error)}
                                  : std::move(r);
                   });
    ioc.run();
    if (!answer || !*answer) {
        const std::string why = answer ? (*answer).error().message() : "no answer";
        std::fprintf(stderr,
                     "nmid explain: cannot ask nmid at %s:%u (%s); is it running, with "
                     "--debug-address set to this address?\n",
                     a.host.c_str(), static_cast<unsigned>(a.port), why.c_str());
        return 1;
    }
    const auto& response = **answer;
    std::fwrite(response.body.data(), 1, response.body.size(),
                response.status == 200 ? stdout : stderr);
    return response.status == 200 ? 0 : 1;
}

}  // namespace nmid::app
