#include "crd_yaml.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

namespace nmid::crd_detail {
namespace {

using json = nlohmann::json;

// Limits for YAML -> JSON: aliases let a few hundred bytes expand into billions of nodes,
// and conversion recurses. Without aliases every node takes at least one byte of text and a
// separator, so a budget of two nodes per input byte never refuses a real file, and bounds
// alias expansion to work linear in the input. CRD objects are a few levels deep.
constexpr int kMaxDepth = 64;
constexpr std::size_t kNodesPerByte = 2;
constexpr std::size_t kMinNodeBudget = 1024;

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

/// A line that starts a document (`---` then the end of the line or a blank) or ends one
/// (`...` likewise).
bool is_document_marker(std::string_view line) noexcept {
    for (std::string_view marker : {std::string_view{"---"}, std::string_view{"..."}}) {
        if (line.starts_with(marker) && (line.size() == 3 || line[3] == ' ' || line[3] == '\t' ||
                                         line[3] == '\r' || line[3] == '\n')) {
            return true;
        }
    }
    return false;
}

/// True when `chunk` holds nothing but blanks and comments.
bool is_blank_yaml(std::string_view chunk) noexcept {
    bool comment = false;
    for (const char c : chunk) {
        if (c == '\n') {
            comment = false;
        } else if (c == '#') {
            comment = true;
        } else if (!comment && c != ' ' && c != '\t' && c != '\r') {
            return false;
        }
    }
    return true;
}

/// The documents of a multi-document stream, one YAML::Load each. yaml-cpp 0.7's LoadAll can
/// loop forever, growing memory, on some malformed streams (found by the crd_parse fuzz
/// target: the two bytes ",\n"); Load of one document does not. A `---` line stays at the start
/// of its document (it may carry content or a tag); a `...` line is dropped; text before the
/// first marker that holds no node is not a document (as LoadAll counts them).
std::vector<YAML::Node> load_documents(std::string_view text) {
    std::vector<YAML::Node> nodes;
    std::size_t start = 0;
    const auto flush = [&](std::size_t end) {
        const std::string_view chunk = text.substr(start, end - start);
        if (!(start == 0 && is_blank_yaml(chunk)) && !chunk.empty()) {
            nodes.push_back(YAML::Load(std::string{chunk}));
        }
    };
    for (std::size_t pos = 0; pos < text.size();) {
        const std::size_t eol = text.find('\n', pos);
        const std::size_t next = eol == std::string_view::npos ? text.size() : eol + 1;
        const std::string_view line = text.substr(pos, next - pos);
        if (is_document_marker(line)) {
            flush(pos);
            start = line.starts_with("...") ? next : pos;
        }
        pos = next;
    }
    flush(text.size());
    return nodes;
}

/// yaml-cpp's message with control characters blanked: it quotes the input, and a detail
/// becomes one log line.
std::string one_line(std::string message) {
    for (char& c : message) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            c = ' ';
        }
    }
    return message;
}

}  // namespace

// yaml-cpp reports errors by throwing: this is the boundary.
bool load_yaml(std::string_view text, std::vector<json>& documents, std::string& error) {
    try {
        const std::vector<YAML::Node> nodes = load_documents(text);
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
        error = "YAML " + one_line(std::move(message));
        return false;
    }
}

}  // namespace nmid::crd_detail
