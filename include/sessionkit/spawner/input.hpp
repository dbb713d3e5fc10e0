// sessionkit/spawner/input.hpp — writing to a worker's input, shared by the
// process and Docker spawners: one write at a time (so that two callers'
// bytes never interleave), and never longer than a limit (so that a worker
// that stops reading cannot hang every later write).
#pragma once

#include <sessionkit/error.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <string>

namespace sessionkit::detail {

/// The turn a write holds: a channel with one slot, created on the
/// stream's strand.
using input_turn = boost::asio::experimental::channel<void(boost::system::error_code)>;

/// Writes `bytes` to `stream` once the writes before it are done. Run it on
/// the stream's strand. error::timeout when the worker did not take them
/// all within `limit` (part may have been written); error::not_found when
/// its end is closed. `who` names the worker in both.
template <class Stream>
boost::asio::awaitable<void> write_input_in_turn(Stream& stream, input_turn& turn, std::string bytes,
                                                 std::chrono::milliseconds limit, std::string who) {
    namespace asio = boost::asio;
    using namespace asio::experimental::awaitable_operators;
    co_await turn.async_send(boost::system::error_code{}, asio::use_awaitable);
    boost::system::error_code ec;
    asio::steady_timer timer(co_await asio::this_coro::executor, limit);
    auto done =
        co_await (asio::async_write(stream, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec)) ||
                  timer.async_wait(asio::use_awaitable));
    turn.try_receive([](boost::system::error_code) {});
    if (done.index() == 1)
        throw_error(error::timeout, who + " did not take " + std::to_string(bytes.size()) + " bytes of input within " +
                                        std::to_string(limit.count()) + " ms (part may have been written)");
    if (ec) throw_error(error::not_found, who + " does not read its input: " + ec.message());
}

}  // namespace sessionkit::detail
