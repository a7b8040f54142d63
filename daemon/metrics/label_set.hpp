#pragma once

// Interning of label values into small indexes, with a bound on distinct values: the guard
// against NMI's unbounded `resource` and path labels (reference nmi-behaviour 13, item 12).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "nmid/metrics/metrics.hpp"

namespace nmid::metrics {

/// Label values are cut to this many bytes (a resource can be as long as a request line).
inline constexpr std::size_t kMaxLabelValueBytes = 256;

/// `value` made safe for the exposition format: cut to kMaxLabelValueBytes at a character
/// boundary, invalid UTF-8 and control characters replaced by '?'.
[[nodiscard]] std::string sanitize_label_value(std::string_view value);

/// Maps up to `capacity` distinct values to indexes 1..capacity; index 0 is kOtherLabel and
/// stands for every value seen after the set filled up. Not thread-safe (the owner locks).
class LabelSet {
public:
    explicit LabelSet(std::size_t capacity);

    /// Index of `raw` (at most kMaxLabelValueBytes of it), adding it while there is room.
    /// Steady state: no allocation; a repeat of the previous value costs one comparison, small
    /// sets are scanned, larger ones hashed.
    std::uint32_t intern(std::string_view raw);
    /// The sanitized label value of `index`.
    [[nodiscard]] const std::string& value(std::uint32_t index) const { return values_[index]; }
    [[nodiscard]] std::size_t size() const { return values_.size() - 1; }

private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    // Up to this capacity a scan of short strings beats hashing them.
    static constexpr std::size_t kScanLimit = 16;

    std::size_t capacity_;
    std::uint32_t last_ = 0;         // index returned last (0: none)
    std::vector<std::string> keys_;  // raw keys by index; keys_[0] unused
    std::unordered_map<std::string, std::uint32_t, Hash, std::equal_to<>> index_;  // > kScanLimit
    std::vector<std::string> values_;  // sanitized label values by index
};

}  // namespace nmid::metrics
