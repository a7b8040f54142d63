#include "nmid/iptables/backend.hpp"

#include <array>
#include <cctype>
#include <utility>

#include "nmid/iptables/rules.hpp"

namespace nmid::iptables {

namespace asio = boost::asio;

namespace {

constexpr std::array<std::string_view, 2> kNftSaves{"iptables-nft-save", "ip6tables-nft-save"};
constexpr std::array<std::string_view, 2> kLegacySaves{"iptables-legacy-save",
                                                       "ip6tables-legacy-save"};

std::string join_dir(std::string_view dir, std::string_view name) {
    if (dir.empty()) {
        return std::string{name};
    }
    std::string path{dir};
    if (path.back() != '/') {
        path += '/';
    }
    path += name;
    return path;
}

// Built outside the coroutine: g++ 12 rejects braced lists of string literals held across a
// co_await ("array used as initializer").
std::vector<std::string> save_argv(std::string_view dir, std::string_view save, bool mangle) {
    std::vector<std::string> argv{join_dir(dir, save)};
    if (mangle) {
        argv.emplace_back("-t");
        argv.emplace_back("mangle");
    }
    return argv;
}

Detection decided(Backend backend, std::string reason) {
    return Detection{.backend = backend, .reason = std::move(reason)};
}

// A failed or unfinished command counts as empty output, as in the wrapper.
asio::awaitable<std::string> output_of(CommandRunner& runner, std::vector<std::string> argv,
                                       std::chrono::milliseconds timeout) {
    Command command;
    command.argv = std::move(argv);
    command.timeout = timeout;
    CommandResult result = co_await runner.run(std::move(command));
    if (result.status != CommandStatus::exited) {
        co_return std::string{};
    }
    co_return std::move(result.out);
}

}  // namespace

Commands::Commands(Backend backend, std::string binary_dir, int lock_wait_seconds,
                   std::chrono::milliseconds timeout)
    : backend_(backend),
      binary_dir_(std::move(binary_dir)),
      lock_wait_seconds_(lock_wait_seconds),
      timeout_(timeout) {}

std::string Commands::binary(std::string_view name) const {
    return join_dir(binary_dir_, name);
}

Command Commands::save_nat() const {
    const std::string name = "iptables-" + std::string{to_string(backend_)} + "-save";
    return {.argv = {binary(name), "-t", "nat"}, .timeout = timeout_};
}

Command Commands::restore(std::string input) const {
    const std::string name = "iptables-" + std::string{to_string(backend_)} + "-restore";
    // `--wait=N`, never `-w N`: iptables-nft-restore's short -w takes no argument, so "N"
    // would be read as the input file name; both backends accept the long form.
    return {.argv = {binary(name), "--wait=" + std::to_string(lock_wait_seconds_), "--noflush"},
            .stdin_data = std::move(input),
            .timeout = timeout_};
}

Command Commands::conntrack_delete(std::string_view ip, std::uint16_t port) const {
    // Only flows whose replies come from IMDS itself (`--reply-src`): flows to the metadata
    // address that the DNAT sends to nmid (answered by nmid) are left alone, so the deletion
    // at start-up never cuts pods' connections to the nmid being replaced (a rollout).
    return {.argv = {binary("conntrack"), "-D", "-d", std::string{ip}, "-p", "tcp", "--dport",
                     std::to_string(port), "--reply-src", std::string{ip}},
            .timeout = timeout_};
}

asio::awaitable<Detection> detect_backend(CommandRunner& runner, std::string_view binary_dir,
                                          std::chrono::milliseconds timeout) {
    for (const std::string_view save : kNftSaves) {
        const std::string out =
            co_await output_of(runner, save_argv(binary_dir, save, true), timeout);
        if (has_kubelet_chains(out)) {
            co_return decided(Backend::nft,
                              "kubelet chains in " + std::string{save} + " -t mangle");
        }
    }
    // All tables: `-t mangle` would make the legacy kernel module create the table.
    std::size_t legacy_rules = 0;
    for (const std::string_view save : kLegacySaves) {
        const std::string out =
            co_await output_of(runner, save_argv(binary_dir, save, false), timeout);
        if (has_kubelet_chains(out)) {
            co_return decided(Backend::legacy, "kubelet chains in " + std::string{save});
        }
        legacy_rules += count_rules(out);
    }
    std::size_t nft_rules = 0;
    for (const std::string_view save : kNftSaves) {
        const std::string out =
            co_await output_of(runner, save_argv(binary_dir, save, false), timeout);
        nft_rules += count_rules(out);
    }
    const std::string counts =
        "legacy " + std::to_string(legacy_rules) + " rules, nft " + std::to_string(nft_rules);
    co_return decided(legacy_rules > nft_rules ? Backend::legacy : Backend::nft,
                      "no kubelet chains; " + counts);
}

std::optional<std::size_t> conntrack_deleted(const CommandResult& result) {
    if (result.status != CommandStatus::exited || (result.code != 0 && result.code != 1)) {
        return std::nullopt;
    }
    // conntrack prints the summary on stderr: "...: N flow entries have been deleted."
    const std::string_view marker = " flow entries have been deleted";
    for (const std::string* text : {&result.err, &result.out}) {
        const auto at = text->find(marker);
        if (at == std::string::npos) {
            continue;
        }
        std::size_t begin = at;
        while (begin > 0 && std::isdigit(static_cast<unsigned char>((*text)[begin - 1])) != 0) {
            --begin;
        }
        if (begin == at || at - begin > 18) {
            continue;
        }
        std::size_t count = 0;
        for (std::size_t i = begin; i < at; ++i) {
            count = count * 10 + static_cast<std::size_t>((*text)[i] - '0');
        }
        // Exit status 1 is success only for "0 flow entries" (nothing matched).
        if (result.code == 1 && count != 0) {
            return std::nullopt;
        }
        return count;
    }
    if (result.code == 0) {
        return 0;
    }
    return std::nullopt;
}

}  // namespace nmid::iptables
