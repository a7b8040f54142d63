// The test-control API's JSON: fault scripts in, stats out. Bodies come from tests over the
// network, so they are parsed without exceptions and validated strictly (a typo in a key
// must fail loudly rather than script a normal answer).

#include <cstdint>
#include <nlohmann/json.hpp>

#include "format.hpp"

namespace nmid::emulator {
namespace {

using nlohmann::json;

bool non_negative_int(const json& value, std::int64_t max, std::int64_t& out) {
    if (value.is_number_unsigned()) {
        auto v = value.get<std::uint64_t>();
        if (v > static_cast<std::uint64_t>(max)) {
            return false;
        }
        out = static_cast<std::int64_t>(v);
        return true;
    }
    if (value.is_number_integer()) {
        auto v = value.get<std::int64_t>();
        if (v < 0 || v > max) {
            return false;
        }
        out = v;
        return true;
    }
    return false;
}

Result<Fault> fault_from_json(const json& doc, std::string& error) {
    if (!doc.is_object()) {
        error = "a fault must be a JSON object";
        return Errc::parse_error;
    }
    Fault fault;
    bool retry_after_given = false;
    for (const auto& [key, value] : doc.items()) {
        std::int64_t n = 0;
        if (key == "status") {
            if (!non_negative_int(value, 599, n) || n < 100) {
                error = "\"status\" must be an integer from 100 to 599";
                return Errc::parse_error;
            }
            fault.status = static_cast<int>(n);
        } else if (key == "retry_after") {
            retry_after_given = true;
            if (value.is_null()) {
                continue;
            }
            if (!non_negative_int(value, 86'400, n)) {
                error = "\"retry_after\" must be null or whole seconds from 0 to 86400";
                return Errc::parse_error;
            }
            fault.retry_after = std::chrono::seconds{n};
        } else if (key == "latency_ms") {
            if (!non_negative_int(value, 3'600'000, n)) {
                error = "\"latency_ms\" must be an integer from 0 to 3600000";
                return Errc::parse_error;
            }
            fault.latency = Millis{n};
        } else if (key == "hang" || key == "reset") {
            if (!value.is_boolean()) {
                error = "\"" + key + "\" must be a boolean";
                return Errc::parse_error;
            }
            (key == "hang" ? fault.hang : fault.reset) = value.get<bool>();
        } else if (key == "body") {
            if (!value.is_string()) {
                error = "\"body\" must be a string";
                return Errc::parse_error;
            }
            fault.body = value.get<std::string>();
        } else {
            error = "unknown fault key \"" + key + "\"";
            return Errc::parse_error;
        }
    }
    if (fault.hang && fault.reset) {
        error = "a fault cannot both hang and reset";
        return Errc::parse_error;
    }
    if (fault.status == 429 && !retry_after_given) {
        fault.retry_after = std::chrono::seconds{1};
    }
    return fault;
}

}  // namespace

Result<Fault> fault_from_json_text(std::string_view text, std::string& error) {
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) {
        error = "not valid JSON";
        return Errc::parse_error;
    }
    return fault_from_json(doc, error);
}

namespace detail {

Result<FaultsUpdate> parse_faults_update(std::string_view body, std::string& error) {
    auto doc = json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        error = "the body must be a JSON object";
        return Errc::parse_error;
    }
    FaultsUpdate update;
    bool has_sequence = false;
    for (const auto& [key, value] : doc.items()) {
        if (key == "sequence") {
            if (!value.is_array()) {
                error = "\"sequence\" must be an array";
                return Errc::parse_error;
            }
            has_sequence = true;
            update.sequence.reserve(value.size());
            for (const auto& item : value) {
                auto fault = fault_from_json(item, error);
                if (!fault) {
                    error.insert(0, "sequence[" + std::to_string(update.sequence.size()) + "]: ");
                    return fault.error();
                }
                update.sequence.push_back(std::move(*fault));
            }
        } else if (key == "latency_ms") {
            std::int64_t n = 0;
            if (!non_negative_int(value, 3'600'000, n)) {
                error = "\"latency_ms\" must be an integer from 0 to 3600000";
                return Errc::parse_error;
            }
            update.latency = Millis{n};
        } else {
            error = "unknown key \"" + key + "\"";
            return Errc::parse_error;
        }
    }
    if (!has_sequence) {
        error = "\"sequence\" is required (use [] to clear)";
        return Errc::parse_error;
    }
    return update;
}

std::string stats_json(const EmulatorStats& stats) {
    json by_client = json::object();
    for (const auto& [client_id, count] : stats.token_requests_by_client_id) {
        by_client[client_id] = count;
    }
    json doc = {
        {"token_requests", stats.token_requests},
        {"tokens_issued", stats.tokens_issued},
        {"faults_injected", stats.faults_injected},
        {"token_requests_by_client_id", std::move(by_client)},
        {"instance_requests", stats.instance_requests},
        {"identity_info_requests", stats.identity_info_requests},
        {"rejected_requests", stats.rejected_requests},
        {"in_flight_token_requests", stats.in_flight_token_requests},
        {"max_concurrent_token_requests", stats.max_concurrent_token_requests},
        {"pending_faults", stats.pending_faults},
    };
    return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace detail
}  // namespace nmid::emulator
