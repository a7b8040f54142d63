#pragma once

// Helpers shared by the config tests: parse with an injected environment, never the real one.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nmid/config/config.hpp"

namespace nmid::config::test {

using Env = std::map<std::string, std::string, std::less<>>;

inline EnvLookup fake_env(Env env) {
    return [env = std::move(env)](std::string_view name) -> std::optional<std::string> {
        const auto it = env.find(name);
        if (it == env.end()) {
            return std::nullopt;
        }
        return it->second;
    };
}

inline ParseResult parse_args(const std::vector<std::string>& args, Env env = {}) {
    const std::vector<std::string_view> views(args.begin(), args.end());
    return parse(views, fake_env(std::move(env)));
}

inline std::string joined(const std::vector<std::string>& args) {
    std::string out;
    for (const auto& arg : args) {
        out += (out.empty() ? "" : " ") + arg;
    }
    return out;
}

}  // namespace nmid::config::test
