#include "support/http_get.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>

namespace nmid::test {
namespace {

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

bool wait_fd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
        return false;
    }
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, static_cast<int>(left.count())) > 0;
}

}  // namespace

std::optional<SimpleResponse> http_request(
    const std::string& source_ip, int port, const std::string& method, const std::string& target,
    const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
    std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Fd s{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (s.fd < 0) {
        return std::nullopt;
    }
    sockaddr_in src{};
    src.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source_ip.c_str(), &src.sin_addr) != 1 ||
        ::bind(s.fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
        return std::nullopt;
    }
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (::connect(s.fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
        return std::nullopt;
    }
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 169.254.169.254\r\n";
    for (const auto& [k, v] : headers) {
        req.append(k).append(": ").append(v).append("\r\n");
    }
    if (!body.empty()) {
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    req += "Connection: close\r\n\r\n" + body;
    std::size_t sent = 0;
    while (sent < req.size()) {
        if (!wait_fd(s.fd, POLLOUT, deadline)) {
            return std::nullopt;
        }
        const ssize_t n = ::send(s.fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            return std::nullopt;
        }
        sent += static_cast<std::size_t>(n);
    }
    std::string raw;
    char buf[8192];
    for (;;) {
        if (!wait_fd(s.fd, POLLIN, deadline)) {
            return std::nullopt;
        }
        const ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
        if (n < 0) {
            return std::nullopt;
        }
        if (n == 0) {
            break;
        }
        raw.append(buf, static_cast<std::size_t>(n));
    }
    const auto head_end = raw.find("\r\n\r\n");
    if (head_end == std::string::npos || raw.compare(0, 9, "HTTP/1.1 ") != 0) {
        return std::nullopt;
    }
    SimpleResponse r;
    r.status = std::atoi(raw.c_str() + 9);
    std::size_t pos = raw.find("\r\n") + 2;
    while (pos < head_end) {
        const auto eol = raw.find("\r\n", pos);
        const std::string line = raw.substr(pos, eol - pos);
        const auto colon = line.find(':');
        if (colon != std::string::npos) {
            std::string name = line.substr(0, colon);
            for (auto& c : name) {
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            }
            std::string value = line.substr(colon + 1);
            value.erase(0, value.find_first_not_of(' '));
            r.headers[name] = value;
        }
        pos = eol + 2;
    }
    r.body = raw.substr(head_end + 4);
    return r;
}

}  // namespace nmid::test
