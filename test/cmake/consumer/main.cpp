// Built against the installed package: create a session, expire it.
#include <sessionkit/http/router.hpp>
#include <sessionkit/sessionkit.hpp>
#include <sessionkit/spawner/process.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <iostream>

// The process component: its header compiles and links against the package.
static_assert(sessionkit::input_spawner<sessionkit::process_spawner>);

int main() {
    using namespace sessionkit;
    using namespace std::chrono_literals;
    memory_store store;
    manual_clock clock;
    basic_session_registry<memory_store, manual_clock> registry(store, {.idle_timeout = 1s}, clock);
    janitor jan(registry, {.warning_window = 0s});
    boost::asio::io_context ctx;
    auto done = boost::asio::co_spawn(
        ctx,
        [&]() -> awaitable<std::size_t> {
            co_await registry.acquire("consumer-1");
            clock.advance(2s);
            co_return (co_await jan.sweep_once()).expired;
        },
        boost::asio::use_future);
    ctx.run();
    auto expired = done.get();
    std::cout << "expired " << expired << '\n';
    // The http component: route one request.
    sessionkit::http::request req{boost::beast::http::verb::get, "/api/v1/sessions/consumer-1", 11};
    req.set(boost::beast::http::field::host, "localhost");
    bool routed = std::holds_alternative<sessionkit::http::routed>(sessionkit::http::route(req));
    std::cout << "routed " << routed << '\n';
    return expired == 1 && routed ? 0 : 1;
}
