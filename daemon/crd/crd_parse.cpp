#include "nmid/crd/crd_parse.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>
#include <vector>

#include "crd_json.hpp"

namespace nmid {
namespace {

using json = nlohmann::json;
using crd_detail::CrdKind;

// Limits for YAML -> JSON: aliases let a few hundred bytes expand into billions of nodes,
// and conversion recurses. Without aliases every node takes at least one byte of text and a
// separator, so a budget of two nodes per input byte never refuses a real file, and bounds
// alias expansion to work linear in the input. CRD objects are a few levels deep.
constexpr int kMaxDepth = 64;
constexpr std::size_t kNodesPerByte = 2;
constexpr std::size_t kMinNodeBudget = 1024;

// Accepts any JSON and keeps the first syntax error's message (nlohmann reports it only
// through an exception or a SAX callback; this is the non-throwing way).
class SyntaxErrorSax final : public json::json_sax_t {
public:
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t, const std::string&,
                     const nlohmann::detail::exception& ex) override {
        message = ex.what();
        // "[json.exception.parse_error.101] parse error at line 1, ..." -> "parse error at ..."
        if (const auto pos = message.find("] "); pos != std::string::npos) {
            message.erase(0, pos + 2);
        }
        return false;
    }

    std::string message;
};

std::string json_syntax_error(std::string_view text) {
    SyntaxErrorSax sax;
    json::sax_parse(text, &sax);
    return sax.message.empty() ? std::string{"invalid JSON"} : sax.message;
}

bool is_plain_int(std::string_view s, std::int64_t& out) {
    int base = 10;
    std::string_view digits = s;
    bool negative = false;
    if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) {
        negative = digits.front() == '-';
        digits.remove_prefix(1);
    }
    if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'o')) {
        if (negative || s.front() == '+') {
            return false;
        }
        base = digits[1] == 'x' ? 16 : 8;
        digits.remove_prefix(2);
    }
    if (digits.empty()) {
        return false;
    }
    std::uint64_t magnitude = 0;
    const auto [end, ec] =
        std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
    if (ec != std::errc{} || end != digits.data() + digits.size()) {
        return false;
    }
    constexpr auto kMax = static_cast<std::uint64_t>(INT64_MAX);
    if (magnitude > kMax + (negative ? 1 : 0)) {
        return false;
    }
    out =
        negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
    return true;
}

// YAML 1.2 core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_plain_float(std::string_view s, double& out) {
    std::size_t i = 0;
    auto digits = [&] {
        const std::size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            ++i;
        }
        return i - start;
    };
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
        ++i;
    }
    const std::size_t int_digits = digits();
    std::size_t frac_digits = 0;
    if (i < s.size() && s[i] == '.') {
        ++i;
        frac_digits = digits();
    }
    if (int_digits == 0 && frac_digits == 0) {
        return false;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
            ++i;
        }
        if (digits() == 0) {
            return false;
        }
    }
    if (i != s.size()) {
        return false;
    }
    const char* first = s.data() + (s.front() == '+' ? 1 : 0);
    const auto [end, ec] = std::from_chars(first, s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size();
}

// Plain (unquoted, untagged) scalars are typed as YAML 1.2's core schema says; quoted and
// `!!str` scalars stay strings, so `clientID: "1234"` is a string and `type: 0` an integer.
json scalar_to_json(const YAML::Node& node) {
    const std::string& text = node.Scalar();
    const std::string& tag = node.Tag();
    if (tag != "?") {
        return text;
    }
    if (text == "true" || text == "True" || text == "TRUE") {
        return true;
    }
    if (text == "false" || text == "False" || text == "FALSE") {
        return false;
    }
    if (std::int64_t i = 0; is_plain_int(text, i)) {
        return i;
    }
    if (double d = 0; is_plain_float(text, d)) {
        return d;
    }
    return text;
}

class YamlToJson {
public:
    explicit YamlToJson(std::size_t node_budget) : budget_(node_budget) {}

