#pragma once

#include <string>
#include <string_view>

namespace nmid::http {

/// One canonical form of a request target, computed once before routing so that no spelling
/// of a path can reach a route (or IMDS) that another spelling of it would not. Steps, in
/// order:
///
/// 1. `#` and everything after it are dropped (a fragment is never part of a request).
/// 2. An absolute-form target (`scheme://authority/p?q`) is reduced to its path and query;
///    an absent path is "".
/// 3. The query is what follows the first `?`; it is kept raw (not part of the path).
/// 4. The path is percent-decoded once. Malformed (never routed, never forwarded): an invalid
///    escape (`%zz`, a truncated `%2`), a control byte (0x00-0x1f, 0x7f) raw or decoded, or a
///    decoded path that still holds a valid escape (double encoding such as `%255c`).
/// 5. `\` is a separator, as `/` (IMDS reads it so: CVE-2022-23551).
/// 6. In every segment, `;` and what follows it (path parameters) are removed.
/// 7. Empty, `.` and `..` segments are resolved, rooted (`..` never climbs above `/`); the
///    result starts with `/` and has no trailing `/` (except the root itself).
///
/// Case is kept (forwarded paths such as `/metadata/instance/compute/vmId` are case-sensitive
/// upstream); matching folds ASCII case. The canonical path holds no `\`, no `;`, no empty or
/// dot segment, no control byte and no valid escape; encode_path() spells it for the wire.
///
/// Pure: no I/O, no clock, no logging. The usual target, already canonical, is checked eight
/// bytes at a time and neither copied nor allocated; any other is rewritten into a string the
/// object owns. The object keeps views into `target`, which must outlive it.
class CanonicalTarget {
public:
    CanonicalTarget() = default;
    explicit CanonicalTarget(std::string_view target);

    /// Step 4 failed: answered 400, never routed or forwarded. path() is "" then.
    [[nodiscard]] bool malformed() const noexcept { return malformed_; }
    /// The canonical path (see the class comment).
    [[nodiscard]] std::string_view path() const noexcept;
    /// The raw path byte for byte equals path() and the target had no fragment: the
    /// request's own spelling is the canonical one, so any reader of it reads what nmid read.
    [[nodiscard]] bool exact() const noexcept { return exact_; }
    /// The path as received (absolute-form: its path part), before `?` and `#`.
    [[nodiscard]] std::string_view raw_path() const noexcept { return raw_path_; }
    /// The raw query after the first `?` (before any `#`); "" when absent.
    [[nodiscard]] std::string_view query() const noexcept { return query_; }
    /// The target had a `#`.
    [[nodiscard]] bool has_fragment() const noexcept { return fragment_; }

private:
    std::string_view raw_path_;
    std::string_view query_;
    bool malformed_ = false;
    bool exact_ = false;
    bool fragment_ = false;
    bool in_raw_ = true;     ///< path() is raw_path_ itself (already canonical)
    std::string canonical_;  ///< the canonical path when it differs from raw_path_
};

/// `target`'s canonical form (the constructor, as a function).
[[nodiscard]] inline CanonicalTarget canonicalize(std::string_view target) {
    return CanonicalTarget{target};
}

/// Appends `path` (a canonical path) to `out` with every byte that is not unreserved, a
/// sub-delimiter other than `;`, `:`, `@` or `/` percent-encoded (`%` included), so that
/// canonicalising the result gives `path` back, marked exact when nothing needed encoding.
void append_encoded_path(std::string& out, std::string_view path);

}  // namespace nmid::http
