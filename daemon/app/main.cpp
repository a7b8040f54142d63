// nmid: node-level metadata-token proxy. main() only parses the configuration and runs
// the Daemon; everything else lives in the modules.
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <span>
#include <string_view>
#include <vector>

#include "nmid/app/daemon.hpp"
#include "nmid/app/explain_cli.hpp"
#include "nmid/config/config.hpp"
#include "nmid/logging/logging.hpp"

int main(int argc, char** argv) {
    // A closed stdout (log collector gone) must not kill the daemon; writes then just fail.
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::string_view> args(argv + 1, argv + argc);
    // `nmid explain ...`: a client of the running daemon, with arguments of its own.
    if (!args.empty() && args.front() == "explain") {
        return nmid::app::explain_main(std::span{args}.subspan(1));
    }
    auto parsed = nmid::config::parse(args, nmid::config::process_env());
    switch (parsed.action) {
        case nmid::config::Action::help:
            std::fputs(nmid::config::help_text().c_str(), stdout);
            return 0;
        case nmid::config::Action::version:
            std::puts(nmid::config::version_text().c_str());
            return 0;
        case nmid::config::Action::error:
            std::fprintf(stderr, "nmid: %s (see nmid --help)\n", parsed.error.c_str());
            return 2;
        case nmid::config::Action::run:
        case nmid::config::Action::cleanup:
            break;
    }
    nmid::logging::setup(parsed.config.log);
    for (const auto& warning : parsed.warnings) {
        spdlog::warn("{}", warning);
    }
    if (parsed.action == nmid::config::Action::cleanup) {
        const int code = nmid::app::Daemon::cleanup(parsed.config);
        nmid::logging::flush();
        return code;
    }
    nmid::app::Daemon daemon{std::move(parsed.config)};
    if (auto error = daemon.start(); !error.empty()) {
        nmid::logging::flush();
        std::fprintf(stderr, "nmid: %s\n", error.c_str());
        return 1;
    }
    return daemon.run();
}
