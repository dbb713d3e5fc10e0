// sessionkit/error.hpp — the library's error codes, the conditions callers
// compare them against, and the exception that carries their diagnostics.
//
// Expected outcomes (a missing session, a version conflict) are values; this
// category is for what went wrong: bad input, a corrupt record, a backend that
// failed. Errors travel as sessionkit::system_error (a
// boost::system::system_error) whose what() names the backend, the operation
// and the key involved, and whose diagnostics() gives the same parts as
// fields, so nobody has to take the message apart.
//
// Codes say exactly what happened (error::timeout); conditions group them by
// what a caller does about it (condition::unavailable: retry later):
//
//     catch (const boost::system::system_error& e) {
//         if (e.code() == sessionkit::condition::unavailable) retry();
//     }
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/error_condition.hpp>
#include <boost/system/system_error.hpp>

#include <string>
#include <type_traits>
#include <utility>

namespace sessionkit {

enum class error {
    invalid_id = 1,       ///< a session id outside [A-Za-z0-9._:-]{1,128}
    invalid_transition,   ///< a status change the transition table forbids
    invalid_argument,     ///< any other rejected input (bad status name, bad option)
    corrupt_record,       ///< a stored record that is not a valid session
    not_found,            ///< an operation that needs an existing session found none
    backend_unavailable,  ///< a store, sink or spawner that cannot be reached
    timeout,              ///< a backend operation that did not finish in time
    protocol_error,       ///< a backend answered something we cannot understand
    spawn_failed,         ///< a worker could not be started
    contention,           ///< a compare-and-swap kept losing to concurrent writers
};

/// What a caller does about an error; each code belongs to exactly one.
/// (sessiond answers 400, 404, 409, 503 and 500/502 for them.)
enum class condition {
    invalid_input = 1,  ///< fix the request: invalid_id, invalid_argument
    not_found,          ///< the session is not there: not_found
    conflict,           ///< the session's state forbids it now: invalid_transition, contention
    unavailable,        ///< retry later: backend_unavailable, timeout, protocol_error
    backend_failure,    ///< retrying will not help: corrupt_record, spawn_failed
};

/// The parts of an error message, as fields. Empty when not known.
struct diagnostics {
    std::string backend;         ///< "redis 127.0.0.1:6379", "memory_store", "docker"
    std::string operation;       ///< "touch", "EVALSHA update", "create container"
    std::string key;             ///< the session id or key involved
    std::string server_message;  ///< what the server said, verbatim
};

namespace detail {
constexpr condition condition_of(error e) noexcept {
    switch (e) {
    case error::invalid_id:
    case error::invalid_argument: return condition::invalid_input;
    case error::not_found: return condition::not_found;
    case error::invalid_transition:
    case error::contention: return condition::conflict;
    case error::backend_unavailable:
    case error::timeout:
    case error::protocol_error: return condition::unavailable;
    case error::corrupt_record:
    case error::spawn_failed: return condition::backend_failure;
    }
    return condition::backend_failure;
}

class condition_category_impl final : public boost::system::error_category {
public:
    constexpr condition_category_impl() noexcept : error_category(0x5e55'10c1'7000'0002ULL) {}
    const char* name() const noexcept override { return "sessionkit.condition"; }
    std::string message(int ev) const override {
        switch (static_cast<condition>(ev)) {
        case condition::invalid_input: return "invalid input";
        case condition::not_found: return "not found";
        case condition::conflict: return "conflict with the session's state";
        case condition::unavailable: return "backend unavailable";
        case condition::backend_failure: return "backend failure";
        }
        return "unknown sessionkit condition";
    }
};

inline const boost::system::error_category& condition_category() noexcept {
    static const condition_category_impl instance;
    return instance;
}

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
    boost::system::error_condition default_error_condition(int ev) const noexcept override {
        return {static_cast<int>(condition_of(static_cast<error>(ev))), condition_category()};
    }
};
}  // namespace detail

inline const boost::system::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

inline boost::system::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), error_category()}; }

inline boost::system::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), detail::condition_category()};
}

/// The exception every sessionkit error is thrown as. what() is
/// "<message>: <category message> [sessionkit:N]" as Boost writes it;
/// message() is the text alone, for wrapping it inside another error.
class system_error : public boost::system::system_error {
public:
    system_error(error e, std::string message, sessionkit::diagnostics diag = {})
        : boost::system::system_error(make_error_code(e), message), message_(std::move(message)),
          diag_(std::move(diag)) {}

    const std::string& message() const noexcept { return message_; }
    const sessionkit::diagnostics& diagnostics() const noexcept { return diag_; }

private:
    std::string message_;
    sessionkit::diagnostics diag_;
};

/// "<backend> <operation> '<key>': <server message>", leaving out what is empty.
inline std::string describe(const diagnostics& d) {
    std::string out = d.backend;
    auto add = [&out](const std::string& part, const char* sep) {
        if (part.empty()) return;
        if (!out.empty()) out += sep;
        out += part;
    };
    add(d.operation, d.backend.empty() ? "" : " ");
    if (!d.key.empty()) add("'" + d.key + "'", " ");
    add(d.server_message, ": ");
    return out;
}

/// Throws a sessionkit::system_error whose what() is "<what>: <category
/// message>" (Boost appends " [sessionkit:N]").
/// `what` must name the backend/operation/key, e.g.
/// "memory_store.update: session 'abc'".
[[noreturn]] inline void throw_error(error e, const std::string& what) { throw system_error(e, what); }

/// Throws with the diagnostics as fields; the message is describe(diag).
[[noreturn]] inline void throw_error(error e, diagnostics diag) {
    std::string message = describe(diag);
    throw system_error(e, std::move(message), std::move(diag));
}

/// The message an error was thrown with, without the ": <category message>
/// [sessionkit:N]" that Boost appends: for wrapping one error's text inside
/// another's without repeating the suffix. Ours keep their message apart;
/// another library's system_error is cut before its ": <code message>".
inline std::string what_without_code(const boost::system::system_error& e) {
    if (auto* ours = dynamic_cast<const system_error*>(&e)) return ours->message();
    std::string w = e.what();
    if (auto pos = w.rfind(": " + e.code().message()); pos != std::string::npos && pos > 0) w.erase(pos);
    return w;
}

}  // namespace sessionkit

template <>
struct boost::system::is_error_code_enum<sessionkit::error> : std::true_type {};
template <>
struct boost::system::is_error_condition_enum<sessionkit::condition> : std::true_type {};
