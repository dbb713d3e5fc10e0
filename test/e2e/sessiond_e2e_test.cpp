// sessiond's HTTP API end to end over a real socket: an in-process server
// (the same http_server + api_handler that sessiond runs) on a loopback
// port, and a Beast client. Covers every endpoint and every error status.
#define BOOST_TEST_MODULE sessiond_e2e
#include <sessionkit/http/handler.hpp>
#include <sessionkit/http/server.hpp>
#include <sessionkit/sessionkit.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <thread>

using namespace sessionkit;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

// A store whose backend can be switched off, to see 503s.
struct switchable_store : memory_store {
    std::atomic<bool> down{false};
    void check(const char* op) {
        if (down.load())
            throw_error(error::backend_unavailable, std::string("switchable_store.") + op + ": switched off");
    }
    awaitable<void> ping() {
        check("ping");
        co_return;
    }
    awaitable<std::optional<session>> get(std::string_view id) {
        check("get");
        co_return get_now(id);
    }
};
static_assert(session_store<switchable_store>);

using registry_t = session_registry<switchable_store>;
using handler_t = http::api_handler<registry_t>;

struct reply {
    unsigned status = 0;
    boost::json::value json;
    std::string body;
    bhttp::fields headers;
};

// The server on its own thread, and a blocking client.
struct fixture {
    switchable_store store;
    registry_t registry{store, registry_options{.idle_timeout = 60s}};
    http::api_metrics metrics;
    std::unique_ptr<handler_t> handler;
    asio::io_context server_ctx;
    std::unique_ptr<http::http_server<handler_t>> server;
    std::vector<std::thread> server_threads;
    unsigned short port = 0;

    explicit fixture(std::string token, http::server_options sopts = small_limits(),
                     const std::function<void(handler_t&)>& setup = {}) {
        handler = std::make_unique<handler_t>(registry, http::router_options{std::move(token)}, metrics);
        if (setup) setup(*handler);  // before the server threads read it
        server = std::make_unique<http::http_server<handler_t>>(server_ctx.get_executor(), *handler, sopts);
        server->listen({asio::ip::make_address("127.0.0.1"), 0});
        port = server->local_endpoint().port();
        asio::co_spawn(server->executor(), server->run(), asio::detached);
        // Several threads, so that ThreadSanitizer sees the strands at work.
        for (int t = 0; t < 4; ++t) server_threads.emplace_back([this] { server_ctx.run(); });
    }
    fixture() : fixture(std::string{}) {}
    ~fixture() {
        server->stop();
        for (auto& t : server_threads) t.join();
    }
    static http::server_options small_limits() {
        http::server_options o;
        o.body_limit = 4096;
        o.max_connections = 64;
        o.idle_timeout = 5s;
        o.header_timeout = 2s;
        return o;
    }

    reply call(bhttp::verb method, const std::string& target, const std::string& body = {},
               std::map<std::string, std::string> headers = {}) {
        asio::io_context ctx;
        beast::tcp_stream stream(ctx);
        stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        bhttp::request<bhttp::string_body> req{method, target, 11};
        req.set(bhttp::field::host, "localhost");
        bool typed = false;
        for (auto& [k, v] : headers) {
            req.set(k, v);
            typed |= beast::iequals(k, "content-type");
        }
        if (!body.empty()) {
            if (!typed) req.set(bhttp::field::content_type, "application/json");
            req.body() = body;
            req.prepare_payload();
        } else if (method == bhttp::verb::post || method == bhttp::verb::patch) {
            req.content_length(0);
        }
        bhttp::write(stream, req);
        return read_reply(stream);
    }

    static reply read_reply(beast::tcp_stream& stream) {
        beast::flat_buffer buf;
        bhttp::response<bhttp::string_body> res;
        bhttp::read(stream, buf, res);
        reply r;
        r.status = res.result_int();
        r.body = res.body();
        r.headers = res.base();
        if (res[bhttp::field::content_type].starts_with("application/json")) r.json = boost::json::parse(r.body);
        return r;
    }

    // Sends raw bytes and reads one response (or "" if the server closed).
    std::string raw(const std::string& bytes) {
        asio::io_context ctx;
        tcp::socket s(ctx);
        s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        asio::write(s, asio::buffer(bytes));
        std::string out;
        boost::system::error_code ec;
        char chunk[4096];
        for (;;) {
            auto n = s.read_some(asio::buffer(chunk), ec);
            out.append(chunk, n);
            if (ec) break;
        }
        return out;
    }
};

