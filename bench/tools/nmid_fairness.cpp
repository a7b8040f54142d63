// nmid_fairness: a hostile pod and a victim pod against one nmid, on loopback. Each client
// socket is bound to its pod's address (127.0.0.x) before connecting, so nmid sees two pods.
// Prints one JSON object per scenario.
//
//   nmid_fairness queue  PORT ATTACKER VICTIM N   N concurrent distinct-resource token requests
//                                                 from ATTACKER, then VICTIM's first token;
//                                                 also VICTIM alone first (the baseline)
//   nmid_fairness conns  PORT ATTACKER VICTIM N   ATTACKER opens N connections and holds them
//                                                 idle; then VICTIM asks for a token
//   nmid_fairness memory PORT POD N LEN CONC      N token requests from POD for distinct
//                                                 resources LEN bytes long, CONC at a time
//
// Every wait is bounded (30 s per request, 60 s per scenario); the tool exits by itself.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "http_reply.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRequestTimeout = std::chrono::seconds{30};
constexpr auto kScenarioTimeout = std::chrono::seconds{60};

struct Conn {
    int fd = -1;
    std::string in;
    bool done = false;
    Clock::time_point sent;
    double ms = 0;
};

using nmid::bench::complete;
using nmid::bench::status_of;

// A socket bound to `src` and connected to 127.0.0.1:port; -1 on failure.
int connect_from(const char* src, int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, src, &local.sin_addr);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

std::string token_request(const std::string& resource) {
    return "GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + resource +
           " HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\n\r\n";
}

