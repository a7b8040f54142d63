#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "nmid/kube/client.hpp"

namespace nmid::kube {

/// Splits a byte stream that arrives in arbitrary pieces (HTTP chunks) into `\n`-terminated
/// lines, without copying lines that lie whole within one piece. Empty lines are skipped.
/// Pure, never throws (beyond allocation).
class LineSplitter {
public:
    enum class Status {
        more,      ///< every complete line was delivered; feed more
        stopped,   ///< the handler returned false
        too_long,  ///< a line grew past `max_line` bytes
    };

    explicit LineSplitter(std::size_t max_line) : max_line_{max_line} {}

    /// Delivers each complete line of `data` (after what earlier calls left) to `on_line`.
    Status feed(std::string_view data, const LineHandler& on_line);
    /// End of stream: delivers a last line that had no `\n`.
    Status finish(const LineHandler& on_line);
    /// Bytes of an incomplete line held back.
    [[nodiscard]] std::size_t pending() const { return partial_.size(); }

private:
    std::size_t max_line_;
    std::string partial_;
};

}  // namespace nmid::kube
