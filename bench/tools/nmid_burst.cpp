// nmid_burst: opens N connections to HOST:PORT at once, sends one GET on each only after all
// are connected, and waits for every response. Prints status counts and wall time as JSON.
// Usage: nmid_burst PORT TARGET [N=1000] [TIMEOUT_MS=30000]  (host 127.0.0.1, header Metadata:
// true)
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

struct Conn {
    int fd = -1;
    std::string in;
    bool done = false;
};

using nmid::bench::complete;
using nmid::bench::status_of;

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: nmid_burst PORT TARGET [N] [TIMEOUT_MS]\n");
        return 2;
    }
    const int port = std::atoi(argv[1]);
    const std::string target = argv[2];
    const int n = argc > 3 ? std::atoi(argv[3]) : 1000;
    const int timeout_ms = argc > 4 ? std::atoi(argv[4]) : 30000;
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);

    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    std::vector<Conn> conns(static_cast<std::size_t>(n));
    for (auto& c : conns) {
        c.fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
            std::fprintf(stderr, "connect failed: %s\n", std::strerror(errno));
            return 1;
        }
    }
    const std::string request = "GET " + target +
                                " HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\n"
                                "Connection: close\r\n\r\n";
    const auto start = std::chrono::steady_clock::now();
    for (auto& c : conns) {
        if (::send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size())) {
            std::fprintf(stderr, "send failed\n");
            return 1;
        }
    }
    int remaining = n;
    const auto deadline = start + std::chrono::milliseconds{timeout_ms};
    std::vector<pollfd> pfds;
    while (remaining > 0 && std::chrono::steady_clock::now() < deadline) {
        pfds.clear();
        std::vector<Conn*> owners;
        for (auto& c : conns) {
            if (!c.done) {
                pfds.push_back({c.fd, POLLIN, 0});
                owners.push_back(&c);
            }
        }
        if (::poll(pfds.data(), pfds.size(), 100) < 0) {
            break;
        }
        for (std::size_t i = 0; i < pfds.size(); ++i) {
            if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            char buf[8192];
            const ssize_t got = ::recv(pfds[i].fd, buf, sizeof buf, 0);
            Conn& c = *owners[i];
            if (got > 0) {
                c.in.append(buf, static_cast<std::size_t>(got));
            }
            if (got <= 0 || complete(c.in)) {
                c.done = true;
                --remaining;
            }
        }
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::map<int, int> statuses;
    for (auto& c : conns) {
        ++statuses[c.done ? status_of(c.in) : -1];
        ::close(c.fd);
    }
    std::printf("{\"requests\":%d,\"wall_ms\":%.1f,\"statuses\":{", n, ms);
    bool first = true;
    for (auto [s, count] : statuses) {
        std::printf("%s\"%d\":%d", first ? "" : ",", s, count);
        first = false;
    }
    std::printf("}}\n");
    return remaining == 0 ? 0 : 1;
}
