#include "nmid/crd/crd_parse.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>
#include <vector>

#include "crd_json.hpp"
#include "crd_yaml.hpp"

namespace nmid {
namespace {

using json = nlohmann::json;
using crd_detail::CrdKind;

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
                                std::string{crd_detail::kApiVersion} + ", not " +
                                api->dump(-1, ' ', false, json::error_handler_t::replace));
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
            if (!crd_detail::load_yaml(text, documents, yaml_error)) {
                return failed("JSON " + json_syntax_error(text));
            }
        } else {
            documents.push_back(std::move(doc));
        }
    } else {
        std::string yaml_error;
        if (!crd_detail::load_yaml(text, documents, yaml_error)) {
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
