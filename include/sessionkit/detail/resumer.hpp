// sessionkit/detail/resumer.hpp — how a pipelined connection resumes the
// caller of a request: its completion handler, type-erased, with its
// executor, and the exception it gets when the request fails. Shared by
// the Redis and the PostgreSQL connections (their Result differs).
#pragma once

#include <sessionkit/error.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <exception>
#include <memory>
#include <string>
#include <utility>

namespace sessionkit::detail {

/// Who to resume when a request completes: the awaiting coroutine's
/// handler, type-erased (it is move-only), and the executor it runs on.
/// (asio::any_completion_handler would do, but its executor cannot be
/// posted to in Boost 1.81.)
template <class Result>
struct basic_resumer {
    struct base {
        virtual ~base() = default;
        virtual void operator()(std::exception_ptr, Result) = 0;
    };
    template <class Handler>
    struct of final : base {
        explicit of(Handler h) : handler(std::move(h)) {}
        void operator()(std::exception_ptr e, Result r) override { std::move(handler)(std::move(e), std::move(r)); }
        Handler handler;
    };

    boost::asio::any_io_executor executor;
    std::unique_ptr<base> fn;

    explicit operator bool() const noexcept { return fn != nullptr; }
};

/// The exception, made where it lives. std::make_exception_ptr copies
/// its argument, and libstdc++'s runtime_error shares its message
/// between copies with a reference count ThreadSanitizer cannot see:
/// the temporary, released here after the caller already has the
/// copy, was reported as a race. A thrown prvalue has no such twin.
inline std::exception_ptr make_failure(error e, const std::string& what, diagnostics diag = {}) {
    try {
        throw sessionkit::system_error(e, what, std::move(diag));
    } catch (...) {
        return std::current_exception();
    }
}

}  // namespace sessionkit::detail
