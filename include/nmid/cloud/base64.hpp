#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace nmid::cloud {

/// RFC 4648 section 4 (standard alphabet, `=` padding), as Kubernetes Secret `data` values and
/// JWT `x5c` certificates use it. Pure, never throws.
[[nodiscard]] std::string base64_encode(std::string_view bytes);

/// RFC 4648 section 5 (URL-safe alphabet). `pad`: keep the `=` padding (adal's `x5t` and `jti`
/// keep it; JWT segments drop it).
[[nodiscard]] std::string base64url_encode(std::string_view bytes, bool pad);

/// Decodes standard base64 with padding (Kubernetes `data`). nullopt on a character outside the
/// alphabet, missing or misplaced padding, or non-zero trailing bits. Pure, never throws.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

}  // namespace nmid::cloud