// What a raw exchange got back: the bytes, whether the server closed the
// connection (rather than the client giving up), and how long that took.
struct raw_exchange {
    std::string text;
    bool closed = false;
    std::chrono::steady_clock::duration took{};
};

// Sends raw bytes and reads until the server closes or `patience` passes.
raw_exchange raw_until_close(unsigned short port, const std::string& bytes, std::chrono::milliseconds patience) {
    asio::io_context ctx;
    beast::tcp_stream s(ctx);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    const auto start = std::chrono::steady_clock::now();
    asio::write(s.socket(), asio::buffer(bytes));
    raw_exchange out;
    char chunk[4096];
    for (;;) {
        s.expires_at(start + patience);
        boost::system::error_code ec;
        auto n = s.read_some(asio::buffer(chunk), ec);
        out.text.append(chunk, n);
        if (ec) {
            out.closed = ec == asio::error::eof || ec == asio::error::connection_reset;
            break;
        }
    }
    out.took = std::chrono::steady_clock::now() - start;
    return out;
}

std::size_t count_of(std::string_view text, std::string_view needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1)) ++n;
    return n;
}

std::string code_of(const reply& r) { return r.json.is_object() ? std::string(r.json.at("error").as_string()) : ""; }

}  // namespace

BOOST_FIXTURE_TEST_SUITE(endpoints, fixture)

BOOST_AUTO_TEST_CASE(create_get_touch_patch_delete_round_trip) {
    auto created =
        call(bhttp::verb::post, "/api/v1/sessions", R"({"id":"e1","owner":"ann","attributes":{"lang":"c++"}})");
    BOOST_TEST(created.status == 201u);
    BOOST_TEST(created.headers[bhttp::field::location] == "/api/v1/sessions/e1");
    BOOST_TEST(created.json.at("status") == "active");
    auto again = call(bhttp::verb::post, "/api/v1/sessions", R"({"id":"e1","owner":"bob"})");
    BOOST_TEST(again.status == 200u);
    BOOST_TEST(again.json.at("owner") == "ann");
    auto generated = call(bhttp::verb::post, "/api/v1/sessions", "{}");
    BOOST_TEST(generated.status == 201u);
    BOOST_TEST(generated.json.at("id").as_string().size() == 26u);

    auto got = call(bhttp::verb::get, "/api/v1/sessions/e1");
    BOOST_TEST(got.status == 200u);
    BOOST_TEST(got.json.at("attributes").at("lang") == "c++");
    const auto version = got.json.at("version").to_number<std::uint64_t>();
    BOOST_TEST(got.headers[bhttp::field::etag] == "\"" + std::to_string(version) + "\"");

    auto touched = call(bhttp::verb::post, "/api/v1/sessions/e1/touch");
    BOOST_TEST(touched.status == 200u);
    BOOST_TEST(touched.json.at("idle_deadline").to_number<std::int64_t>() > 0);

    auto patched = call(bhttp::verb::patch, "/api/v1/sessions/e1",
                        R"({"status":"waiting_input","attributes":{"lang":null,"n":1}})");
    BOOST_TEST(patched.status == 200u);
    BOOST_TEST(patched.json.at("status") == "waiting_input");
    BOOST_TEST(!patched.json.at("attributes").as_object().contains("lang"));
    auto v = patched.json.at("version").to_number<std::uint64_t>();
    auto stale = call(bhttp::verb::patch, "/api/v1/sessions/e1", R"({"attributes":{"n":2}})",
                      {{"If-Match", std::to_string(v - 1)}});
    BOOST_TEST(stale.status == 412u);
    BOOST_TEST(code_of(stale) == "version_conflict");
    auto fresh = call(bhttp::verb::patch, "/api/v1/sessions/e1", R"({"attributes":{"n":2}})",
                      {{"If-Match", "\"" + std::to_string(v) + "\""}});
    BOOST_TEST(fresh.status == 200u);
    auto bad_move = call(bhttp::verb::patch, "/api/v1/sessions/e1", R"({"status":"initializing"})");
    BOOST_TEST(bad_move.status == 409u);
    BOOST_TEST(bad_move.json.at("message").as_string().find("from waiting_input to initializing") != std::string::npos);

    auto deleted = call(bhttp::verb::delete_, "/api/v1/sessions/e1?reason=logout");
    BOOST_TEST(deleted.status == 200u);
    BOOST_TEST(deleted.json.at("status") == "terminated");
    BOOST_TEST(deleted.json.at("end_reason") == "logout");
    auto deleted_again = call(bhttp::verb::delete_, "/api/v1/sessions/e1");
    BOOST_TEST(deleted_again.status == 200u);
    BOOST_TEST(deleted_again.json.at("end_reason") == "logout");
    auto late_touch = call(bhttp::verb::post, "/api/v1/sessions/e1/touch");
    BOOST_TEST(late_touch.status == 409u);
    auto late_patch = call(bhttp::verb::patch, "/api/v1/sessions/e1", R"({"status":"active"})");
    BOOST_TEST(late_patch.status == 409u);
}

