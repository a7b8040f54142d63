// Fuzz target: `iptables-save` output (iptables/rules: parse_nat_save, plan, render_cleanup,
// split_rule, count_rules, has_kubelet_chains). Only text is parsed and rendered; nothing
// here runs iptables.
//
// Invariants:
// - the parsed state is consistent: a jump has a 1-based position, a PREROUTING jump's
//   position is within PREROUTING's rule count, the chain exists when it has rules;
// - plan(): in sync exactly when it has no restore input and no reason; otherwise the restore
//   input is one `*nat` transaction (first line `*nat`, last line `COMMIT`, nothing else
//   starting a table or committing, every other line a chain declaration or an -A/-D/-I/-X
//   command), so whatever the saved rules hold, nmid's restore touches only the nat table;
// - render_cleanup(): the same shape, present exactly when there is something to remove.

#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "nmid/iptables/rules.hpp"

using nmid::fuzz::check;
namespace ipt = nmid::iptables;

namespace {

void check_transaction(std::string_view restore) {
    check(restore.starts_with("*nat\n") && restore.ends_with("\nCOMMIT\n"),
          "restore input is not one *nat transaction");
    std::string_view body = restore.substr(5, restore.size() - 5 - 7);
    while (!body.empty()) {
        const std::size_t end = body.find('\n');
        check(end != std::string_view::npos, "restore line without an end");
        const std::string_view line = body.substr(0, end);
        body.remove_prefix(end + 1);
        check(line.starts_with(':') || line.starts_with("-A ") || line.starts_with("-D ") ||
                  line.starts_with("-I ") || line.starts_with("-X "),
              "restore line that is not a chain or rule command");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = nmid::fuzz::as_text(data, size);
    const ipt::NatState state = ipt::parse_nat_save(text);
    check(!state.chain_exists || state.table_present, "chain outside a nat table");
    check(state.chain_rules.empty() || state.chain_exists, "chain rules without the chain");
    for (const ipt::JumpRule& jump : state.jumps) {
        check(jump.position >= 1, "jump position not 1-based");
        check(jump.spec.find('\n') == std::string::npos, "jump spec over two lines");
        (void)ipt::split_rule(jump.spec);
    }
    for (const ipt::JumpRule& jump : state.prerouting_jumps()) {
        check(jump.chain == "PREROUTING" && jump.position <= state.prerouting_rules,
              "PREROUTING jump beyond PREROUTING's rules");
    }
    for (const std::string& rule : state.chain_rules) {
        (void)ipt::split_rule(rule);
    }

    const ipt::DesiredRules desired{.metadata_ip = "169.254.169.254",
                                    .metadata_port = 80,
                                    .target_ip = "127.0.0.1",
                                    .target_port = 2579};
    const ipt::Plan plan = ipt::plan(state, desired);
    check(plan.in_sync == plan.restore_input.empty() && plan.in_sync == plan.reasons.empty(),
          "plan in sync with a restore input or a reason, or out of sync without");
    if (!plan.in_sync) {
        check_transaction(plan.restore_input);
    }
    const std::optional<std::string> cleanup = ipt::render_cleanup(state);
    check(cleanup.has_value() == (state.chain_exists || !state.jumps.empty()),
          "cleanup present exactly when there is something to remove");
    if (cleanup) {
        check_transaction(*cleanup);
    }
    (void)ipt::count_rules(text);
    (void)ipt::has_kubelet_chains(text);
    return 0;
}
