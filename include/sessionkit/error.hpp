// sessionkit/error.hpp — the library's error codes and category.
//
// Expected outcomes (a missing session, a version conflict) are values; this
// category is for what went wrong: bad input, a corrupt record, a backend that
// failed. Errors travel as boost::system::system_error whose what() names the
// backend, the operation and the key involved.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <string>
#include <type_traits>

namespace sessionkit {

enum class error {
    invalid_id = 1,          ///< a session id outside [A-Za-z0-9._:-]{1,128}
    invalid_transition,      ///< a status change the transition table forbids
    invalid_argument,        ///< any other rejected input (bad status name, bad option)
    corrupt_record,          ///< a stored record that is not a valid session
    not_found,               ///< an operation that needs an existing session found none
    backend_unavailable,     ///< a store, sink or spawner that cannot be reached
    timeout,                 ///< a backend operation that did not finish in time
    protocol_error,          ///< a backend answered something we cannot understand
    spawn_failed,            ///< a worker could not be started
    contention,              ///< a compare-and-swap kept losing to concurrent writers
};

namespace detail {
class error_category_impl final : public boost::system::error_category {
public:
    // A fixed id keeps the category comparable across shared objects.
    constexpr error_category_impl() noexcept : error_category(0x5e55'10c1'7000'0001ULL) {}
    const char* name() const noexcept override { return "sessionkit"; }
    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::invalid_id: return "invalid session id";
        case error::invalid_transition: return "invalid status transition";
        case error::invalid_argument: return "invalid argument";
        case error::corrupt_record: return "corrupt session record";
        case error::not_found: return "session not found";
        case error::backend_unavailable: return "backend unavailable";
        case error::timeout: return "backend operation timed out";
        case error::protocol_error: return "backend protocol error";
        case error::spawn_failed: return "worker spawn failed";
        case error::contention: return "too many concurrent updates";
        }
        return "unknown sessionkit error";
    }
};
} // namespace detail

inline const boost::system::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

inline boost::system::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// Throws a system_error whose what() is "<what>: <category message>"
/// (Boost appends " [sessionkit:N]").
/// `what` must name the backend/operation/key, e.g.
/// "memory_store.update: session 'abc'".
[[noreturn]] inline void throw_error(error e, const std::string& what) {
    throw boost::system::system_error(make_error_code(e), what);
}

/// The message a system_error was thrown with, without the ": <category
/// message> [sessionkit:N]" that Boost appends: for wrapping one error's
/// text inside another's without repeating the suffix.
inline std::string what_without_code(const boost::system::system_error& e) {
    std::string w = e.what();
    const std::string suffix = ": " + e.code().message();
    if (auto pos = w.rfind(suffix); pos != std::string::npos) w.erase(pos);
    return w;
}

} // namespace sessionkit

template <>
struct boost::system::is_error_code_enum<sessionkit::error> : std::true_type {};