BOOST_AUTO_TEST_CASE(list_pages_and_filters) {
    for (int i = 0; i < 7; ++i)
        call(bhttp::verb::post, "/api/v1/sessions",
             R"({"id":"l)" + std::to_string(i) + R"(","owner":")" + (i % 2 ? "odd" : "even") + "\"}");
    std::set<std::string> seen;
    std::string cursor;
    for (int page = 0; page < 10; ++page) {
        auto r =
            call(bhttp::verb::get, "/api/v1/sessions?owner=even&limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor));
        BOOST_REQUIRE(r.status == 200u);
        for (auto& s : r.json.at("sessions").as_array()) seen.insert(std::string(s.at("id").as_string()));
        if (r.json.at("next_cursor").is_null()) break;
        cursor = std::string(r.json.at("next_cursor").as_string());
    }
    BOOST_TEST(seen.size() == 4u);
    auto bad = call(bhttp::verb::get, "/api/v1/sessions?status=napping");
    BOOST_TEST(bad.status == 400u);
    BOOST_TEST(code_of(bad) == "unknown_status");
}

BOOST_AUTO_TEST_CASE(stats_health_and_metrics) {
    call(bhttp::verb::post, "/api/v1/sessions", R"({"id":"m1"})");
    call(bhttp::verb::delete_, "/api/v1/sessions/m1");
    auto st = call(bhttp::verb::get, "/api/v1/sessions/stats");
    BOOST_TEST(st.status == 200u);
    BOOST_TEST(st.json.at("created_total") == 1);
    BOOST_TEST(st.json.at("terminated_total") == 1);
    BOOST_TEST(st.json.at("by_status").at("terminated") == 1);
    auto health = call(bhttp::verb::get, "/healthz");
    BOOST_TEST(health.status == 200u);
    BOOST_TEST(health.body == "{\"status\":\"ok\"}\n");  // no store_name: the store is not named
    auto m = call(bhttp::verb::get, "/metrics");
    BOOST_TEST(m.status == 200u);
    BOOST_TEST(m.body.find("sessionkit_sessions{status=\"terminated\"} 1") != std::string::npos);
    BOOST_TEST(m.body.find("sessionkit_sessions_created_total 1") != std::string::npos);
    BOOST_TEST(m.body.find("sessionkit_http_request_duration_seconds_count{route=\"create\",code=\"201\"} 1") !=
               std::string::npos);
    BOOST_TEST(m.headers[bhttp::field::content_type].starts_with("text/plain; version=0.0.4"));
}

