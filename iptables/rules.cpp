#include "nmid/iptables/rules.hpp"

#include <algorithm>
#include <map>

namespace nmid::iptables {

namespace {

constexpr std::string_view kPrerouting = "PREROUTING";
constexpr std::string_view kJumpSpec = "-j aad-metadata";

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

// Calls `line_fn` for every line without its end (LF or CRLF) and trailing blanks.
template <class Fn>
void for_each_line(std::string_view text, Fn&& line_fn) {
    while (!text.empty()) {
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        while (!line.empty() &&
               (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
            line.remove_suffix(1);
        }
        line_fn(line);
    }
}

// `iptables-save -c` prefixes rules with "[packets:bytes] ".
std::string_view strip_counters(std::string_view line) {
    if (!line.empty() && line.front() == '[') {
        const auto close = line.find("] ");
        if (close != std::string_view::npos) {
            return line.substr(close + 2);
        }
    }
    return line;
}

bool targets_chain(std::string_view spec) {
    const std::vector<std::string> args = split_rule(spec);
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
        const std::string& a = args[i];
        if ((a == "-j" || a == "--jump" || a == "-g" || a == "--goto") && args[i + 1] == kChain) {
            return true;
        }
    }
    return false;
}

}  // namespace

std::vector<JumpRule> NatState::prerouting_jumps() const {
    std::vector<JumpRule> out;
    std::copy_if(jumps.begin(), jumps.end(), std::back_inserter(out),
                 [](const JumpRule& j) { return j.chain == kPrerouting; });
    return out;
}

std::vector<std::string> split_rule(std::string_view rule) {
    std::vector<std::string> args;
    std::string current;
    bool in_arg = false;
    bool quoted = false;
    for (std::size_t i = 0; i < rule.size(); ++i) {
        const char c = rule[i];
        if (quoted) {
            if (c == '\\' && i + 1 < rule.size()) {
                current += rule[++i];
            } else if (c == '"') {
                quoted = false;
            } else {
                current += c;
            }
            continue;
        }
        if (c == ' ' || c == '\t') {
            if (in_arg) {
                args.push_back(std::move(current));
                current.clear();
                in_arg = false;
            }
            continue;
        }
        in_arg = true;
        if (c == '"') {
            quoted = true;
        } else {
            current += c;
        }
    }
    if (in_arg) {
        args.push_back(std::move(current));
    }
    return args;
}

NatState parse_nat_save(std::string_view text) {
    NatState state;
    bool in_nat = false;
    std::map<std::string, std::size_t, std::less<>> positions;
    for_each_line(text, [&](std::string_view line) {
        if (line.empty() || line.front() == '#') {
            return;
        }
        if (line.front() == '*') {
            in_nat = line == "*nat";
            state.table_present = state.table_present || in_nat;
            return;
        }
        if (!in_nat) {
            return;
        }
        if (line == "COMMIT") {
            in_nat = false;
            return;
        }
        if (line.front() == ':') {
            const std::string_view name = line.substr(1, line.find(' ') - 1);
            state.chain_exists = state.chain_exists || name == kChain;
            return;
        }
        line = strip_counters(line);
        if (!starts_with(line, "-A ")) {
            return;
        }
        line.remove_prefix(3);
        const auto space = line.find(' ');
        const std::string_view chain = line.substr(0, space);
        const std::string_view spec =
            space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
        auto [it, inserted] = positions.try_emplace(std::string{chain}, 0);
        const std::size_t position = ++it->second;
        if (chain == kPrerouting) {
            ++state.prerouting_rules;
        }
        if (chain == kChain) {
            state.chain_exists = true;
            state.chain_rules.emplace_back(spec);
            return;
        }
        if (targets_chain(spec)) {
            state.jumps.push_back(
                {.chain = std::string{chain}, .position = position, .spec = std::string{spec}});
        }
    });
    return state;
}

std::vector<std::string> desired_chain_rules(const DesiredRules& desired) {
    return {
        "! -s 127.0.0.1/32 -d " + desired.metadata_ip + "/32 -p tcp -m tcp --dport " +
            std::to_string(desired.metadata_port) + " -j DNAT --to-destination " +
            desired.target_ip + ":" + std::to_string(desired.target_port),
        "-j RETURN",
    };
}

Plan plan(const NatState& current, const DesiredRules& desired) {
    Plan result;
    const std::vector<std::string> rules = desired_chain_rules(desired);
    const bool chain_ok = current.chain_exists && current.chain_rules == rules;
    if (!current.chain_exists) {
        result.reasons.emplace_back("chain missing");
    } else if (!chain_ok) {
        result.reasons.emplace_back("chain rules differ");
    }

    const std::vector<JumpRule> jumps = current.prerouting_jumps();
    const bool jump_ok = jumps.size() == 1 && jumps[0].position == 1 && jumps[0].spec == kJumpSpec;
    if (jumps.empty()) {
        result.reasons.emplace_back("jump missing");
    } else if (!jump_ok) {
        if (jumps.size() > 1) {
            result.reasons.push_back("duplicate jumps (" + std::to_string(jumps.size()) + ")");
        }
        if (jumps.front().position != 1) {
            result.reasons.emplace_back("jump not at position 1");
        }
        if (std::any_of(jumps.begin(), jumps.end(),
                        [](const JumpRule& j) { return j.spec != kJumpSpec; })) {
            result.reasons.emplace_back("foreign jump");
        }
    }

    if (chain_ok && jump_ok) {
        result.in_sync = true;
        return result;
    }
    std::string& out = result.restore_input;
    out += "*nat\n";
    if (!chain_ok) {
        // With --noflush, declaring a user chain creates it or flushes it.
        out += ":";
        out += kChain;
        out += " - [0:0]\n";
    }
    if (!jump_ok) {
        for (const JumpRule& j : jumps) {
            out += "-D PREROUTING " + j.spec + "\n";
        }
        out += "-I PREROUTING 1 ";
        out += kJumpSpec;
        out += "\n";
    }
    if (!chain_ok) {
        for (const std::string& rule : rules) {
            out += "-A ";
            out += kChain;
            out += " " + rule + "\n";
        }
    }
    out += "COMMIT\n";
    return result;
}

std::optional<std::string> render_cleanup(const NatState& current) {
    if (!current.chain_exists && current.jumps.empty()) {
        return std::nullopt;
    }
    std::string out = "*nat\n";
    if (current.chain_exists) {
        // -X needs an empty chain: the declaration flushes it first.
        out += ":";
        out += kChain;
        out += " - [0:0]\n";
    }
    for (const JumpRule& j : current.jumps) {
        out += "-D " + j.chain + " " + j.spec + "\n";
    }
    if (current.chain_exists) {
        out += "-X ";
        out += kChain;
        out += "\n";
    }
    out += "COMMIT\n";
    return out;
}

std::size_t count_rules(std::string_view save_output) {
    std::size_t n = 0;
    for_each_line(save_output, [&](std::string_view line) {
        if (!line.empty() && line.front() == '-') {
            ++n;
        }
    });
    return n;
}

bool has_kubelet_chains(std::string_view save_output) {
    bool found = false;
    for_each_line(save_output, [&](std::string_view line) {
        for (const std::string_view name : {":KUBE-IPTABLES-HINT", ":KUBE-KUBELET-CANARY"}) {
            if (starts_with(line, name) &&
                (line.size() == name.size() || line[name.size()] == ' ')) {
                found = true;
            }
        }
    });
    return found;
}

std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds base,
                                        std::chrono::milliseconds cap, double unit_random) {
    std::chrono::milliseconds delay = std::min(base, cap);
    for (int i = 1; i < attempt && delay < cap; ++i) {
        delay = std::min(delay * 2, cap);
    }
    const double unit = std::clamp(unit_random, 0.0, 1.0);
    // Jitter within [delay/2, delay]: spreads 5,000 nodes retrying the same failure, yet
    // keeps the growth visible.
    const auto jittered = std::chrono::milliseconds{
        static_cast<std::int64_t>(static_cast<double>(delay.count()) * (0.5 + 0.5 * unit))};
    return std::max(jittered, std::chrono::milliseconds{1});
}

}  // namespace nmid::iptables
