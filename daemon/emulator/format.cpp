#include "format.hpp"

#include <array>
#include <charconv>
#include <nlohmann/json.hpp>

#include "nmid/core/ascii.hpp"
#include "nmid/core/hex.hpp"
#include "nmid/core/json.hpp"

namespace nmid::emulator::detail {
namespace {

constexpr std::string_view kSubscriptionId = "e1e1e1e1-1111-4000-8000-000000000001";

std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31U);
}

void append_int(std::string& out, std::int64_t value) {
    std::array<char, 24> buffer{};
    auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
    out.append(buffer.data(), end);
}

void append_string_field(std::string& out, std::string_view name, std::string_view value) {
    out += '"';
    out += name;
    out += "\":";
    append_json_string(out, value);
}

void append_int_field(std::string& out, std::string_view name, std::int64_t value) {
    out += '"';
    out += name;
    out += "\":";
    append_int(out, value);
}

/// Every value of an IMDS token body is a string, numbers included.
void append_int_string_field(std::string& out, std::string_view name, std::int64_t value) {
    out += '"';
    out += name;
    out += "\":\"";
    append_int(out, value);
    out += '"';
}

}  // namespace

std::string url_decode(std::string_view text) {
    return percent_decode(text, /*plus_is_space=*/true);
}

TokenQuery parse_query(std::string_view query) {
    TokenQuery result;
    while (!query.empty()) {
        auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        auto eq = pair.find('=');
        auto key = pair.substr(0, eq);
        auto raw = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        std::optional<std::string>* slot = nullptr;
        if (key == "api-version") {
            slot = &result.api_version;
        } else if (key == "resource") {
            slot = &result.resource;
        } else if (key == "client_id") {
            slot = &result.client_id;
        } else if (key == "object_id") {
            slot = &result.object_id;
        } else if (key == "msi_res_id") {
            slot = &result.msi_res_id;
        } else if (key == "mi_res_id") {
            slot = &result.mi_res_id;
        } else if (key == "format") {
            slot = &result.format;
        }
        // Unknown parameters (bypass_cache, ...) are ignored, as IMDS does.
        if (slot != nullptr && !*slot && !raw.empty()) {
            *slot = url_decode(raw);
        }
    }
    return result;
}

void append_json_string(std::string& out, std::string_view text) {
    out += '"';
    append_json_escaped(out, text);
    out += '"';
}

void append_base64url(std::string& out, std::string_view bytes) {
    static constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        std::uint32_t v = (static_cast<std::uint8_t>(bytes[i]) << 16U) |
                          (static_cast<std::uint8_t>(bytes[i + 1]) << 8U) |
                          static_cast<std::uint8_t>(bytes[i + 2]);
        out += kAlphabet[(v >> 18U) & 63U];
        out += kAlphabet[(v >> 12U) & 63U];
        out += kAlphabet[(v >> 6U) & 63U];
        out += kAlphabet[v & 63U];
    }
    std::size_t rest = bytes.size() - i;
    if (rest == 1) {
        std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16U;
        out += kAlphabet[(v >> 18U) & 63U];
        out += kAlphabet[(v >> 12U) & 63U];
    } else if (rest == 2) {
        std::uint32_t v = (static_cast<std::uint8_t>(bytes[i]) << 16U) |
                          (static_cast<std::uint8_t>(bytes[i + 1]) << 8U);
        out += kAlphabet[(v >> 18U) & 63U];
        out += kAlphabet[(v >> 12U) & 63U];
        out += kAlphabet[(v >> 6U) & 63U];
    }
}

std::string derive_object_id(std::string_view client_id) {
    // FNV-1a, then splitmix64: stable across runs and platforms, no crypto needed for a fake.
    std::uint64_t state = 0xcbf29ce484222325ULL;
    for (char c : client_id) {
        state ^= static_cast<std::uint8_t>(ascii_lower(c));
        state *= 0x100000001b3ULL;
    }
    std::uint64_t hi = splitmix64(state);
    std::uint64_t lo = splitmix64(state);
    hi = (hi & ~0xf000ULL) | 0x4000ULL;              // version 4
    lo = (lo & ~(0xcULL << 60U)) | (0x8ULL << 60U);  // RFC 4122 variant
    static constexpr std::string_view kHex = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    auto put = [&](std::uint64_t v, int nibbles) {
        for (int n = nibbles - 1; n >= 0; --n) {
            out += kHex[(v >> (static_cast<unsigned>(n) * 4U)) & 0xfU];
        }
    };
    put(hi >> 32U, 8);
    out += '-';
    put((hi >> 16U) & 0xffffU, 4);
    out += '-';
    put(hi & 0xffffU, 4);
    out += '-';
    put(lo >> 48U, 4);
    out += '-';
    put(lo & 0xffffffffffffULL, 12);
    return out;
}