BOOST_AUTO_TEST_CASE(every_error_status) {
    auto bad_id = call(bhttp::verb::get, "/api/v1/sessions/a%20b");
    BOOST_TEST(bad_id.status == 400u);
    BOOST_TEST(code_of(bad_id) == "invalid_id");
    BOOST_TEST(bad_id.json.at("message").as_string().find("'a b'") != std::string::npos);
    BOOST_TEST(code_of(call(bhttp::verb::post, "/api/v1/sessions", "{nope")) == "malformed_json");          // 400
    BOOST_TEST(code_of(call(bhttp::verb::post, "/api/v1/sessions", R"({"owner":1})")) == "invalid_field");  // 400
    BOOST_TEST(code_of(call(bhttp::verb::get, "/api/v1/sessions?status=zzz")) == "unknown_status");         // 400
    auto missing = call(bhttp::verb::get, "/api/v1/sessions/ghost");
    BOOST_TEST(missing.status == 404u);
    BOOST_TEST(missing.json.at("message").as_string().find("'ghost'") != std::string::npos);
    BOOST_TEST(call(bhttp::verb::post, "/api/v1/sessions/ghost/touch").status == 404u);
    BOOST_TEST(call(bhttp::verb::delete_, "/api/v1/sessions/ghost").status == 404u);
    auto wrong_method = call(bhttp::verb::put, "/api/v1/sessions/x");
    BOOST_TEST(wrong_method.status == 405u);
    BOOST_TEST(wrong_method.headers[bhttp::field::allow] == "GET, HEAD, PATCH, DELETE");
    call(bhttp::verb::post, "/api/v1/sessions", R"({"id":"io"})");
    auto no_worker = call(bhttp::verb::post, "/api/v1/sessions/io/input", "hello", {{"Content-Type", "text/plain"}});
    BOOST_TEST(no_worker.status == 409u);
    BOOST_TEST(code_of(no_worker) == "no_worker");
    auto no_output = call(bhttp::verb::get, "/api/v1/sessions/io/output");
    BOOST_TEST(no_output.status == 409u);
    BOOST_TEST(code_of(no_output) == "no_worker");
    {
        // A session whose worker another daemon sharing the store started:
        // its input is out of this daemon's reach (409 no_worker_io), its
        // output is the store's and is read.
        session elsewhere;
        elsewhere.id = "elsewhere";
        elsewhere.status = session_status::active;
        elsewhere.created_at = elsewhere.last_active = std::chrono::system_clock::now();
        elsewhere.idle_timeout = 60s;
        elsewhere.idle_deadline = elsewhere.created_at + 60s;
        elsewhere.worker = worker_ref{"process", "otherhost:1:2"};
        BOOST_REQUIRE(store.create_now(elsewhere).created);
        bool appended = false;
        asio::io_context local;
        asio::co_spawn(
            local,
            [&]() -> awaitable<void> {
                const std::string id = "elsewhere", bytes = "written elsewhere";  // named: GCC 12
                appended = co_await store.append_output(id, bytes);
            },
            asio::detached);
        local.run();
        BOOST_REQUIRE(appended);
        auto input = call(bhttp::verb::post, "/api/v1/sessions/elsewhere/input", "x", {{"Content-Type", "text/plain"}});
        BOOST_TEST(input.status == 409u);
        BOOST_TEST(code_of(input) == "no_worker_io");
        BOOST_TEST(input.json.at("message").as_string().find("process worker") != std::string::npos);
        auto output = call(bhttp::verb::get, "/api/v1/sessions/elsewhere/output?from=0");
        BOOST_TEST(output.status == 200u);
        BOOST_TEST(output.body == "written elsewhere");
    }
    BOOST_TEST(call(bhttp::verb::post, "/api/v1/sessions", "x=1", {{"Content-Type", "text/plain"}}).status == 415u);
    // 411: a PATCH with neither Content-Length nor chunked body.
    auto no_length = raw("PATCH /api/v1/sessions/io HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    BOOST_TEST(no_length.starts_with("HTTP/1.1 411"));
    // 413: a body over the limit (4096 here).
    auto big = call(bhttp::verb::post, "/api/v1/sessions", std::string(5000, ' '));
    BOOST_TEST(big.status == 413u);
    // 400 for a request that is not HTTP.
    BOOST_TEST(raw("NOT HTTP AT ALL\r\n\r\n").starts_with("HTTP/1.1 400"));
    // 503 + Retry-After when the store is down.
    store.down = true;
    auto down = call(bhttp::verb::get, "/api/v1/sessions/io");
    BOOST_TEST(down.status == 503u);
    BOOST_TEST(down.headers[bhttp::field::retry_after] == "1");
    auto unhealthy = call(bhttp::verb::get, "/healthz");
    BOOST_TEST(unhealthy.status == 503u);
    BOOST_TEST(unhealthy.headers[bhttp::field::retry_after] == "1");
    BOOST_TEST(unhealthy.body.find("the session store does not answer: switchable_store.ping: switched off") !=
               std::string::npos);
    BOOST_TEST(!unhealthy.json.as_object().contains("store"));
    store.down = false;
    BOOST_TEST(call(bhttp::verb::get, "/healthz").status == 200u);
}

BOOST_AUTO_TEST_CASE(patch_that_ends_a_session_honours_if_match) {
    call(bhttp::verb::post, "/api/v1/sessions", R"({"id":"pf"})");
    auto v = call(bhttp::verb::get, "/api/v1/sessions/pf").json.at("version").to_number<std::uint64_t>();
    auto stale = call(bhttp::verb::patch, "/api/v1/sessions/pf", R"({"status":"failed"})",
                      {{"If-Match", std::to_string(v + 5)}});
    BOOST_TEST(stale.status == 412u);
    BOOST_TEST(call(bhttp::verb::get, "/api/v1/sessions/pf").json.at("status") == "active");
    auto both = call(bhttp::verb::patch, "/api/v1/sessions/pf", R"({"status":"failed","attributes":{"a":1}})");
    BOOST_TEST(both.status == 400u);
    auto to_stopping = call(bhttp::verb::patch, "/api/v1/sessions/pf", R"({"status":"stopping"})");
    BOOST_TEST(to_stopping.status == 409u);
    BOOST_TEST(call(bhttp::verb::patch, "/api/v1/sessions/pf", R"({"status":5})").status == 400u);
    auto failed =
        call(bhttp::verb::patch, "/api/v1/sessions/pf", R"({"status":"failed"})", {{"If-Match", std::to_string(v)}});
    BOOST_TEST(failed.status == 200u);
    BOOST_TEST(failed.json.at("status") == "failed");
    BOOST_TEST(failed.json.at("end_reason") == "status_set");
    BOOST_TEST(failed.headers[bhttp::field::etag] == "\"" + std::to_string(v + 1) + "\"");
    auto again = call(bhttp::verb::patch, "/api/v1/sessions/pf", R"({"status":"failed"})");
    BOOST_TEST(again.status == 200u);  // idempotent
    BOOST_TEST(call(bhttp::verb::patch, "/api/v1/sessions/pf", R"({"status":"terminated"})").status == 409u);
}

BOOST_AUTO_TEST_CASE(head_expect_http10_and_pipelining) {
    // HEAD: the GET's headers, no body, and the connection stays usable.
    auto head =
        raw("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    BOOST_TEST(head.starts_with("HTTP/1.1 200"));
    auto second = head.find("HTTP/1.1 200", 10);
    BOOST_REQUIRE(second != std::string::npos);
    BOOST_TEST(head.substr(0, second).find("{\"status\"") == std::string::npos);  // no body in the HEAD answer
    BOOST_TEST(head.substr(second).find("{\"status\":\"ok\"}") != std::string::npos);
    // Expect: 100-continue gets its interim answer before the body is sent.
    {
        asio::io_context ctx;
        tcp::socket s(ctx);
        s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        std::string body = R"({"id":"exp"})";
        asio::write(s, asio::buffer("POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                    "Expect: 100-continue\r\nContent-Length: " +
                                    std::to_string(body.size()) + "\r\n\r\n"));
        char buf[256];
        auto n = s.read_some(asio::buffer(buf));
        BOOST_TEST(std::string(buf, n).starts_with("HTTP/1.1 100 Continue"));
        asio::write(s, asio::buffer(body));
        std::string rest;
        boost::system::error_code ec;
        while (rest.find("exp") == std::string::npos && !ec) {
            n = s.read_some(asio::buffer(buf), ec);
            rest.append(buf, n);
        }
        BOOST_TEST(rest.find("201 Created") != std::string::npos);
    }
    // HTTP/1.0 without keep-alive: one answer, then the server closes.
    auto old = raw("GET /healthz HTTP/1.0\r\n\r\n");
    BOOST_TEST(old.starts_with("HTTP/1.0 200"));
    // Two pipelined requests, two answers in order.
    auto piped = raw("GET /api/v1/sessions/exp HTTP/1.1\r\nHost: x\r\n\r\n"
                     "DELETE /api/v1/sessions/exp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto first_status = piped.find("HTTP/1.1 200");
    auto second_status = piped.find("HTTP/1.1 200", first_status + 1);
    BOOST_TEST(first_status == 0u);
    BOOST_TEST(second_status != std::string::npos);
    BOOST_TEST(piped.find("\"status\":\"terminated\"") > second_status);
}

BOOST_AUTO_TEST_CASE(oversized_requests_get_their_answer_before_the_close) {
    // A 64 KiB body against a 4 KiB limit: the client still reads the 413.
    std::string big(64 << 10, 'x');
    auto r413 = raw("POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(big.size()) + "\r\n\r\n" + big);
    BOOST_TEST(r413.starts_with("HTTP/1.1 413"));
    BOOST_TEST(r413.find("payload_too_large") != std::string::npos);
    auto r431 = raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n");
    BOOST_TEST(r431.starts_with("HTTP/1.1 431"));
    auto r417 = raw("POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nExpect: magic\r\nContent-Length: 2\r\n\r\n{}");
    BOOST_TEST(r417.starts_with("HTTP/1.1 417"));
}

// RFC 9112 section 6: a body whose length cannot be known for sure is
// answered 400 and the connection closed, so what follows the headers is
// never run as a request of its own (request smuggling).
BOOST_AUTO_TEST_CASE(ambiguous_framing_is_400_and_closes_so_nothing_is_smuggled) {
    const std::string smuggled = "DELETE /api/v1/sessions/victim?reason=smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::vector<std::string> framings = {
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
        "Transfer-Encoding: gzip\r\nContent-Length: 0\r\n",
        "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: 0\r\nContent-Length: 5\r\n",
        "Content-Length: 0, 5\r\n",
    };
    BOOST_REQUIRE(call(bhttp::verb::post, "/api/v1/sessions", R"({"id":"victim"})").status == 201u);
    for (const auto& framing : framings) {
        BOOST_TEST_CONTEXT(framing) {
            auto r = raw_until_close(port,
                                     "POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
                                         framing + "\r\n" + smuggled,
                                     3s);
            BOOST_TEST(r.text.starts_with("HTTP/1.1 400"), r.text);
            BOOST_TEST(count_of(r.text, "HTTP/1.1 ") == 1u, r.text);  // one answer: the DELETE never ran
            BOOST_TEST(r.closed);
            BOOST_TEST((r.took < 2s));  // closed at once, not at the 5 s idle timeout
            BOOST_TEST(call(bhttp::verb::get, "/api/v1/sessions/victim").json.at("status") == "active");
        }
    }
    // HTTP/1.0 knows no Transfer-Encoding: its framing is not to be trusted.
    auto old = raw_until_close(port,
                               "POST /api/v1/sessions HTTP/1.0\r\nContent-Type: application/json\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                               3s);
    BOOST_TEST(old.text.starts_with("HTTP/1.1 400"), old.text);
    BOOST_TEST(old.closed);
    // A chunked body is still read as one.
    auto chunked = raw("POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                       "e\r\n{\"id\":\"chunk\"}\r\n0\r\n\r\n");
    BOOST_TEST(chunked.starts_with("HTTP/1.1 201"), chunked);
    BOOST_TEST(call(bhttp::verb::get, "/api/v1/sessions/victim").json.at("status") == "active");
}

// Input that a lenient server would guess at is refused, naming the field.
BOOST_AUTO_TEST_CASE(lenient_input_is_refused_naming_what_was_wrong) {
    auto says = [](const reply& r, std::string_view needle) {
        return r.status == 400u && r.json.is_object() &&
               r.json.at("message").as_string().find(needle) != boost::json::string::npos;
    };
    auto null_id = call(bhttp::verb::post, "/api/v1/sessions", R"({"id":null})");
    BOOST_TEST(says(null_id, "'id'"), null_id.status << " " << null_id.body);
    auto twice = call(bhttp::verb::post, "/api/v1/sessions", R"({"id":"d1","id":"d2"})");
    BOOST_TEST(says(twice, "duplicate key 'id'"), twice.status << " " << twice.body);
    auto nested = call(bhttp::verb::post, "/api/v1/sessions", R"({"id":"d3","attributes":{"k":1,"k":2}})");
    BOOST_TEST(says(nested, "duplicate key 'k'"), nested.status << " " << nested.body);
    call(bhttp::verb::post, "/api/v1/sessions", R"({"id":"d4"})");
    auto patch_twice = call(bhttp::verb::patch, "/api/v1/sessions/d4", R"({"status":"idle","status":"active"})");
    BOOST_TEST(says(patch_twice, "duplicate key 'status'"), patch_twice.status << " " << patch_twice.body);
    auto empty = raw("POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n");
    BOOST_TEST(empty.starts_with("HTTP/1.1 400"), empty);
    BOOST_TEST(empty.find("empty body") != std::string::npos, empty);
    auto limit_twice = call(bhttp::verb::get, "/api/v1/sessions?limit=1&limit=2");
    BOOST_TEST(says(limit_twice, "'limit' given twice"), limit_twice.status << " " << limit_twice.body);
    auto garbage = call(bhttp::verb::get, "/api/v1/sessions?cursor=xyz");
    BOOST_TEST(says(garbage, "cursor 'xyz'"), garbage.status << " " << garbage.body);
    // Nothing was created by any of them.
    auto st = call(bhttp::verb::get, "/api/v1/sessions/stats");
    BOOST_TEST(st.json.at("created_total") == 1);
}

BOOST_AUTO_TEST_CASE(keep_alive_serves_many_requests_on_one_connection) {
    asio::io_context ctx;
    beast::tcp_stream stream(ctx);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    for (int i = 0; i < 50; ++i) {
        bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/healthz", 11};
        req.set(bhttp::field::host, "x");
        bhttp::write(stream, req);
        BOOST_REQUIRE(read_reply(stream).status == 200u);
    }
    BOOST_TEST(server->connections() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

// sessiond names its store: "store" in /healthz's answers, and the backend
// and where it is in the 503's message.
BOOST_AUTO_TEST_CASE(healthz_names_the_store) {
    fixture f({}, fixture::small_limits(), [](handler_t& h) {
        h.store_name = "switchable";
        h.store_description = "Switchable db://somewhere";
    });
    auto up = f.call(bhttp::verb::get, "/healthz");
    BOOST_TEST(up.status == 200u);
    BOOST_TEST(up.body == "{\"status\":\"ok\",\"store\":\"switchable\"}\n");
    f.store.down = true;
    auto down = f.call(bhttp::verb::get, "/healthz");
    BOOST_TEST(down.status == 503u);
    BOOST_TEST(down.headers[bhttp::field::retry_after] == "1");
    BOOST_TEST(down.json.at("error") == "unavailable");
    BOOST_TEST(down.json.at("store") == "switchable");
    const std::string message(down.json.at("message").as_string());
    BOOST_TEST(
        message.starts_with(
            "the session store (Switchable db://somewhere) does not answer: switchable_store.ping: switched off"),
        message);
    f.store.down = false;
    BOOST_TEST(f.call(bhttp::verb::get, "/healthz").status == 200u);
}

BOOST_AUTO_TEST_CASE(a_configured_token_is_required) {
    fixture f("t0ken");
    auto none = f.call(bhttp::verb::get, "/api/v1/sessions/x");
    BOOST_TEST(none.status == 401u);
    BOOST_TEST(none.headers[bhttp::field::www_authenticate] == "Bearer");
    BOOST_TEST(f.call(bhttp::verb::get, "/api/v1/sessions/x", {}, {{"Authorization", "Bearer wrong"}}).status == 401u);
    BOOST_TEST(f.call(bhttp::verb::get, "/api/v1/sessions/x", {}, {{"Authorization", "Bearer t0ken"}}).status == 404u);
    BOOST_TEST(f.call(bhttp::verb::get, "/healthz").status == 200u);
}

BOOST_AUTO_TEST_CASE(connections_over_the_limit_get_503) {
    auto opts = fixture::small_limits();
    opts.max_connections = 1;
    fixture f({}, opts);
    asio::io_context ctx;
    beast::tcp_stream held(ctx);
    held.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), f.port));
    // The held connection is admitted once the server has accepted it.
    bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/healthz", 11};
    req.set(bhttp::field::host, "x");
    bhttp::write(held, req);
    BOOST_REQUIRE(fixture::read_reply(held).status == 200u);
    auto refused = f.call(bhttp::verb::get, "/healthz");
    BOOST_TEST(refused.status == 503u);
    BOOST_TEST(code_of(refused) == "unavailable");
}

BOOST_AUTO_TEST_CASE(slow_and_idle_clients_are_timed_out) {
    auto opts = fixture::small_limits();
    opts.header_timeout = 300ms;
    opts.idle_timeout = 300ms;
    fixture f({}, opts);
    // Slowloris: a request that never finishes is cut off at the header timeout.
    auto before = std::chrono::steady_clock::now();
    auto slow = f.raw("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    BOOST_TEST(slow.empty());
    BOOST_TEST((std::chrono::steady_clock::now() - before < 3s));
    // An idle keep-alive connection is closed after the idle timeout.
    asio::io_context ctx;
    tcp::socket s(ctx);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), f.port));
    auto start = std::chrono::steady_clock::now();
    char buf[16];
    boost::system::error_code ec;
    s.read_some(asio::buffer(buf), ec);
    BOOST_TEST((ec == asio::error::eof || ec == asio::error::connection_reset));
    BOOST_TEST((std::chrono::steady_clock::now() - start < 3s));
}

BOOST_AUTO_TEST_CASE(stop_closes_idle_connections_and_returns_promptly) {
    auto f = std::make_unique<fixture>(std::string{});
    asio::io_context ctx;
    beast::tcp_stream idle(ctx);
    idle.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), f->port));
    bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/healthz", 11};
    req.set(bhttp::field::host, "x");
    bhttp::write(idle, req);
    BOOST_REQUIRE(fixture::read_reply(idle).status == 200u);  // now idle, kept alive
    auto start = std::chrono::steady_clock::now();
    f.reset();  // stop() + join: must not wait for the idle connection's timeout
    BOOST_TEST((std::chrono::steady_clock::now() - start < 2s));
    char buf[16];
    boost::system::error_code ec;
    idle.socket().read_some(asio::buffer(buf), ec);
    BOOST_TEST(!!ec);  // closed by the server
}

