// sessionkit/redis/detail/resumer.hpp — how a request's caller is resumed:
// its completion handler, type-erased, with its executor, and the exception
// it gets when the request fails.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/redis/resp.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sessionkit::redis::detail {

/// Who to resume when a request completes: the awaiting coroutine's
/// handler, type-erased (it is move-only), and the executor it runs on.
/// (asio::any_completion_handler would do, but its executor cannot be
/// posted to in Boost 1.81.)
struct resumer {
    struct base {
        virtual ~base() = default;
        virtual void operator()(std::exception_ptr, std::vector<resp::value>) = 0;
    };
    template <class Handler>
    struct of final : base {
        explicit of(Handler h) : handler(std::move(h)) {}
        void operator()(std::exception_ptr e, std::vector<resp::value> v) override {
            std::move(handler)(std::move(e), std::move(v));
        }
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

}  // namespace sessionkit::redis::detail
