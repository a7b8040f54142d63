#include "nmid/http/message.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <utility>

namespace nmid::http {
namespace {

constexpr std::size_t kPooledBuffers = 4;
constexpr std::size_t kMaxPooledCapacity = std::size_t{64} * 1024;

/// Response strings written on this thread, kept for the next responses.
struct BufferPool {
    std::array<std::string, kPooledBuffers> buffers;
    std::size_t size = 0;
};

BufferPool& buffer_pool() {
    thread_local BufferPool pool;
    return pool;
}

}  // namespace

std::string take_response_buffer(std::size_t capacity) {
    BufferPool& pool = buffer_pool();
    std::string s;
    if (pool.size > 0) {
        s.swap(pool.buffers[--pool.size]);
        s.clear();
    }
    s.reserve(capacity);
    return s;
}

void give_back_response_buffer(std::string&& s) noexcept {
    BufferPool& pool = buffer_pool();
    if (pool.size == kPooledBuffers || s.capacity() > kMaxPooledCapacity ||
        s.capacity() <= std::string{}.capacity()) {
        return;  // freed with `s`'s owner
    }
    pool.buffers[pool.size++].swap(s);
}

}  // namespace nmid::http
