// sessionkit/store/redis/detail/sha1_hex.hpp — the SHA1 of a text in lower-case
// hex: the name EVALSHA calls a script by.
#pragma once

#include <sessionkit/detail/text.hpp>

#include <openssl/sha.h>

#include <string>
#include <string_view>

namespace sessionkit::detail::redis_store {

inline std::string sha1_hex(std::string_view text) {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    return to_hex(digest);
}

}  // namespace sessionkit::detail::redis_store