    bool convert(const YAML::Node& node, json& out, int depth = 0) {
        if (++nodes_ > budget_) {
            error = "too many YAML nodes (alias expansion?)";
            return false;
        }
        if (depth > kMaxDepth) {
            error = "YAML nested too deeply";
            return false;
        }
        switch (node.Type()) {
            case YAML::NodeType::Undefined:
            case YAML::NodeType::Null:
                out = nullptr;
                return true;
            case YAML::NodeType::Scalar:
                out = scalar_to_json(node);
                return true;
            case YAML::NodeType::Sequence:
                out = json::array();
                for (const auto& child : node) {
                    json converted;
                    if (!convert(child, converted, depth + 1)) {
                        return false;
                    }
                    out.push_back(std::move(converted));
                }
                return true;
            case YAML::NodeType::Map:
                out = json::object();
                for (const auto& entry : node) {
                    if (!entry.first.IsScalar()) {
                        error = "YAML mapping keys must be scalars";
                        return false;
                    }
                    json converted;
                    if (!convert(entry.second, converted, depth + 1)) {
                        return false;
                    }
                    out[entry.first.Scalar()] = std::move(converted);
                }
                return true;
        }
        out = nullptr;
        return true;
    }

    std::string error;

private:
    std::size_t budget_;
    std::size_t nodes_ = 0;
};

// Parses every YAML document. yaml-cpp reports errors by throwing: this is the boundary.
bool load_yaml(std::string_view text, std::vector<json>& documents, std::string& error) {
    try {
        const std::vector<YAML::Node> nodes = YAML::LoadAll(std::string{text});
        YamlToJson converter{kMinNodeBudget + kNodesPerByte * text.size()};
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            json doc;
            if (!converter.convert(nodes[i], doc)) {
                error = "document " + std::to_string(i + 1) + ": " + converter.error;
                return false;
            }
            documents.push_back(std::move(doc));
        }
        return true;
    } catch (const std::exception& e) {
        std::string message = e.what();
        if (message.starts_with("yaml-cpp: ")) {
            message.erase(0, 10);
        }
        error = "YAML " + message;
        return false;
    }
}

bool looks_like_json(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return false;
    }
    // A UTF-8 byte order mark is allowed before JSON.
    const std::string_view rest = text.substr(first);
    const std::string_view body = rest.starts_with("\xEF\xBB\xBF") ? rest.substr(3) : rest;
    return !body.empty() && (body.front() == '{' || body.front() == '[');
}

class Collector {
public:
    bool document(const json& doc, std::size_t number) {
        where_ = "document " + std::to_string(number);
        if (doc.is_null()) {
            return true;  // an empty YAML document ("---" twice)
        }
        if (doc.is_array()) {
            for (std::size_t i = 0; i < doc.size(); ++i) {
                if (!item(doc[i], "[" + std::to_string(i) + "]", {}, false)) {
                    return false;
                }
            }
            return true;
        }
        if (!doc.is_object()) {
            return fail("", "an object, a list of objects or a List expected");
        }
        const auto kind = doc.find("kind");
        const auto items = doc.find("items");
        if (kind != doc.end() && kind->is_string() && items != doc.end()) {
            const std::string& list_kind = kind->get_ref<const std::string&>();
            if (list_kind.ends_with("List")) {
                return list(*items, std::string_view{list_kind}.substr(0, list_kind.size() - 4));
            }
        }
        return item(doc, "", {}, false);
    }

    CrdSnapshot snapshot;
    std::size_t skipped = 0;
    std::string error;

private:
    // `kind` is "" for a generic `List`, else the element kind of a `<Kind>List` (whose items
    // come from the API server without apiVersion and kind).
    bool list(const json& items, std::string_view kind) {
        if (items.is_null()) {
            return true;
        }
        if (!items.is_array()) {
            return fail("", "items must be a list");
        }
        for (std::size_t i = 0; i < items.size(); ++i) {
            if (!item(items[i], "items[" + std::to_string(i) + "]", kind, !kind.empty())) {
                return false;
            }
        }
        return true;
    }

