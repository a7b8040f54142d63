#pragma once

// What the bench tools (nmid_burst, nmid_fairness) need to read nmid's answers off a raw
// socket: the status and whether the whole response (head plus Content-Length body) arrived.

#include <cstdlib>
#include <string>

namespace nmid::bench {

inline int status_of(const std::string& raw) {
    return raw.compare(0, 9, "HTTP/1.1 ") == 0 ? std::atoi(raw.c_str() + 9) : 0;
}

// Complete when the head and Content-Length bytes of body have arrived.
inline bool complete(const std::string& raw) {
    const auto head = raw.find("\r\n\r\n");
    if (head == std::string::npos) {
        return false;
    }
    const auto cl = raw.find("Content-Length: ");
    if (cl == std::string::npos || cl > head) {
        return false;
    }
    const auto len = std::strtoul(raw.c_str() + cl + 16, nullptr, 10);
    return raw.size() >= head + 4 + len;
}

}  // namespace nmid::bench
