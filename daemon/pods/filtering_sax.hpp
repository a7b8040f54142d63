#pragma once

// A filtering SAX handler for pod JSON: builds a tree of only the fields nmid reads.
// Private to the pods module.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace nmid::pods_detail {

using Json = nlohmann::json;

// Where a container sits in a pod list; decides which keys are worth keeping.
enum class Ctx : std::uint8_t {
    root,
    list_metadata,
    items,
    item,
    metadata,
    spec,
    status,
    container_statuses,  ///< status.containerStatuses (an array)
    container_status,    ///< one of its entries
    container_state,     ///< its `state`
    presence,            ///< a value read for its presence only: no key kept
    event,
    all
};

/// Whether `key` of a container in `ctx` is kept.
bool wanted(Ctx ctx, std::string_view key);
/// The context of the container under `key` of a container in `parent`.
Ctx child_ctx(Ctx parent, std::string_view key);

// A SAX handler that builds a tree of only the fields a pod list parse needs. A kubelet pod
// is 2-10 KB of JSON of which nmid reads ~300 bytes; not materialising the rest (containers,
// env, managedFields, conditions) halves the parse time (bench/pod_list_bench.cpp). Iterative:
// nesting depth costs heap, never stack.
class FilteringSax final : public nlohmann::json_sax<Json> {
public:
    explicit FilteringSax(Ctx root_ctx = Ctx::root) : root_ctx_(root_ctx) {}

    bool null() override { return put(Json(nullptr)); }
    bool boolean(bool v) override { return put(Json(v)); }
    bool number_integer(number_integer_t v) override { return put(Json(v)); }
    bool number_unsigned(number_unsigned_t v) override { return put(Json(v)); }
    bool number_float(number_float_t v, const string_t& /*text*/) override { return put(Json(v)); }
    bool string(string_t& v) override { return put(Json(std::move(v))); }
    bool binary(binary_t& /*v*/) override { return put(Json(nullptr)); }  // not in JSON text
    bool start_object(std::size_t /*elements*/) override { return open(Json::value_t::object); }
    bool end_object() override { return close(); }
    bool start_array(std::size_t /*elements*/) override { return open(Json::value_t::array); }
    bool end_array() override { return close(); }

    bool key(string_t& k) override {
        if (skip_depth_ > 0) {
            return true;
        }
        if (wanted(stack_.back().ctx, k)) {
            key_ = std::move(k);
        } else {
            skip_value_ = true;
        }
        return true;
    }

    bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                     const nlohmann::detail::exception& ex) override {
        error_ = ex.what();
        return false;
    }

    [[nodiscard]] Json& root() { return root_; }
    [[nodiscard]] const std::string& error() const { return error_; }

private:
    struct Frame {
        Json* node;
        Ctx ctx;
    };

    Json* insert(Json v) {
        if (stack_.empty()) {
            root_ = std::move(v);
            return &root_;
        }
        Json& parent = *stack_.back().node;
        if (parent.is_array()) {
            return &parent.emplace_back(std::move(v));
        }
        Json& slot = parent[key_];
        slot = std::move(v);
        return &slot;
    }

    bool put(Json v) {
        if (skip_depth_ > 0) {
            return true;
        }
        if (skip_value_) {
            skip_value_ = false;
            return true;
        }
        insert(std::move(v));
        return true;
    }

    bool open(Json::value_t type) {
        if (skip_depth_ > 0) {
            ++skip_depth_;
            return true;
        }
        if (skip_value_) {
            skip_value_ = false;
            skip_depth_ = 1;
            return true;
        }
        Ctx ctx = root_ctx_;
        if (!stack_.empty()) {
            const Frame& parent = stack_.back();
            ctx = child_ctx(parent.ctx, parent.node->is_array() ? std::string_view{} : key_);
        }
        Json* node = insert(Json(type));
        stack_.push_back({node, ctx});
        return true;
    }

    bool close() {
        if (skip_depth_ > 0) {
            --skip_depth_;
        } else {
            stack_.pop_back();
        }
        return true;
    }

    Ctx root_ctx_;
    Json root_;
    std::vector<Frame> stack_;
    std::string key_;
    std::size_t skip_depth_ = 0;  ///< > 0: inside a skipped container
    bool skip_value_ = false;     ///< the value after the current key is skipped
    std::string error_;
};

/// "object", "string", ... for error texts.
std::string_view type_name(const Json& j);

// One-line error text: control characters from the input never reach a log line.
std::string one_line(std::string s);

}  // namespace nmid::pods_detail
