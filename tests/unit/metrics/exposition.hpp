#pragma once

// The metrics tests' Prometheus text parser: every sample with its labels, checked against the
// exposition format's rules (its errors are test failures).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "nmid/metrics/metrics.hpp"

namespace nmid::metrics::test {

using Labels = std::map<std::string, std::string>;

struct Sample {
    std::string name;
    Labels labels;
    double value = 0;
};

struct Exposition {
    std::map<std::string, std::string> types;  // family -> counter|gauge|histogram
    std::map<std::string, std::string> helps;
    std::vector<Sample> samples;
    std::vector<std::string> errors;

    [[nodiscard]] std::optional<double> value(const std::string& name, const Labels& labels) const {
        for (const auto& sample : samples) {
            if (sample.name == name && sample.labels == labels) {
                return sample.value;
            }
        }
        return std::nullopt;
    }
    [[nodiscard]] std::vector<Sample> named(const std::string& name) const {
        std::vector<Sample> out;
        for (const auto& sample : samples) {
            if (sample.name == name) {
                out.push_back(sample);
            }
        }
        return out;
    }
};

inline bool is_name_char(char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

inline std::string family_of(const std::string& sample,
                             const std::map<std::string, std::string>& types) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s{suffix};
        if (sample.size() > s.size() && sample.ends_with(s)) {
            std::string base = sample.substr(0, sample.size() - s.size());
            if (auto it = types.find(base); it != types.end() && it->second == "histogram") {
                return base;
            }
        }
    }
    return sample;
}

// A strict reader of text format 0.0.4: every line is a HELP, a TYPE or a sample of a family
// whose HELP and TYPE came before it.
inline Exposition parse(const std::string& text) {
    Exposition out;
    std::istringstream in{text};
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        const auto fail = [&](const std::string& why) {
            std::string message = "line " + std::to_string(number) + ": ";
            message.append(why).append(": ").append(line);
            out.errors.push_back(std::move(message));
        };
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
            const std::string rest = line.substr(7);
            const auto space = rest.find(' ');
            if (space == std::string::npos || space == 0) {
                fail("no metric name");
                continue;
            }
            const std::string name = rest.substr(0, space);
            if (line[2] == 'H') {
                out.helps[name] = rest.substr(space + 1);
            } else {
                const std::string type = rest.substr(space + 1);
                if (type != "counter" && type != "gauge" && type != "histogram") {
                    fail("bad type");
                }
                if (!out.helps.contains(name)) {
                    fail("TYPE before HELP");
                }
                out.types[name] = type;
            }
            continue;
        }
        Sample sample;
        std::size_t i = 0;
        while (i < line.size() && is_name_char(line[i], i == 0)) {
            ++i;
        }
        if (i == 0) {
            fail("no sample name");
            continue;
        }
        sample.name = line.substr(0, i);
        if (i < line.size() && line[i] == '{') {
            ++i;
            bool ok = true;
            while (ok && i < line.size() && line[i] != '}') {
                const std::size_t start = i;
                while (i < line.size() && is_name_char(line[i], i == start)) {
                    ++i;
                }
                if (i == start || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
                    ok = false;
                    break;
                }
                const std::string key = line.substr(start, i - start);
                i += 2;
                std::string value;
                while (i < line.size() && line[i] != '"') {
                    if (line[i] == '\\') {
                        if (i + 1 >= line.size()) {
                            ok = false;
                            break;
                        }
                        const char e = line[i + 1];
                        if (e == 'n') {
                            value.push_back('\n');
                        } else if (e == '\\' || e == '"') {
                            value.push_back(e);
                        } else {
                            ok = false;
                        }
                        i += 2;
                    } else {
                        value.push_back(line[i++]);
                    }
                }
                if (i >= line.size()) {
                    ok = false;
                    break;
                }
                ++i;  // closing quote
                if (!sample.labels.emplace(key, value).second) {
                    ok = false;
                }
                if (i < line.size() && line[i] == ',') {
                    ++i;
                }
            }
            if (!ok || i >= line.size()) {
                fail("bad labels");
                continue;
            }
            ++i;  // '}'
        }
        if (i >= line.size() || line[i] != ' ') {
            fail("no value");
            continue;
        }
        const std::string value = line.substr(i + 1);
        std::size_t used = 0;
        try {
            sample.value =
                value == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(value, &used);
        } catch (const std::exception&) {
            fail("bad value");
            continue;
        }
        if (value != "+Inf" && used != value.size()) {
            fail("trailing bytes after value");
            continue;
        }
        const std::string family = family_of(sample.name, out.types);
        if (!out.types.contains(family)) {
            fail("sample without TYPE");
        }
        out.samples.push_back(std::move(sample));
    }
    return out;
}

inline std::set<std::string> keys(const Labels& labels) {
    std::set<std::string> out;
    for (const auto& [key, value] : labels) {
        out.insert(key);
    }
    return out;
}

inline Exposition render(const Metrics& metrics) {
    const std::string text = metrics.render();
    Exposition exposition = parse(text);
    EXPECT_TRUE(exposition.errors.empty()) << ::testing::PrintToString(exposition.errors) << "\n"
                                           << text;
    return exposition;
}

}  // namespace nmid::metrics::test
