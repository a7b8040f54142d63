// Authorisation property through the real NmiHandler (issue 11, "What to build" 10): random
// clusters, then random requests (pod and unknown source IPs, selectors, hostile spellings of
// identity paths, other identity endpoints, methods, headers). nmid's answer is a token only
// for an identity bound to the caller and usable, a pass-through only for an excepted caller,
// and nothing under /metadata/identity is ever forwarded for a non-excepted caller (nor any
// identity endpoint but the token route for an excepted one). 50,000 requests; the resolver
// level (resolver_property_test.cpp) runs the million.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "findings.hpp"
#include "generator.hpp"
#include "handler_check.hpp"
#include "handler_rig.hpp"
#include "shrink.hpp"
#include "targets.hpp"

namespace nmid::security_test {
namespace {

constexpr std::size_t kClusters = 3'125;
constexpr std::size_t kRequestsPerCluster = 16;  // 50,000 requests

struct Case {
    Cluster cluster;
    std::vector<GenRequest> requests;
};

Case random_case(std::uint64_t seed) {
    Rng rng(seed);
    Case c{random_cluster(rng), {}};
    for (std::size_t i = 0; i < kRequestsPerCluster; ++i) {
        c.requests.push_back(random_request(rng, c.cluster));
    }
    return c;
}

struct Served {
    std::vector<std::string> classes;  ///< of the last request
    Answer answer;
};

/// Serves `requests` in order on a fresh rig; the classes found for the last one.
Served serve(const Cluster& cluster, const std::vector<GenRequest>& requests) {
    HandlerRig rig(cluster);
    Served out;
    for (const GenRequest& r : requests) {
        const Marks before = marks_of(rig);
        out.answer = rig.send(r);
        out.classes = check_request(cluster, r, out.answer, rig, before);
    }
    return out;
}

bool has(const std::vector<std::string>& classes, const std::string& cls) {
    return std::find(classes.begin(), classes.end(), cls) != classes.end();
}

constexpr std::size_t kMinimised = 12;  // classes minimised (each re-serves the case ~100 times)

std::string describe(Case c, std::size_t failing, const std::string& cls, bool minimise) {
    if (cls.starts_with("harness:") || !minimise) {
        return cluster_text(c.cluster) + "  request " + std::to_string(failing + 1) + ": " +
               request_text(c.requests[failing]) + "\n";
    }
    std::vector<GenRequest> requests(c.requests.begin(),
                                     c.requests.begin() + static_cast<std::ptrdiff_t>(failing) + 1);
    // Earlier requests matter only when they filled the cache: drop those that do not.
    for (std::size_t i = 0; i + 1 < requests.size();) {
        std::vector<GenRequest> fewer = requests;
        fewer.erase(fewer.begin() + static_cast<std::ptrdiff_t>(i));
        if (has(serve(c.cluster, fewer).classes, cls)) {
            requests = std::move(fewer);
        } else {
            ++i;
        }
    }
    const Cluster small = shrink(
        c.cluster,
        [&](const Cluster& candidate) { return has(serve(candidate, requests).classes, cls); },
        100);
    const Served last = serve(small, requests);
    std::ostringstream o;
    o << cluster_text(small);
    for (std::size_t i = 0; i < requests.size(); ++i) {
        o << "  request " << i + 1 << ": " << request_text(requests[i]) << "\n";
    }
    o << "  nmid answered the last with " << last.answer.status << " "
      << last.answer.body.substr(0, 300) << "\n";
    return o.str();
}

struct Tally {
    std::size_t requests = 0;
    std::size_t tokens = 0;
    std::size_t passed_through = 0;
};

void run_case(std::uint64_t seed, Findings& findings, Tally& tally, bool verbose) {
    const Case c = random_case(seed);
    HandlerRig rig(c.cluster);
    for (std::size_t i = 0; i < c.requests.size(); ++i) {
        const GenRequest& r = c.requests[i];
        const Marks before = marks_of(rig);
        const Answer a = rig.send(r);
        if (verbose) {
            std::cerr << "request " << i + 1 << ": " << request_text(r) << " -> "
                      << (a.completed ? std::to_string(a.status) : "no answer") << "\n";
        }
        ++tally.requests;
        if (a.status == 200 && a.body.find("\"access_token\":\"proxy-") != std::string::npos) {
            ++tally.passed_through;
        } else if (a.status == 200 && a.body.find("\"access_token\"") != std::string::npos) {
            ++tally.tokens;
        }
        for (const std::string& cls : check_request(c.cluster, r, a, rig, before)) {
            if (findings.add(cls, seed) || verbose) {
                findings.describe(cls,
                                  describe(c, i, cls, verbose || findings.size() <= kMinimised));
            }
        }
    }
}

TEST(HandlerProperty,
     TokensOnlyForBoundIdentitiesAndNoIdentityPathForwardedForFiftyThousandRequests) {
    auto log = std::make_shared<std::ostringstream>();
    logging::setup_for_test({.format = LogFormat::text, .level = "off"}, log);
    Findings findings;
    Tally tally;
    const auto started = std::chrono::steady_clock::now();
    const std::uint64_t base = base_seed() ^ 0x68616e646c6572ULL;  // not the resolver's cases
    if (const auto replay = replay_seed()) {
        run_case(*replay, findings, tally, true);
    } else {
        for (std::size_t i = 0; i < scaled(kClusters); ++i) {
            run_case(case_seed(base, i), findings, tally, false);
            logging::flush();
            log->str("");
        }
        EXPECT_GT(tally.tokens, tally.requests / 200) << "too few tokens served";
        EXPECT_GT(tally.passed_through, tally.requests / 200) << "too few pass-throughs";
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    std::cout << "[ handler property ] " << tally.requests << " requests (" << tally.tokens
              << " tokens, " << tally.passed_through << " passed through) in " << took.count()
              << " ms\n";
    EXPECT_TRUE(findings.empty()) << findings.report("handler property", base);
}

}  // namespace
}  // namespace nmid::security_test
