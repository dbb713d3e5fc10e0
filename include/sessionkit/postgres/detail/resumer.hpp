// sessionkit/postgres/detail/resumer.hpp — how an operation's caller is
// resumed: its completion handler, type-erased, with its executor, and the
// exception it gets when the operation fails.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/postgres/operation.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <exception>
#include <memory>
#include <string>
#include <utility>

namespace sessionkit::postgres::detail {

/// Who to resume when an operation completes: the awaiting coroutine's
/// handler, type-erased (it is move-only), and the executor it runs on.
/// (asio::any_completion_handler's executor cannot be posted to in Boost
/// 1.81; the Redis connection has the same ten lines.)
struct resumer {
    struct base {
        virtual ~base() = default;
        virtual void operator()(std::exception_ptr, result_set) = 0;
    };
    template <class Handler>
    struct of final : base {
        explicit of(Handler h) : handler(std::move(h)) {}
        void operator()(std::exception_ptr e, result_set r) override { std::move(handler)(std::move(e), std::move(r)); }
        Handler handler;
    };

    boost::asio::any_io_executor executor;
    std::unique_ptr<base> fn;

    explicit operator bool() const noexcept { return fn != nullptr; }
};

/// The exception, made where it lives: a thrown prvalue, not a copy
/// (std::make_exception_ptr copies, and libstdc++ shares the message
/// between copies with a count ThreadSanitizer cannot see).
inline std::exception_ptr make_failure(error e, const std::string& what, diagnostics diag = {}) {
    try {
        throw sessionkit::system_error(e, what, std::move(diag));
    } catch (...) {
        return std::current_exception();
    }
}

inline std::exception_ptr make_server_failure(error e, const std::string& what, diagnostics diag, std::string sqlstate,
                                              std::string statement) {
    try {
        throw server_error(e, what, std::move(diag), std::move(sqlstate), std::move(statement));
    } catch (...) {
        return std::current_exception();
    }
}

}  // namespace sessionkit::postgres::detail
