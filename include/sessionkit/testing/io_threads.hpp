// sessionkit/testing/io_threads.hpp — an io_context running on its own threads.
//
// Part of the testing kit: connections and spawners' watches live on these
// threads while a test drives operations from sync_wait's private context,
// as a daemon's callers would from theirs.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <thread>
#include <vector>

namespace sessionkit::testing {

/// An io_context running on its own threads for as long as it lives.
class io_threads {
public:
    explicit io_threads(int threads = 1) : guard_(ctx_.get_executor()) {
        for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ctx_.run(); });
    }
    ~io_threads() { stop(); }
    /// Stops the threads (idempotent): after this nothing runs on executor().
    void stop() {
        guard_.reset();
        ctx_.stop();
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    io_threads(const io_threads&) = delete;
    io_threads& operator=(const io_threads&) = delete;
    boost::asio::any_io_executor executor() { return ctx_.get_executor(); }

private:
    boost::asio::io_context ctx_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
    std::vector<std::thread> threads_;
};

}  // namespace sessionkit::testing
