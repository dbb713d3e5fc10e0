// sessionkit/id.hpp — session id validation and generation.
//
// Ids travel in URLs, Redis keys, NATS subjects and Docker labels, so the
// alphabet is the intersection that needs no escaping anywhere:
// 1 to 128 bytes of [A-Za-z0-9._:-], other than "." and "..". Generated ids carry 128 bits from the
// operating system's CSPRNG, written as 26 characters of lower-case base32.
#pragma once

#include <sessionkit/detail/text.hpp>
#include <sessionkit/error.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <cerrno>
#include <sys/random.h>

namespace sessionkit {

inline constexpr std::size_t max_id_length = 128;

constexpr bool is_id_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == ':' || c == '-';
}

constexpr bool is_valid_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > max_id_length) return false;
    // "." and ".." are path segments that URL clients normalise away.
    if (id == "." || id == "..") return false;
    for (char c : id)
        if (!is_id_char(c)) return false;
    return true;
}

namespace detail {
inline std::string why_invalid(std::string_view id) {
    if (id.empty()) return "is empty";
    if (id == "." || id == "..") return "is a dot segment, which URLs cannot carry";
    if (id.size() > max_id_length)
        return "is " + std::to_string(id.size()) + " bytes long (at most " + std::to_string(max_id_length) + ")";
    for (std::size_t i = 0; i < id.size(); ++i)
        if (!is_id_char(id[i])) return "has a byte outside [A-Za-z0-9._:-] at offset " + std::to_string(i);
    return "is valid";
}
}  // namespace detail

/// Throws error::invalid_id naming the id and what is wrong with it.
inline void check_id(std::string_view id) {
    if (!is_valid_id(id))
        throw_error(error::invalid_id, "session id '" + detail::printable(id) + "' " + detail::why_invalid(id));
}

/// Fills `out` from the kernel CSPRNG (getrandom(2); blocks only before the
/// pool is first seeded at boot).
inline void random_bytes(std::byte* out, std::size_t n) {
    while (n > 0) {
        ssize_t got = ::getrandom(out, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            throw boost::system::system_error(boost::system::error_code(errno, boost::system::system_category()),
                                              "sessionkit: getrandom");
        }
        out += got;
        n -= static_cast<std::size_t>(got);
    }
}

/// A new 128-bit random id: 26 characters of RFC 4648 base32, lower case,
/// unpadded (e.g. "qammyvoi6x6wwkdkyp62hupeae").
inline std::string generate_id() {
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    std::array<std::byte, 16> raw;
    random_bytes(raw.data(), raw.size());
    std::string out;
    out.reserve(26);
    std::uint32_t buffer = 0;
    int bits = 0;
    for (std::byte b : raw) {
        buffer = (buffer << 8) | std::to_integer<std::uint32_t>(b);
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out += alphabet[(buffer >> bits) & 31u];
        }
    }
    if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31u];
    return out;
}

}  // namespace sessionkit
