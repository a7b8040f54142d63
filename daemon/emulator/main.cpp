// imds-emulator: serves the IMDS token contract on a local port (see --help).

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "nmid/emulator/cli.hpp"
#include "nmid/emulator/emulator.hpp"
#include "nmid/http/server.hpp"

namespace asio = boost::asio;

namespace {

constexpr std::chrono::seconds kDrainTimeout{5};

int run(const nmid::emulator::CommandLine& cli) {
    asio::io_context ioc{1};
    nmid::SystemClock clock;
    nmid::emulator::EmulatorHandler handler{clock, cli.settings};

    nmid::HttpServerSettings http_settings;
    http_settings.address = cli.host;
    http_settings.port = cli.port;
    http_settings.body_limit = std::size_t{1024} * 1024;  // fault scripts can be long
    http_settings.header_limit = std::size_t{16} * 1024;
    http_settings.reuse_port = false;  // a second emulator on the same port is a mistake
    nmid::http::HttpServer server{ioc.get_executor(), handler, http_settings};
    if (auto listening = server.listen(); !listening) {
        std::fprintf(stderr, "imds-emulator: cannot listen on %s:%u: %s\n", cli.host.c_str(),
                     static_cast<unsigned>(cli.port), listening.error().message().c_str());
        return 1;
    }
    bool v6 = cli.host.find(':') != std::string::npos;
    std::printf("listening on %s%s%s:%u\n", v6 ? "[" : "", cli.host.c_str(), v6 ? "]" : "",
                static_cast<unsigned>(server.port()));
    std::fflush(stdout);

    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    int exit_code = 0;
    bool stopping = false;
    auto shut_down = [&] {
        if (stopping) {
            return;
        }
        stopping = true;
        // Hanging requests must not hold the drain: wake them first.
        handler.stop();
        server.stop();
        // Once drained, nothing but the signal wait is left; cancelling it ends ioc.run().
        asio::co_spawn(ioc, server.drain(clock.steady_now() + kDrainTimeout),
                       [&](const std::exception_ptr&) { signals.cancel(); });
    };

    asio::co_spawn(ioc, server.run(), [&](const std::exception_ptr& error) {
        if (error) {
            try {
                std::rethrow_exception(error);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "imds-emulator: listener failed: %s\n", e.what());
            }
            exit_code = 1;
        }
        shut_down();
    });

    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) {
            return;
        }
        shut_down();
        // A second signal means "now": skip the drain.
        signals.async_wait([](const boost::system::error_code& again, int) {
            if (!again) {
                std::_Exit(1);
            }
        });
    });
    ioc.run();
    return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    std::string error;
    auto cli = nmid::emulator::parse_command_line(args, error);
    if (!cli) {
        std::fprintf(stderr, "imds-emulator: %s\n", error.c_str());
        return 2;
    }
    if (cli->help) {
        auto text = nmid::emulator::usage();
        std::fwrite(text.data(), 1, text.size(), stdout);
        return 0;
    }
    try {
        // stdout carries only the "listening on" line that tests parse; the listener's
        // warnings and errors go to stderr.
        spdlog::set_default_logger(spdlog::stderr_logger_mt("imds-emulator"));
        spdlog::set_level(spdlog::level::warn);
        return run(*cli);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "imds-emulator: %s\n", e.what());
        return 1;
    }
}
