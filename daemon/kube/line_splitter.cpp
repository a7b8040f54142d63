#include "nmid/kube/line_splitter.hpp"

namespace nmid::kube {

LineSplitter::Status LineSplitter::feed(std::string_view data, const LineHandler& on_line) {
    while (!data.empty()) {
        const auto newline = data.find('\n');
        if (newline == std::string_view::npos) {
            if (partial_.size() + data.size() > max_line_) {
                return Status::too_long;
            }
            partial_.append(data);
            return Status::more;
        }
        std::string_view piece = data.substr(0, newline);
        data.remove_prefix(newline + 1);
        if (partial_.size() + piece.size() > max_line_) {
            return Status::too_long;
        }
        bool keep_going = true;
        if (partial_.empty()) {
            // The common case: a whole line inside one chunk, delivered without a copy.
            if (!piece.empty()) {
                keep_going = on_line(piece);
            }
        } else {
            partial_.append(piece);
            const std::string line = std::move(partial_);
            partial_.clear();
            keep_going = on_line(line);
        }
        if (!keep_going) {
            return Status::stopped;
        }
    }
    return Status::more;
}

LineSplitter::Status LineSplitter::finish(const LineHandler& on_line) {
    if (partial_.empty()) {
        return Status::more;
    }
    const std::string line = std::move(partial_);
    partial_.clear();
    return on_line(line) ? Status::more : Status::stopped;
}

}  // namespace nmid::kube
