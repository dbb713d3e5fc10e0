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
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace sessionkit::detail {

/// FNV-1a over a tag and the id, as 8 hex digits.
inline std::string cursor_check(std::string_view id) {
    std::uint32_t h = fnv1a_32(id, fnv1a_32("sessionkit.cursor.v1:"));
    constexpr char digits[] = "0123456789abcdef";
    std::string hex(8, '0');
    for (int i = 7; i >= 0; --i, h >>= 4) hex[static_cast<std::size_t>(i)] = digits[h & 0xf];
    return hex;
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

} // namespace sessionkit::detail
