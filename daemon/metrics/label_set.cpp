#include "label_set.hpp"

#include <algorithm>

#include "nmid/core/utf8.hpp"

namespace nmid::metrics {

std::string sanitize_label_value(std::string_view value) {
    std::string out;
    out.reserve(std::min(value.size(), kMaxLabelValueBytes));
    std::size_t i = 0;
    while (i < value.size()) {
        const auto c = static_cast<unsigned char>(value[i]);
        std::size_t length = 1;
        if (c >= 0x80) {
            length = utf8_sequence_length(value, i);
        }
        const std::size_t taken = length == 0 ? 1 : length;
        if (out.size() + taken > kMaxLabelValueBytes) {
            break;
        }
        if (length == 0 || c < 0x20 || c == 0x7F) {
            out.push_back('?');
        } else {
            out.append(value.substr(i, length));
        }
        i += taken;
    }
    return out;
}

LabelSet::LabelSet(std::size_t capacity) : capacity_{capacity} {
    keys_.reserve(capacity + 1);
    keys_.emplace_back();
    values_.reserve(capacity + 1);
    values_.emplace_back(kOtherLabel);
    if (capacity > kScanLimit) {
        index_.reserve(capacity);
    }
}

std::uint32_t LabelSet::intern(std::string_view raw) {
    const std::string_view key = raw.substr(0, kMaxLabelValueBytes);
    if (last_ != 0 && keys_[last_] == key) {
        return last_;
    }
    std::uint32_t found = 0;
    if (capacity_ <= kScanLimit) {
        for (std::size_t i = 1; i < keys_.size(); ++i) {
            if (keys_[i] == key) {
                found = static_cast<std::uint32_t>(i);
                break;
            }
        }
    } else if (auto it = index_.find(key); it != index_.end()) {
        found = it->second;
    }
    if (found == 0) {
        if (keys_.size() > capacity_) {
            return 0;
        }
        found = static_cast<std::uint32_t>(keys_.size());
        keys_.emplace_back(key);
        values_.push_back(sanitize_label_value(key));
        if (capacity_ > kScanLimit) {
            index_.emplace(std::string{key}, found);
        }
    }
    last_ = found;
    return found;
}

}  // namespace nmid::metrics
