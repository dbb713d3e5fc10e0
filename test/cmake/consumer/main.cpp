// Built against the installed package: create a session, expire it.
#include <sessionkit/sessionkit.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <iostream>

int main() {
    using namespace sessionkit;
    using namespace std::chrono_literals;
    memory_store store;
    manual_clock clock;
    session_registry<memory_store, manual_clock> registry(store, {.idle_timeout = 1s}, clock);
    janitor jan(registry, {.warning_window = 0s});
    boost::asio::io_context ctx;
    auto done = boost::asio::co_spawn(ctx, [&]() -> awaitable<std::size_t> {
        co_await registry.acquire("consumer-1");
        clock.advance(2s);
        co_return (co_await jan.sweep_once()).expired;
    }, boost::asio::use_future);
    ctx.run();
    auto expired = done.get();
    std::cout << "expired " << expired << '\n';
    return expired == 1 ? 0 : 1;
}