BOOST_AUTO_TEST_CASE(fifty_clients_of_two_hundred_requests_add_up) {
    fixture f;
    constexpr int clients = 50, per_client = 200;
    std::atomic<int> unexpected{0}, creates{0}, deletes{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
        threads.emplace_back([&, c] {
            asio::io_context ctx;
            beast::tcp_stream stream(ctx);
            stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), f.port));
            for (int i = 0; i < per_client; ++i) {
                // Each client owns ids c-0..c-9 and cycles create, get, touch, patch, delete.
                std::string id = "c" + std::to_string(c) + "-" + std::to_string((i / 5) % 10);
                bhttp::request<bhttp::string_body> req;
                req.version(11);
                req.set(bhttp::field::host, "x");
                unsigned expected = 200;
                switch (i % 5) {
                case 0:
                    req.method(bhttp::verb::post);
                    req.target("/api/v1/sessions");
                    req.set(bhttp::field::content_type, "application/json");
                    req.body() = R"({"id":")" + id + R"(","owner":"c)" + std::to_string(c) + "\"}";
                    expected = 201;
                    break;
                case 1:
                    req.method(bhttp::verb::get);
                    req.target("/api/v1/sessions/" + id);
                    break;
                case 2:
                    req.method(bhttp::verb::post);
                    req.target("/api/v1/sessions/" + id + "/touch");
                    break;
                case 3:
                    req.method(bhttp::verb::patch);
                    req.target("/api/v1/sessions/" + id);
                    req.set(bhttp::field::content_type, "application/json");
                    req.body() = R"({"attributes":{"i":)" + std::to_string(i) + "}}";
                    break;
                default:
                    req.method(bhttp::verb::delete_);
                    req.target("/api/v1/sessions/" + id);
                    break;
                }
                req.prepare_payload();
                bhttp::write(stream, req);
                auto r = fixture::read_reply(stream);
                if (r.status != expected) ++unexpected;
                if (i % 5 == 0 && r.status == 201) ++creates;
                if (i % 5 == 4 && r.status == 200) ++deletes;
            }
        });
    for (auto& t : threads) t.join();
    BOOST_TEST(unexpected.load() == 0);
    // Ids repeat after 10 rounds; each round's create makes a new session
    // over the finished one, so every create is a real creation.
    BOOST_TEST(creates.load() == clients * per_client / 5);
    BOOST_TEST(deletes.load() == clients * per_client / 5);
    auto st = f.call(bhttp::verb::get, "/api/v1/sessions/stats");
    BOOST_TEST(st.json.at("created_total") == clients * per_client / 5);
    BOOST_TEST(st.json.at("terminated_total") == clients * per_client / 5);
    BOOST_TEST(st.json.at("by_status").at("active") == 0);
    BOOST_TEST(st.json.at("sessions") == clients * 10);
    auto m = f.call(bhttp::verb::get, "/metrics");
    BOOST_TEST(m.body.find("sessionkit_http_request_duration_seconds_count{route=\"touch\",code=\"200\"} " +
                           std::to_string(clients * per_client / 5)) != std::string::npos);
}
