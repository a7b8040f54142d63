// The one flag table, joined from its parts in help order: NMI's flags (flag_table_nmi.cpp)
// nmid's own (flag_table_nmid.cpp) and workload identity's (flag_table_workload.cpp).
#include "flag_table.hpp"

#include <algorithm>
#include <vector>

namespace nmid::config::detail {
namespace {

const std::vector<Flag>& all_flags() {
    static const std::vector<Flag> flags = [] {
        std::vector<Flag> joined;
        for (const std::span<const Flag> part : {nmi_flags(), nmid_flags(), workload_flags()}) {
            joined.insert(joined.end(), part.begin(), part.end());
        }
        return joined;
    }();
    return flags;
}

}  // namespace

std::span<const Flag> flag_table() {
    return all_flags();
}

const Flag* find_flag(std::string_view name) {
    const auto& flags = all_flags();
    const auto it =
        std::find_if(flags.begin(), flags.end(), [&](const Flag& f) { return f.name == name; });
    return it == flags.end() ? nullptr : &*it;
}

const Flag* find_shorthand(char letter) {
    if (letter == '\0') {
        return nullptr;
    }
    const auto& flags = all_flags();
    const auto it = std::find_if(flags.begin(), flags.end(),
                                 [&](const Flag& f) { return f.shorthand == letter; });
    return it == flags.end() ? nullptr : &*it;
}

}  // namespace nmid::config::detail
