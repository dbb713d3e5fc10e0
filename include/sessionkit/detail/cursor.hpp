// sessionkit/detail/cursor.hpp — the paging cursor the stores issue.
//
// A cursor is the last id of the page before and a check of it,
// "<id>~<8 hex digits>", so that a cursor a store did not issue (a typo, an
// id passed in its place) is refused, not read as a place in the list. The
// check finds mistakes; it is no secret: a made-up cursor only chooses where
// a page starts. Every store uses this one format, so a cursor means the
// same whichever store issued it.
#pragma once

#include <sessionkit/detail/fnv.hpp>
#include <sessionkit/detail/text.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace sessionkit::detail {

/// FNV-1a over a tag and the id, as 8 hex digits.
inline std::string cursor_check(std::string_view id) {
    const std::uint32_t h = fnv1a_32(id, fnv1a_32("sessionkit.cursor.v1:"));
    const unsigned char big_endian[] = {static_cast<unsigned char>(h >> 24), static_cast<unsigned char>(h >> 16),
                                        static_cast<unsigned char>(h >> 8), static_cast<unsigned char>(h)};
    return to_hex(big_endian);
}

/// The cursor of a page whose last session is `id`.
inline std::string cursor_after(std::string_view id) { return std::string(id) + '~' + cursor_check(id); }

/// The id a cursor names; error::invalid_argument naming `who` (the store's
/// list, e.g. "memory_store.list") and the cursor when it is not one a
/// store issued.
inline std::string id_of_cursor(std::string_view who, std::string_view cursor) {
    if (auto tilde = cursor.rfind('~'); tilde != std::string_view::npos) {
        std::string id(cursor.substr(0, tilde));
        if (is_valid_id(id) && cursor.substr(tilde + 1) == cursor_check(id)) return id;
    }
    throw_error(error::invalid_argument, std::string(who) + ": cursor '" + printable(cursor) +
                                             "' is not a cursor this store issued (pass back next_cursor unchanged)");
}

}  // namespace sessionkit::detail
