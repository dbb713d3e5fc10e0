// The README's short example, compiled and run by the tests so that it
// stays true. Keep the two in sync (readme-sync.sh checks).
#include <sessionkit/sessionkit.hpp>

#include <boost/asio.hpp>
#include <iostream>

using namespace sessionkit;
using namespace std::chrono_literals;

int main() {
    memory_store store;
    jsonl_sink events(std::cout);  // one JSON line per event
    registry_options options;
    options.idle_timeout = 15min;
    basic_session_registry<memory_store, system_clock_policy, jsonl_sink> registry(store, options, {}, events);
    janitor jan(registry);  // sweeps every 10 s by default

    auto alice_works = [&]() -> awaitable<void> {
        acquire_options who;  // GCC 12: name options before co_await
        who.owner = "alice";
        auto [s, created] = co_await registry.acquire("alice-notebook", who);  // get-or-create
        co_await registry.touch(s.id);                                         // still in use
        co_await registry.terminate(s.id, "logout");                           // ends it, once
        jan.stop();
    };
    boost::asio::io_context io;
    boost::asio::co_spawn(io, jan.run(), boost::asio::detached);
    boost::asio::co_spawn(io, alice_works, boost::asio::detached);
    io.run();
}