std::string make_access_token(const TokenInput& input) {
    static constexpr std::string_view kHeader = R"({"typ":"JWT","alg":"RS256","kid":"emulator"})";
    static const std::string issuer = "https://sts.windows.net/" + std::string{kTenantId} + "/";

    std::string claims;
    claims.reserve(512 + input.resource.size() + input.identity.resource_id.size());
    claims += '{';
    append_string_field(claims, "aud", input.resource);
    claims += ',';
    append_string_field(claims, "iss", issuer);
    claims += ',';
    append_int_field(claims, "iat", input.now_unix);
    claims += ',';
    append_int_field(claims, "nbf", input.now_unix);
    claims += ',';
    append_int_field(claims, "exp", input.now_unix + input.lifetime.count());
    claims += ',';
    append_string_field(claims, "appid", input.identity.client_id);
    claims += R"(,"appidacr":"2",)";
    append_string_field(claims, "idp", issuer);
    claims += R"(,"idtyp":"app",)";
    append_string_field(claims, "oid", input.identity.object_id);
    claims += ',';
    append_string_field(claims, "sub", input.identity.object_id);
    claims += ',';
    append_string_field(claims, "tid", kTenantId);
    claims += R"(,"ver":"1.0",)";
    if (!input.identity.resource_id.empty()) {
        append_string_field(claims, "xms_mirid", input.identity.resource_id);
        claims += ',';
    }
    claims += "\"jti\":\"emulator-";
    append_int(claims, static_cast<std::int64_t>(input.jti));
    claims += "\"}";

    std::array<char, 32> signature{};
    std::uint64_t state = input.jti ^ 0x5eed5eed5eed5eedULL;
    for (std::size_t i = 0; i < signature.size(); i += 8) {
        std::uint64_t v = splitmix64(state);
        for (std::size_t b = 0; b < 8; ++b) {
            signature[i + b] = static_cast<char>((v >> (b * 8U)) & 0xffU);
        }
    }

    std::string token;
    token.reserve(kHeader.size() * 4 / 3 + claims.size() * 4 / 3 + 64);
    append_base64url(token, kHeader);
    token += '.';
    append_base64url(token, claims);
    token += '.';
    append_base64url(token, std::string_view{signature.data(), signature.size()});
    return token;
}

std::string make_token_body(const TokenInput& input) {
    std::string token = make_access_token(input);
    std::string body;
    body.reserve(token.size() + input.resource.size() + 256);
    body += '{';
    append_string_field(body, "access_token", token);
    body += ',';
    append_string_field(body, "client_id", input.identity.client_id);
    body += ',';
    append_int_string_field(body, "expires_in", input.lifetime.count());
    body += ',';
    append_int_string_field(body, "expires_on", input.now_unix + input.lifetime.count());
    body += ',';
    append_int_string_field(body, "ext_expires_in", input.lifetime.count());
    body += ',';
    append_int_string_field(body, "not_before", input.now_unix);
    body += ',';
    append_string_field(body, "resource", input.resource);
    body += R"(,"token_type":"Bearer"})";
    return body;
}

std::pair<std::string_view, std::string_view> fault_error(int status) {
    switch (status) {
        case 400:
            return {"invalid_request", "Bad request"};
        case 403:
            return {"forbidden", "Forbidden"};
        case 404:
            return {"not_found", "Instance Metadata Service is updating"};
        case 410:
            return {"gone", "Instance Metadata Service is updating"};
        case 429:
            return {"too_many_requests", "Too many requests"};
        case 500:
            return {"unknown", "Failed to retrieve token from the Active directory"};
        case 503:
            return {"service_unavailable", "Service unavailable"};
        default:
            return {"unknown", "Emulated failure"};
    }
}

std::string sample_instance_json() {
    std::string sub{kSubscriptionId};
    std::string group = "MC_emulator-rg_emulator-aks_westeurope";
    std::string scale_set = "aks-nodepool1-12345678-vmss";
    nlohmann::json doc = {
        {"compute",
         {
             {"azEnvironment", "AzurePublicCloud"},
             {"location", "westeurope"},
             {"name", scale_set + "_0"},
             {"offer", ""},
             {"osType", "Linux"},
             {"platformFaultDomain", "0"},
             {"platformUpdateDomain", "0"},
             {"provider", "Microsoft.Compute"},
             {"resourceGroupName", group},
             {"resourceId", "/subscriptions/" + sub + "/resourceGroups/" + group +
                                "/providers/Microsoft.Compute/virtualMachineScaleSets/" +
                                scale_set + "/virtualMachines/0"},
             {"sku", ""},
             {"subscriptionId", sub},
             {"tags", "aks-managed-poolName:nodepool1"},
             {"tagsList", {{{"name", "aks-managed-poolName"}, {"value", "nodepool1"}}}},
             {"version", ""},
             {"vmId", "0c6b4a5e-7f3d-4c1e-9a2b-e1e1e1e1e1e1"},
             {"vmScaleSetName", scale_set},
             {"vmSize", "Standard_D4s_v3"},
             {"zone", ""},
         }},
        {"network",
         {{"interface",
           {{
               {"ipv4",
                {{"ipAddress", {{{"privateIpAddress", "10.224.0.4"}, {"publicIpAddress", ""}}}},
                 {"subnet", {{{"address", "10.224.0.0"}, {"prefix", "16"}}}}}},
               {"ipv6", {{"ipAddress", nlohmann::json::array()}}},
               {"macAddress", "000D3A2B4C5D"},
           }}}}},
    };
    return doc.dump();
}

}  // namespace nmid::emulator::detail
