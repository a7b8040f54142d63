#pragma once

// Pure core of the iptables module: parse `iptables-save -t nat`, compare it with the desired
// rules, and render `iptables-restore --noflush` input. No I/O, no clock, no logging.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nmid::iptables {

/// NMI's chain name; aad-pod-identity's docs and e2e tests look for it.
inline constexpr std::string_view kChain = "aad-metadata";

/// What the nat table should hold (all values already validated: IPv4 dotted quads).
struct DesiredRules {
    std::string metadata_ip{};
    std::uint16_t metadata_port = 0;
    std::string target_ip{};
    std::uint16_t target_port = 0;
};

/// One rule that jumps (or goes) to kChain.
struct JumpRule {
    std::string chain{};       ///< chain holding the rule (PREROUTING, OUTPUT, ...)
    std::size_t position = 0;  ///< 1-based position within that chain
    std::string spec{};        ///< the rule as saved, without "-A <chain> "
    friend bool operator==(const JumpRule&, const JumpRule&) = default;
};

/// The parts of the nat table that matter to us, as `iptables-save -t nat` printed them.
struct NatState {
    bool table_present = false;  ///< a `*nat` section was seen
    bool chain_exists = false;   ///< `:aad-metadata` declared
    /// Rules of kChain in order, each without "-A aad-metadata ".
    std::vector<std::string> chain_rules{};
    /// Every rule in any nat chain whose target is kChain, in save order.
    std::vector<JumpRule> jumps{};
    std::size_t prerouting_rules = 0;  ///< number of rules in PREROUTING

    /// Jumps from PREROUTING only.
    [[nodiscard]] std::vector<JumpRule> prerouting_jumps() const;
};

/// Parses iptables-save output (any backend; other tables are skipped; comments, counters in
/// `[p:b]` form and CRLF line ends are tolerated). Never fails: text without a `*nat` section
/// gives a state with `table_present == false` (nft prints nothing for a missing table).
[[nodiscard]] NatState parse_nat_save(std::string_view text);

/// Splits one saved rule into arguments as iptables-restore does (double quotes group, a
/// backslash escapes the next character inside quotes).
[[nodiscard]] std::vector<std::string> split_rule(std::string_view rule);

/// The desired rules of kChain, each without "-A aad-metadata ":
///   `! -s 127.0.0.1/32 -d <ip>/32 -p tcp -m tcp --dport <port> -j DNAT --to-destination <t>:<p>`
///   `-j RETURN`
[[nodiscard]] std::vector<std::string> desired_chain_rules(const DesiredRules& desired);

/// Result of comparing the current state with the desired one.
struct Plan {
    bool in_sync = false;
    /// `iptables-restore --noflush` input (table nat, ending in COMMIT); empty when in sync.
    std::string restore_input{};
    /// Why a change is needed, for logs: "chain missing", "chain rules differ",
    /// "jump missing", "jump not at position 1", "duplicate jumps (3)", "foreign jump".
    std::vector<std::string> reasons{};
};

/// Decides what to change. The chain is (re)declared, which creates or flushes it, and its
/// two rules are appended only when its rules differ. PREROUTING must hold exactly one jump,
/// `-j aad-metadata` at position 1: otherwise every PREROUTING jump to the chain is deleted
/// by its saved spec and one is inserted at position 1, in the same restore transaction (so
/// duplicates go away and there is no instant without a jump). Jumps from other chains are
/// left alone. Deleting by spec, not by number, stays right when another writer inserts
/// rules between our read and our restore.
[[nodiscard]] Plan plan(const NatState& current, const DesiredRules& desired);

/// `iptables-restore --noflush` input that removes every jump to kChain (from any chain),
/// then flushes and deletes the chain. nullopt when there is nothing to remove.
[[nodiscard]] std::optional<std::string> render_cleanup(const NatState& current);

/// Lines of iptables-save output that start with '-' (rules), as kube's iptables-wrapper
/// counts them.
[[nodiscard]] std::size_t count_rules(std::string_view save_output);

/// True when iptables-save output declares KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY
/// (created by kubelet >= 1.17 in the mangle table of the backend it uses).
[[nodiscard]] bool has_kubelet_chains(std::string_view save_output);

/// Exponential backoff with jitter: min(cap, base * 2^(attempt-1)) scaled into
/// [1/2, 1] by `unit_random` in [0, 1]. attempt >= 1.
[[nodiscard]] std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds base,
                                                      std::chrono::milliseconds cap,
                                                      double unit_random);

}  // namespace nmid::iptables
