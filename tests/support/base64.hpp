#pragma once

// Base64 for the fakes and tests, written independently of nmid's own coding so that a fake
// checks nmid's output rather than mirroring it.

#include <optional>
#include <string>
#include <string_view>

namespace nmid::test {

/// RFC 4648 base64 (`url` false) or base64url (`url` true) of `bytes`, '='-padded when `pad`.
[[nodiscard]] std::string base64_encode(std::string_view bytes, bool url = false,
                                        bool pad = true);

/// base64url without padding (a JWT segment); nullopt on any other byte.
[[nodiscard]] std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace nmid::test
