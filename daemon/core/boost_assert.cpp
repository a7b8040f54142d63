// BOOST_ASSERT's handler in the sanitizer builds (CMakeLists.txt defines
// BOOST_ENABLE_ASSERT_HANDLER only there; optimised builds keep NDEBUG's BOOST_ASSERT, which
// checks nothing). Every failed Boost assertion aborts, as the default handler does, except
// one that is known to be false: Beast 1.81's `BOOST_ASSERT(n >= 5)` in
// basic_parser::parse_chunk_header, which a chunked body fed in small reads (`0\r\n`, then
// `\r`, then `\n`) reaches with 3 or 4 bytes. The code after it handles that case (it
// answers need_more); Beast removed the assertion in 1.86 (boostorg/beast pull request 2861).
// Found by the request_head fuzz target.
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace boost {

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
    const std::string_view where{file};
    if (std::string_view{expr} == "n >= 5" && where.ends_with("beast/http/impl/basic_parser.ipp")) {
        return;
    }
    std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed.\n", file, line, function, expr);
    std::abort();
}

void assertion_failed_msg(char const* expr, char const* msg, char const* function,
                          char const* file, long line) {
    std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed: %s\n", file, line, function, expr,
                 msg);
    std::abort();
}

}  // namespace boost