    bool item(const json& object, const std::string& at, std::string_view default_kind,
              bool typed_list) {
        if (!object.is_object()) {
            return fail(at, "an object expected");
        }
        std::string_view kind = default_kind;
        if (const auto k = object.find("kind"); k != object.end() && !k->is_null()) {
            if (!k->is_string()) {
                return fail(at, "kind must be a string");
            }
            kind = k->get_ref<const std::string&>();
        }
        if (kind.empty()) {
            return fail(at, "kind is required");
        }
        const auto crd_kind = crd_detail::crd_kind(kind);
        if (!crd_kind) {
            ++skipped;
            return true;
        }
        const auto api = object.find("apiVersion");
        if (api == object.end() || api->is_null()) {
            if (!typed_list) {
                return fail(at, std::string{kind} + ": apiVersion is required");
            }
        } else if (!api->is_string() ||
                   api->get_ref<const std::string&>() != crd_detail::kApiVersion) {
            return fail(at, std::string{kind} + ": apiVersion must be " +
                                std::string{crd_detail::kApiVersion} + ", not " + api->dump());
        }
        std::string object_error;
        if (!crd_detail::append_object(object, *crd_kind, snapshot, object_error)) {
            return fail(at, object_error);
        }
        return true;
    }

    bool fail(const std::string& at, std::string_view what) {
        error = where_;
        if (!at.empty()) {
            error += ": ";
            error += at;
        }
        error += ": ";
        error += what;
        return false;
    }

    std::string where_;
};

template <class T>
void normalize(std::vector<T>& items) {
    const auto key = [](const T& item) {
        return std::tie(item.meta.namespace_name, item.meta.name);
    };
    std::stable_sort(items.begin(), items.end(),
                     [&](const T& a, const T& b) { return key(a) < key(b); });
    // Stable order keeps equal keys in input order: the last of each run is the newest.
    std::vector<T> unique;
    unique.reserve(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i + 1 < items.size() && key(items[i]) == key(items[i + 1])) {
            continue;
        }
        unique.push_back(std::move(items[i]));
    }
    items = std::move(unique);
}

}  // namespace

void normalize_crds(CrdSnapshot& snapshot) {
    normalize(snapshot.identities);
    normalize(snapshot.bindings);
    normalize(snapshot.exceptions);
    normalize(snapshot.assigned);
}

Result<CrdSnapshot> parse_crds(std::string_view text) {
    return parse_crds(text, nullptr);
}

Result<CrdSnapshot> parse_crds(std::string_view text, std::string* error_detail,
                               std::size_t* skipped_objects) {
    auto failed = [&](std::string detail) -> Result<CrdSnapshot> {
        if (error_detail != nullptr) {
            *error_detail = std::move(detail);
        }
        return Errc::parse_error;
    };

    std::vector<json> documents;
    if (looks_like_json(text)) {
        json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (doc.is_discarded()) {
            // Flow-style YAML (`{kind: List, items: [...]}`) also starts with a brace.
            std::string yaml_error;
            if (!load_yaml(text, documents, yaml_error)) {
                return failed("JSON " + json_syntax_error(text));
            }
        } else {
            documents.push_back(std::move(doc));
        }
    } else {
        std::string yaml_error;
        if (!load_yaml(text, documents, yaml_error)) {
            return failed(std::move(yaml_error));
        }
    }

    Collector collector;
    for (std::size_t i = 0; i < documents.size(); ++i) {
        if (!collector.document(documents[i], i + 1)) {
            return failed(std::move(collector.error));
        }
    }
    normalize_crds(collector.snapshot);
    if (skipped_objects != nullptr) {
        *skipped_objects = collector.skipped;
    }
    return std::move(collector.snapshot);
}

}  // namespace nmid