bool send_all(int fd, const std::string& data) {
    return ::send(fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
}

// Reads every connection that is not done until each has a whole response (or was closed),
// or `deadline` passes.
void collect(std::vector<Conn>& conns, Clock::time_point deadline) {
    std::vector<pollfd> pfds;
    std::vector<Conn*> owners;
    for (;;) {
        pfds.clear();
        owners.clear();
        for (auto& c : conns) {
            if (!c.done && c.fd >= 0) {
                pfds.push_back({c.fd, POLLIN, 0});
                owners.push_back(&c);
            }
        }
        if (pfds.empty() || Clock::now() >= deadline) {
            return;
        }
        if (::poll(pfds.data(), pfds.size(), 50) < 0) {
            return;
        }
        for (std::size_t i = 0; i < pfds.size(); ++i) {
            if ((pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
                continue;
            }
            char buf[16384];
            const ssize_t got = ::recv(pfds[i].fd, buf, sizeof buf, 0);
            Conn& c = *owners[i];
            if (got > 0) {
                c.in.append(buf, static_cast<std::size_t>(got));
            }
            if (got <= 0 || complete(c.in)) {
                c.done = true;
                c.ms = std::chrono::duration<double, std::milli>(Clock::now() - c.sent).count();
            }
        }
    }
}

// One request on a new connection from `src`: status (0: no answer, -1: no connection) and ms.
Conn timed_request(const char* src, int port, const std::string& request) {
    Conn c;
    c.sent = Clock::now();
    c.fd = connect_from(src, port);
    if (c.fd < 0) {
        c.done = true;  // status 0
        c.ms = -1;
        return c;
    }
    std::vector<Conn> one;
    if (send_all(c.fd, request)) {
        one.push_back(std::move(c));
        collect(one, Clock::now() + kRequestTimeout);
        c = std::move(one.front());
    }
    ::close(c.fd);
    c.fd = -1;
    return c;
}

std::string statuses_json(const std::vector<Conn>& conns) {
    std::map<int, int> counts;
    for (const auto& c : conns) {
        ++counts[c.done ? status_of(c.in) : -1];  // 0: closed unanswered; -1: no answer in time
    }
    std::string out = "{";
    for (auto [status, count] : counts) {
        out += (out.size() > 1 ? "," : "") + ("\"" + std::to_string(status) + "\":") +
               std::to_string(count);
    }
    return out + "}";
}

void close_all(std::vector<Conn>& conns) {
    for (auto& c : conns) {
        if (c.fd >= 0) {
            ::close(c.fd);
        }
    }
}

int queue(int port, const char* attacker, const char* victim, int n) {
    const Conn baseline = timed_request(victim, port, token_request("https://victim-baseline"));
    std::vector<Conn> flood(static_cast<std::size_t>(n));
    const auto start = Clock::now();
    int i = 0;
    for (auto& c : flood) {
        c.fd = connect_from(attacker, port);
        c.sent = Clock::now();
        if (c.fd < 0 || !send_all(c.fd, token_request("https://attacker/" + std::to_string(i++)))) {
            c.done = true;
        }
    }
    // The victim asks once every attacker request has been sent.
    const Conn hit = timed_request(victim, port, token_request("https://victim-first"));
    collect(flood, start + kScenarioTimeout);
    const double flood_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    close_all(flood);
    std::printf(
        "{\"scenario\":\"queue\",\"attacker_requests\":%d,\"baseline_status\":%d,"
        "\"baseline_ms\":%.1f,\"victim_status\":%d,\"victim_ms\":%.1f,\"attacker_statuses\":%s,"
        "\"attacker_wall_ms\":%.1f}\n",
        n, status_of(baseline.in), baseline.ms, status_of(hit.in), hit.ms,
        statuses_json(flood).c_str(), flood_ms);
    return 0;
}

int conns(int port, const char* attacker, const char* victim, int n) {
    std::vector<Conn> held(static_cast<std::size_t>(n));
    int opened = 0;
    for (auto& c : held) {
        c.fd = connect_from(attacker, port);
        opened += c.fd >= 0 ? 1 : 0;
    }
    const Conn hit = timed_request(victim, port, token_request("https://victim-conns"));
    // How many of the attacker's connections nmid kept open (the rest it answered or closed).
    int still_open = 0;
    std::vector<pollfd> pfds;
    for (auto& c : held) {
        if (c.fd >= 0) {
            pfds.push_back({c.fd, POLLIN, 0});
        }
    }
    ::poll(pfds.data(), pfds.size(), 0);
    for (const auto& p : pfds) {
        still_open += (p.revents & (POLLIN | POLLHUP | POLLERR)) == 0 ? 1 : 0;
    }
    close_all(held);
    std::printf(
        "{\"scenario\":\"conns\",\"attacker_connections\":%d,\"attacker_connected\":%d,"
        "\"attacker_still_open\":%d,\"victim_status\":%d,\"victim_ms\":%.1f}\n",
        n, opened, still_open, status_of(hit.in), hit.ms);
    return 0;
}

int memory(int port, const char* pod, int n, int len, int conc) {
    std::vector<Conn> all;
    const auto start = Clock::now();
    for (int first = 0; first < n; first += conc) {
        std::vector<Conn> batch(static_cast<std::size_t>(std::min(conc, n - first)));
        int k = first;
        for (auto& c : batch) {
            std::string resource = "https://r/" + std::to_string(k++) + "/";
            resource.resize(static_cast<std::size_t>(len), 'x');
            c.fd = connect_from(pod, port);
            c.sent = Clock::now();
            if (c.fd < 0 || !send_all(c.fd, token_request(resource))) {
                c.done = true;
            }
        }
        collect(batch, Clock::now() + kRequestTimeout);
        close_all(batch);
        for (auto& c : batch) {
            c.fd = -1;
            all.push_back(std::move(c));
        }
        if (Clock::now() - start > kScenarioTimeout) {
            break;
        }
    }
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    std::printf(
        "{\"scenario\":\"memory\",\"requests\":%zu,\"resource_bytes\":%d,\"wall_ms\":%.1f,"
        "\"statuses\":%s}\n",
        all.size(), len, ms, statuses_json(all).c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    const std::string what = argc > 1 ? argv[1] : "";
    if ((what == "queue" || what == "conns") && argc == 6) {
        const int port = std::atoi(argv[2]);
        const int n = std::atoi(argv[5]);
        return what == "queue" ? queue(port, argv[3], argv[4], n)
                               : conns(port, argv[3], argv[4], n);
    }
    if (what == "memory" && argc == 7) {
        return memory(std::atoi(argv[2]), argv[3], std::atoi(argv[4]), std::atoi(argv[5]),
                      std::atoi(argv[6]));
    }
    std::fprintf(stderr,
                 "usage: nmid_fairness queue|conns PORT ATTACKER VICTIM N\n"
                 "       nmid_fairness memory PORT POD N LEN CONC\n");
    return 2;
}
