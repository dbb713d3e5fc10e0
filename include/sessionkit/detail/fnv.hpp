// sessionkit/detail/fnv.hpp — FNV-1a, 32 and 64 bit: the one hash every
// stable name uses (Redis partitions, list cursors, container names).
// Stable across processes, compilers and versions, so every instance (and
// any tool) computes the same value; not for anything an attacker chooses
// to collide.
#pragma once

#include <cstdint>
#include <string_view>

namespace sessionkit::detail {

inline constexpr std::uint32_t fnv1a_32_offset = 2166136261u;
inline constexpr std::uint64_t fnv1a_64_offset = 14695981039346656037ULL;

/// FNV-1a 32 of `s`, continuing from `h` (so that parts can be hashed in turn).
constexpr std::uint32_t fnv1a_32(std::string_view s, std::uint32_t h = fnv1a_32_offset) noexcept {
    for (unsigned char c : s) h = (h ^ c) * 16777619u;
    return h;
}

/// FNV-1a 64 of `s`.
constexpr std::uint64_t fnv1a_64(std::string_view s, std::uint64_t h = fnv1a_64_offset) noexcept {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    return h;
}

static_assert(fnv1a_32("") == fnv1a_32_offset && fnv1a_32("a") == 0xe40c292cu);
static_assert(fnv1a_64("a") == 0xaf63dc4c8601ec8cULL);

}  // namespace sessionkit::detail
