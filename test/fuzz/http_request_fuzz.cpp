// libFuzzer target: arbitrary bytes through Beast's request parser (with the
// server's limits), the server's framing check, then through the API router
// and, when a request comes out, the handler over a fresh memory store.
// Nothing may crash, hang or trip ASan/UBSan; every answer must carry a
// status the API documents and, when it says JSON, a parsable JSON body.
#include <sessionkit/http/handler.hpp>
#include <sessionkit/http/router.hpp>
#include <sessionkit/sessionkit.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace http = boost::beast::http;
    using namespace sessionkit;
    http::request_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(64 * 1024);
    parser.header_limit(16 * 1024);
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(data, size), ec);
    if (ec == http::error::need_more && size > 0) parser.put_eof(ec);
    if (ec || !parser.is_done()) return 0;
    const auto& req = parser.get();
    // As the server does: a body of uncertain length is answered 400 and
    // never reaches the router (request smuggling).
    if (auto bad = sessionkit::http::framing_error(req)) {
        if (bad->status != 400 || bad->message.empty()) std::abort();
        return 0;
    }

    static const sessionkit::http::router_options with_token{"fuzz-token"};
    (void)sessionkit::http::route(req, with_token);

    memory_store store;
    session_registry<memory_store> registry(store);
    sessionkit::http::api_metrics metrics;
    sessionkit::http::api_handler<session_registry<memory_store>> handler(registry, {}, metrics);
    boost::asio::io_context ctx;
    auto answer = boost::asio::co_spawn(ctx, handler.handle(req), boost::asio::use_future);
    ctx.run();
    auto res = answer.get().res;  // streams (follow=1) are not run: only their head is checked

    static const std::set<unsigned> documented = {200, 201, 400, 401, 404, 405, 409, 411,
                                                  412, 413, 415, 431, 500, 502, 503};
    if (!documented.contains(res.result_int())) std::abort();
    if (res.result_int() == 500) std::abort();  // a bug: nothing here can fail for real
    if (res[http::field::content_type] == "application/json") {
        boost::system::error_code jec;
        auto body = boost::json::parse(res.body(), jec);
        if (jec || !body.is_object()) std::abort();
        if (res.result_int() >= 400 && !body.as_object().contains("error")) std::abort();
    }
    return 0;
}
