#include "label_set.hpp"

#include <algorithm>

namespace nmid::metrics {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char lead = byte(i);
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        low = lead == 0xE0 ? 0xA0 : 0x80;
        high = lead == 0xED ? 0x9F : 0xBF;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        low = lead == 0xF0 ? 0x90 : 0x80;
        high = lead == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (i + length > s.size() || byte(i + 1) < low || byte(i + 1) > high) {
        return 0;
    }
    for (std::size_t k = 2; k < length; ++k) {
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) {
            return 0;
        }
    }
    return length;
}

}  // namespace

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
