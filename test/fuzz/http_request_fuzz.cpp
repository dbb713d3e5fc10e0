// libFuzzer target: arbitrary bytes through Beast's request parser (with the
// server's limits) and, when a request comes out, through the API router.
// Nothing may crash, hang or trip ASan/UBSan; every refusal is an api_error.
#include <sessionkit/http/router.hpp>

#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace http = boost::beast::http;
    http::request_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(64 * 1024);
    parser.header_limit(16 * 1024);
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(data, size), ec);
    if (ec == http::error::need_more && size > 0) parser.put_eof(ec);
    if (ec || !parser.is_done()) return 0;
    static const sessionkit::http_api::router_config with_token{"fuzz-token"};
    static const sessionkit::http_api::router_config without_token{};
    const auto& req = parser.get();
    (void)sessionkit::http_api::route(req, without_token);
    (void)sessionkit::http_api::route(req, with_token);
    return 0;
}
