#pragma once

// Seeds and the failure report of the property tests. The base seed is fixed (the suite is
// deterministic) unless NMID_PROP_SEED sets another; NMID_PROP_REPLAY=<case seed> runs one
// case and prints it whole; NMID_PROP_SCALE (a percentage, default 100) scales the case count.

#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <string>

namespace nmid::security_test {

inline std::optional<std::uint64_t> env_u64(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') {
        return std::nullopt;
    }
    return std::strtoull(v, nullptr, 0);
}

inline std::uint64_t base_seed() {
    return env_u64("NMID_PROP_SEED").value_or(0x6e6d69645f31ULL);
}

inline std::optional<std::uint64_t> replay_seed() {
    return env_u64("NMID_PROP_REPLAY");
}

inline std::size_t scaled(std::size_t n) {
    const std::uint64_t percent = env_u64("NMID_PROP_SCALE").value_or(100);
    return static_cast<std::size_t>(n * percent / 100);
}

/// Violations by class: how many, and the first one's case seed and minimised description.
class Findings {
public:
    struct Entry {
        std::size_t count = 0;
        std::uint64_t seed = 0;
        std::string example;
    };

    /// True when `cls` is new (the caller then minimises and describes it with `describe`).
    bool add(const std::string& cls, std::uint64_t seed) {
        Entry& e = classes_[cls];
        ++e.count;
        if (e.count == 1) {
            e.seed = seed;
            return true;
        }
        return false;
    }
    void describe(const std::string& cls, std::string example) {
        classes_[cls].example = std::move(example);
    }
    [[nodiscard]] bool empty() const { return classes_.empty(); }
    [[nodiscard]] std::size_t size() const { return classes_.size(); }
    [[nodiscard]] bool has(const std::string& cls) const { return classes_.count(cls) != 0; }

    [[nodiscard]] std::string report(const char* test, std::uint64_t base) const {
        std::ostringstream o;
        o << test << ": " << classes_.size() << " classes of violations (base seed 0x" << std::hex
          << base << std::dec << "; replay one with NMID_PROP_REPLAY=<case seed>)\n";
        for (const auto& [cls, e] : classes_) {
            o << "- " << cls << ": " << e.count << " cases, first case seed 0x" << std::hex
              << e.seed << std::dec << "\n";
        }
        for (const auto& [cls, e] : classes_) {
            o << "\n== " << cls << " (case seed 0x" << std::hex << e.seed << std::dec
              << ", minimised)\n"
              << e.example;
        }
        return o.str();
    }

private:
    std::map<std::string, Entry> classes_;
};

}  // namespace nmid::security_test
