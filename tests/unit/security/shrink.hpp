#pragma once

// Minimises a failing cluster: removes objects, labels and owner references one at a time
// while the same violation class persists. `Check` maps a candidate cluster to its class.

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "model.hpp"

namespace nmid::security_test {

template <class T>
bool try_remove_each(Cluster& c, std::vector<T> Cluster::*field,
                     const std::function<bool(const Cluster&)>& still_fails, std::size_t& budget) {
    bool progress = false;
    for (std::size_t i = 0; i < (c.*field).size() && budget > 0;) {
        Cluster smaller = c;
        (smaller.*field).erase((smaller.*field).begin() + static_cast<std::ptrdiff_t>(i));
        --budget;
        if (still_fails(smaller)) {
            c = std::move(smaller);
            progress = true;
        } else {
            ++i;
        }
    }
    return progress;
}

inline bool try_remove_pod_parts(Cluster& c, const std::function<bool(const Cluster&)>& still_fails,
                                 std::size_t& budget) {
    bool progress = false;
    for (std::size_t p = 0; p < c.pods.size(); ++p) {
        for (std::size_t i = 0; i < c.pods[p].owners.size() && budget > 0;) {
            Cluster smaller = c;
            smaller.pods[p].owners.erase(smaller.pods[p].owners.begin() +
                                         static_cast<std::ptrdiff_t>(i));
            --budget;
            if (still_fails(smaller)) {
                c = std::move(smaller);
                progress = true;
            } else {
                ++i;
            }
        }
        std::vector<std::string> keys;
        for (const auto& [k, v] : c.pods[p].labels) {
            keys.push_back(k);
        }
        for (const std::string& k : keys) {
            if (budget == 0) {
                break;
            }
            Cluster smaller = c;
            smaller.pods[p].labels.erase(k);
            --budget;
            if (still_fails(smaller)) {
                c = std::move(smaller);
                progress = true;
            }
        }
    }
    return progress;
}

/// `still_fails(c)` must hold for the input. Bounded by `budget` checks.
inline Cluster shrink(Cluster c, const std::function<bool(const Cluster&)>& still_fails,
                      std::size_t budget = 2000) {
    bool progress = true;
    while (progress && budget > 0) {
        progress = false;
        progress |= try_remove_each(c, &Cluster::assigned, still_fails, budget);
        progress |= try_remove_each(c, &Cluster::bindings, still_fails, budget);
        progress |= try_remove_each(c, &Cluster::exceptions, still_fails, budget);
        progress |= try_remove_each(c, &Cluster::identities, still_fails, budget);
        progress |= try_remove_each(c, &Cluster::pods, still_fails, budget);
        progress |= try_remove_pod_parts(c, still_fails, budget);
    }
    return c;
}

}  // namespace nmid::security_test
