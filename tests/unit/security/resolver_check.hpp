#pragma once

// Judges one identity::resolve() decision against the oracle. Safety classes (a token or a
// pass-through the rules do not allow) start with "unsafe:"; "disagree:" classes are answers
// that are safe but not the documented ones (an allowed identity refused, or not the first by
// (namespace, name), or a documented exception not honoured).

#include <string>

#include "model.hpp"
#include "nmid/identity/resolver.hpp"
#include "oracle.hpp"

namespace nmid::security_test {

/// "" when the decision is right, else the class of what is wrong.
inline std::string check_decision(const Cluster& c, const GenPod& pod, const Selectors& s,
                                  const identity::Decision& d) {
    const Tri excepted = is_excepted(pod, c);
    if (d.kind == identity::DecisionKind::excepted) {
        return excepted == Tri::no ? "unsafe:excepted_by_" + forged_exception_kind(pod, c) : "";
    }
    if (excepted == Tri::yes) {
        return "disagree:documented_exception_not_honoured";
    }
    const std::vector<Candidate> bound = bound_identities(pod, c);
    if (d.kind == identity::DecisionKind::bound) {
        if (d.identity == nullptr) {
            return "unsafe:bound_without_identity";
        }
        const std::string why = why_not_allowed(&pod, c, s, *d.identity);
        if (!why.empty()) {
            return "unsafe:token_for_" + why;
        }
        // Documented choice: the first matching candidate by (namespace, name) that nmid
        // accepts. Anything before the answer must be one nmid may reject.
        for (const Candidate& cand : bound) {
            if (!selector_matches(*cand.identity, s)) {
                continue;
            }
            if (cand.identity->meta.namespace_name == d.identity->meta.namespace_name &&
                cand.identity->meta.name == d.identity->meta.name) {
                return "";
            }
            if (cand.verdict.usable == Tri::yes) {
                return "disagree:not_the_first_allowed_identity";
            }
        }
        return "";
    }
    for (const Candidate& cand : bound) {
        if (cand.verdict.usable == Tri::yes && selector_matches(*cand.identity, s)) {
            return "disagree:allowed_identity_denied";
        }
    }
    return "";
}

}  // namespace nmid::security_test
