// The HTTP API's routing and validation, without a socket.
#include <sessionkit/http/handler.hpp>
#include <sessionkit/http/router.hpp>

#include <sessionkit/sessionkit.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

using namespace sessionkit;
using namespace sessionkit::http;
namespace bhttp = boost::beast::http;

namespace {

request make(bhttp::verb method, std::string target, std::string body = {},
             std::string content_type = "application/json") {
    request req{method, target, 11};
    req.set(bhttp::field::host, "localhost");
    if (!body.empty() || method == bhttp::verb::patch || method == bhttp::verb::post) {
        req.body() = std::move(body);
        if (!content_type.empty()) req.set(bhttp::field::content_type, content_type);
        req.prepare_payload();
    }
    return req;
}

routed ok(const request& req, const router_options& cfg = {}) {
    auto r = route(req, cfg);
    if (auto* e = std::get_if<api_error>(&r)) BOOST_FAIL("unexpected " << e->status << " " << e->message);
    return std::get<routed>(std::move(r));
}

api_error refused(const request& req, unsigned status, const router_options& cfg = {}) {
    auto r = route(req, cfg);
    BOOST_REQUIRE_MESSAGE(std::holds_alternative<api_error>(r), "expected an error " << status);
    auto e = std::get<api_error>(std::move(r));
    BOOST_TEST(e.status == status, "status " << e.status << ": " << e.message);
    return e;
}

bool says(const api_error& e, std::string_view needle) { return e.message.find(needle) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(http_router)

BOOST_AUTO_TEST_CASE(every_endpoint_routes) {
    BOOST_TEST(ok(make(bhttp::verb::post, "/api/v1/sessions", "{}")).route == route_id::create);
    BOOST_TEST(ok(make(bhttp::verb::get, "/api/v1/sessions?owner=a&status=idle&limit=5&cursor=x1")).route ==
               route_id::list);
    BOOST_TEST(ok(make(bhttp::verb::get, "/api/v1/sessions/stats")).route == route_id::stats);
    BOOST_TEST(ok(make(bhttp::verb::get, "/api/v1/sessions/s1")).route == route_id::get);
    BOOST_TEST(ok(make(bhttp::verb::patch, "/api/v1/sessions/s1", R"({"status":"idle"})")).route == route_id::patch);
    BOOST_TEST(ok(make(bhttp::verb::delete_, "/api/v1/sessions/s1?reason=logout")).route == route_id::remove);
    BOOST_TEST(ok(make(bhttp::verb::post, "/api/v1/sessions/s1/touch")).route == route_id::touch);
    BOOST_TEST(ok(make(bhttp::verb::post, "/api/v1/sessions/s1/input", "ls\n", "text/plain")).route == route_id::input);
    BOOST_TEST(ok(make(bhttp::verb::get, "/api/v1/sessions/s1/output?from=10")).route == route_id::output);
    BOOST_TEST(ok(make(bhttp::verb::get, "/healthz")).route == route_id::healthz);
    BOOST_TEST(ok(make(bhttp::verb::get, "/metrics")).route == route_id::metrics);
}

BOOST_AUTO_TEST_CASE(create_reads_and_checks_its_fields) {
    auto r = ok(make(bhttp::verb::post, "/api/v1/sessions",
                     R"({"id":"abc","owner":"ann","attributes":{"k":1},"idle_timeout_s":30,"max_lifetime_s":600})"));
    auto& c = std::get<create_cmd>(r.cmd);
    BOOST_TEST(*c.id == "abc");
    BOOST_TEST(c.options.owner == "ann");
    BOOST_TEST((c.options.idle_timeout == std::chrono::seconds{30}));
    BOOST_TEST((c.options.max_lifetime == std::chrono::seconds{600}));
    BOOST_TEST(c.options.attributes.at("k") == 1);
    BOOST_TEST(!std::get<create_cmd>(ok(make(bhttp::verb::post, "/api/v1/sessions", "{}")).cmd).id);

    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"id":"a b"})"), 400), "'a b'"));
    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"id":7})"), 400), "'id' must be a string"));
    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"idle_timeout_s":"soon"})"), 400),
                    "'idle_timeout_s'"));
    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"idle_timeout_s":0})"), 400), "between 1"));
    BOOST_TEST(
        says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"attributes":[1]})"), 400), "'attributes'"));
    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"idel_timeout_s":5})"), 400),
                    "unknown field 'idel_timeout_s'"));
    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"id":)"), 400), "not valid JSON"));
    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", "[1,2]"), 400), "JSON object"));
    auto e = refused(make(bhttp::verb::post, "/api/v1/sessions", "id=1", "application/x-www-form-urlencoded"), 415);
    BOOST_TEST(e.code == "unsupported_media_type");
    ok(make(bhttp::verb::post, "/api/v1/sessions", "{}", "application/json; charset=utf-8"));
}

BOOST_AUTO_TEST_CASE(ids_in_paths_are_decoded_and_checked) {
    BOOST_TEST(refused(make(bhttp::verb::get, "/api/v1/sessions/a%20b"), 400).code == "invalid_id");
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/sessions/a%0Ab"), 400), "a\\x0ab"));
    BOOST_TEST(refused(make(bhttp::verb::get, "/api/v1/sessions/" + std::string(129, 'x')), 400).code == "invalid_id");
    BOOST_TEST(refused(make(bhttp::verb::get, "/api/v1/sessions/%C3%A9"), 400).code == "invalid_id");
    BOOST_TEST(std::get<get_cmd>(ok(make(bhttp::verb::get, "/api/v1/sessions/a%3Ab")).cmd).id == "a:b");
}

BOOST_AUTO_TEST_CASE(wrong_methods_and_paths) {
    auto e = refused(make(bhttp::verb::put, "/api/v1/sessions/s1"), 405);
    BOOST_TEST(e.allow == "GET, HEAD, PATCH, DELETE");
    BOOST_TEST(refused(make(bhttp::verb::get, "/api/v1/sessions/s1/touch"), 405).allow == "POST");
    BOOST_TEST(refused(make(bhttp::verb::post, "/healthz"), 405).allow == "GET, HEAD");
    BOOST_TEST(refused(make(bhttp::verb::delete_, "/api/v1/sessions"), 405).allow == "GET, HEAD, POST");
    BOOST_TEST(refused(make(bhttp::verb::get, "/api/v2/sessions"), 404).code == "not_found");
    BOOST_TEST(refused(make(bhttp::verb::get, "/api/v1/sessions/s1/nope"), 404).code == "not_found");
    BOOST_TEST(refused(make(bhttp::verb::get, "/"), 404).code == "not_found");
    BOOST_TEST(refused(make(bhttp::verb::get, "http://[bad"), 400).code == "invalid_target");
    // Parameters on endpoints that take none are typos, not options.
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/sessions/s1?verbose=1"), 400), "'verbose'"));
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/healthz?x=1"), 400), "'x'"));
    // HTTP/1.1 needs a Host.
    request no_host{bhttp::verb::get, "/healthz", 11};
    BOOST_TEST(says(refused(no_host, 400), "Host"));
    // "stats" is the counts, never a session; "." and ".." cannot be ids.
    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"id":"stats"})"), 400), "reserved"));
    BOOST_TEST(refused(make(bhttp::verb::get, "/api/v1/sessions/.."), 400).code == "invalid_id");
    BOOST_TEST(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"id":".."})"), 400).code == "invalid_id");
}

BOOST_AUTO_TEST_CASE(list_parameters_are_checked) {
    auto l = std::get<list_cmd>(
        ok(make(bhttp::verb::get, "/api/v1/sessions?owner=ann%20b&status=waiting_input&limit=7")).cmd);
    BOOST_TEST(*l.query.owner == "ann b");
    BOOST_TEST(*l.query.status == session_status::waiting_input);
    BOOST_TEST(l.query.limit == 7u);
    BOOST_TEST(refused(make(bhttp::verb::get, "/api/v1/sessions?status=napping"), 400).code == "unknown_status");
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/sessions?limit=0"), 400), "'limit'"));
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/sessions?limit=1001"), 400), "'limit'"));
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/sessions?limit=ten"), 400), "'limit'"));
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/sessions?cursor=a%20b"), 400), "'cursor'"));
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/sessions?sort=id"), 400), "'sort'"));
}

BOOST_AUTO_TEST_CASE(lenient_input_is_refused_naming_the_field) {
    // null is not "absent": a client that sends it has a bug to hear about.
    BOOST_TEST(
        says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"id":null})"), 400), "'id' must be a string"));
    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"owner":null})"), 400), "'owner'"));
    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"idle_timeout_s":null})"), 400),
                    "'idle_timeout_s'"));
    BOOST_TEST(says(refused(make(bhttp::verb::patch, "/api/v1/sessions/s1", R"({"status":null})"), 400), "'status'"));
    // A duplicate key would silently take the last value.
    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"id":"a","id":"b"})"), 400),
                    "duplicate key 'id'"));
    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", R"({"attributes":{"x":{"k":1,"k":1}}})"), 400),
                    "duplicate key 'k'"));
    BOOST_TEST(
        says(refused(make(bhttp::verb::patch, "/api/v1/sessions/s1", R"({"status":"idle","status":"active"})"), 400),
             "duplicate key 'status'"));
    // The same key in sibling objects, or a key equal to a value, is fine.
    ok(make(bhttp::verb::post, "/api/v1/sessions",
            R"({"attributes":{"a":{"k":1},"b":{"k":"k"},"k":[{"k":1},{"k":2}]}})"));
    // An empty body is not {}.
    BOOST_TEST(says(refused(make(bhttp::verb::post, "/api/v1/sessions", ""), 400), "empty body"));
    // A query parameter given twice would silently take one of its values.
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/sessions?limit=1&limit=2"), 400), "'limit' given twice"));
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/sessions?owner=a&owner=a"), 400), "'owner' given twice"));
    BOOST_TEST(says(refused(make(bhttp::verb::delete_, "/api/v1/sessions/s1?reason=a&reason=b"), 400),
                    "'reason' given twice"));
    BOOST_TEST(
        says(refused(make(bhttp::verb::get, "/api/v1/sessions/s1/output?from=1&from=2"), 400), "'from' given twice"));
}

BOOST_AUTO_TEST_CASE(a_cursor_the_store_did_not_issue_is_400_naming_it) {
    memory_store store;
    session_registry<memory_store> registry(store);
    api_metrics metrics;
    api_handler<session_registry<memory_store>> handler(registry, {}, metrics);
    auto answer = [&](const request& req) {
        boost::asio::io_context ctx;
        auto f = boost::asio::co_spawn(ctx, handler.handle(req), boost::asio::use_future);
        ctx.run();
        return f.get().res;
    };
    for (int i = 0; i < 3; ++i)
        answer(make(bhttp::verb::post, "/api/v1/sessions", R"({"id":"c)" + std::to_string(i) + "\"}"));
    auto first = answer(make(bhttp::verb::get, "/api/v1/sessions?limit=2"));
    BOOST_REQUIRE_EQUAL(first.result_int(), 200u);
    const auto cursor = std::string(boost::json::parse(first.body()).at("next_cursor").as_string());
    auto second = answer(make(bhttp::verb::get, "/api/v1/sessions?limit=2&cursor=" + cursor));
    BOOST_TEST(second.result_int() == 200u);
    BOOST_TEST(boost::json::parse(second.body()).at("sessions").as_array().at(0).at("id") == "c2");
    // Looks like an id, but no page ever ended there: refused, not guessed at.
    auto garbage = answer(make(bhttp::verb::get, "/api/v1/sessions?cursor=xyz"));
    BOOST_TEST(garbage.result_int() == 400u);
    BOOST_TEST(garbage.body().find("cursor 'xyz'") != std::string::npos, garbage.body());
}

BOOST_AUTO_TEST_CASE(patch_reads_status_attributes_and_if_match) {
    auto req = make(bhttp::verb::patch, "/api/v1/sessions/s1", R"({"status":"idle","attributes":{"a":null,"b":2}})");
    req.set(bhttp::field::if_match, "\"7\"");
    auto p = std::get<patch_cmd>(ok(req).cmd);
    BOOST_TEST(*p.status == session_status::idle);
    BOOST_TEST(*p.if_match == 7u);
    BOOST_TEST(p.attributes->at("b") == 2);
    BOOST_TEST(refused(make(bhttp::verb::patch, "/api/v1/sessions/s1", R"({"status":"zombie"})"), 400).code ==
               "unknown_status");
    BOOST_TEST(says(refused(make(bhttp::verb::patch, "/api/v1/sessions/s1", R"({"owner":"x"})"), 400), "'owner'"));
    req.set(bhttp::field::if_match, "*");
    BOOST_TEST(!std::get<patch_cmd>(ok(req).cmd).if_match.has_value());
    req.set(bhttp::field::if_match, "W/\"x\"");
    BOOST_TEST(says(refused(req, 400), "If-Match"));
    request no_length{bhttp::verb::patch, "/api/v1/sessions/s1", 11};
    no_length.set(bhttp::field::host, "x");
    BOOST_TEST(refused(no_length, 411).code == "length_required");
}

BOOST_AUTO_TEST_CASE(delete_reason_and_output_offset_are_checked) {
    BOOST_TEST(std::get<delete_cmd>(ok(make(bhttp::verb::delete_, "/api/v1/sessions/s1")).cmd).reason == "deleted");
    BOOST_TEST(says(refused(make(bhttp::verb::delete_, "/api/v1/sessions/s1?reason=a%0Ab"), 400), "'reason'"));
    BOOST_TEST(says(refused(make(bhttp::verb::delete_, "/api/v1/sessions/s1?why=x"), 400), "'why'"));
    BOOST_TEST(std::get<output_cmd>(ok(make(bhttp::verb::get, "/api/v1/sessions/s1/output?from=42")).cmd).from == 42u);
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/sessions/s1/output?from=-1"), 400), "'from'"));
}

BOOST_AUTO_TEST_CASE(follow_parameters_are_checked) {
    auto out = std::get<output_cmd>(ok(make(bhttp::verb::get, "/api/v1/sessions/s1/output?follow=1&from=3")).cmd);
    BOOST_TEST(out.follow);
    BOOST_TEST(out.from == 3u);
    BOOST_TEST(!std::get<output_cmd>(ok(make(bhttp::verb::get, "/api/v1/sessions/s1/output?follow=false")).cmd).follow);
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/sessions/s1/output?follow=yes"), 400), "'follow'"));
    // A reconnecting EventSource sends the last id it saw: the offset.
    auto resumed = make(bhttp::verb::get, "/api/v1/sessions/s1/output?follow=1&from=3");
    resumed.set("Last-Event-ID", "17");
    BOOST_TEST(std::get<output_cmd>(ok(resumed).cmd).from == 17u);
    resumed.set("Last-Event-ID", "x");
    BOOST_TEST(says(refused(resumed, 400), "Last-Event-ID"));

    auto ev = ok(make(bhttp::verb::get, "/api/v1/events?follow=1&session=s1&type=created,expired,created"));
    BOOST_TEST(ev.route == route_id::events);
    auto cmd = std::get<events_cmd>(ev.cmd);
    BOOST_TEST(cmd.follow);
    BOOST_TEST(cmd.session.value_or("") == "s1");
    BOOST_REQUIRE(cmd.types.size() == 2u);
    BOOST_TEST((cmd.types[1] == event_type::expired));
    BOOST_TEST(!std::get<events_cmd>(ok(make(bhttp::verb::get, "/api/v1/events")).cmd).follow);
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/events?type=created,nope"), 400), "'nope'"));
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/events?type="), 400), "unknown event type"));
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/events?session=a%20b"), 400), "a"));
    BOOST_TEST(says(refused(make(bhttp::verb::get, "/api/v1/events?since=1"), 400), "'since'"));
    refused(make(bhttp::verb::post, "/api/v1/events"), 405);
    refused(make(bhttp::verb::get, "/api/v1/events/x"), 404);
    auto after = make(bhttp::verb::get, "/api/v1/events?follow=1");
    after.set("Last-Event-ID", "01hx");
    BOOST_TEST(std::get<events_cmd>(ok(after).cmd).last_event_id == "01hx");
    after.set("Last-Event-ID", "a\"b");
    BOOST_TEST(says(refused(after, 400), "Last-Event-ID"));
    // The token guards the events too.
    refused(make(bhttp::verb::get, "/api/v1/events"), 401, router_options{"s3cret"});
}

BOOST_AUTO_TEST_CASE(a_configured_token_guards_the_api_but_not_health) {
    router_options cfg{"s3cret"};
    auto e = refused(make(bhttp::verb::get, "/api/v1/sessions/s1"), 401, cfg);
    BOOST_TEST(says(e, "Bearer"));
    auto wrong = make(bhttp::verb::get, "/api/v1/sessions/s1");
    wrong.set(bhttp::field::authorization, "Bearer s3cre7");
    BOOST_TEST(says(refused(wrong, 401, cfg), "not valid"));
    wrong.set(bhttp::field::authorization, "Bearer s3cret");
    ok(wrong, cfg);
    wrong.set(bhttp::field::authorization, "bearer s3cret");
    ok(wrong, cfg);
    ok(make(bhttp::verb::get, "/healthz"), cfg);
    ok(make(bhttp::verb::get, "/metrics"), cfg);
}

BOOST_AUTO_TEST_CASE(only_a_certain_body_length_passes_the_framing_check) {
    auto framed = [](std::vector<std::pair<bhttp::field, std::string>> fields, unsigned version = 11) {
        request req{bhttp::verb::post, "/api/v1/sessions", version};
        for (auto& [name, value] : fields) req.insert(name, value);
        return framing_error(req);
    };
    using F = bhttp::field;
    BOOST_TEST(!framed({}));
    BOOST_TEST(!framed({{F::content_length, "12"}}));
    BOOST_TEST(!framed({{F::transfer_encoding, "chunked"}}));
    BOOST_TEST(!framed({{F::transfer_encoding, "Chunked"}}));
    BOOST_TEST(!framed({{F::content_length, "2"}}, 10));
    // The last coding is not chunked: where the body ends is unknown.
    for (std::string te : {"gzip", "identity", "chunked, gzip", "xchunked", "chunked;x=1", "", ", ,"}) {
        auto e = framed({{F::transfer_encoding, te}});
        BOOST_REQUIRE_MESSAGE(e, "Transfer-Encoding '" << te << "' passed");
        BOOST_TEST(e->status == 400u);
        BOOST_TEST(says(*e, "Transfer-Encoding '" + te + "'"), e->message);
    }
    // Also split over two fields, or chunked after another coding (not supported).
    BOOST_TEST(says(*framed({{F::transfer_encoding, "chunked"}, {F::transfer_encoding, "gzip"}}), "'chunked, gzip'"));
    BOOST_TEST(says(*framed({{F::transfer_encoding, "gzip"}, {F::transfer_encoding, "chunked"}}), "only chunked"));
    BOOST_TEST(says(*framed({{F::transfer_encoding, "chunked, chunked"}}), "only chunked"));
    // Two framings, or one HTTP/1.0 cannot have.
    BOOST_TEST(says(*framed({{F::transfer_encoding, "chunked"}, {F::content_length, "5"}}), "both"));
    BOOST_TEST(says(*framed({{F::content_length, "5"}, {F::transfer_encoding, "gzip"}}), "both"));
    BOOST_TEST(says(*framed({{F::transfer_encoding, "chunked"}}, 10), "HTTP/1.0"));
    // Content-Length: one field, digits only; equal repeats are refused too.
    BOOST_TEST(says(*framed({{F::content_length, "5"}, {F::content_length, "5"}}), "given 2 times"));
    BOOST_TEST(says(*framed({{F::content_length, "5"}, {F::content_length, "7"}}), "given 2 times"));
    for (std::string cl : {"5, 5", "+5", "-1", "0x10", "", "5 5", "99999999999999999999"})
        BOOST_TEST(says(*framed({{F::content_length, cl}}), "Content-Length '"), cl);
}

BOOST_AUTO_TEST_CASE(merge_patch_follows_rfc_7386) {
    boost::json::object target{{"a", 1}, {"b", {{"x", 1}, {"y", 2}}}, {"c", 3}};
    merge_patch(target, boost::json::object{{"a", nullptr}, {"b", {{"y", nullptr}, {"z", 3}}}, {"d", "new"}});
    BOOST_TEST((target == boost::json::parse(R"({"b":{"x":1,"z":3},"c":3,"d":"new"})").as_object()),
               boost::json::serialize(target));
}

BOOST_AUTO_TEST_CASE(error_responses_are_json_with_the_right_headers) {
    auto res = error_response({405, "method_not_allowed", "PUT is not allowed", "GET"});
    BOOST_TEST(res.result_int() == 405u);
    BOOST_TEST(res[bhttp::field::allow] == "GET");
    BOOST_TEST(res[bhttp::field::content_type] == "application/json");
    auto body = boost::json::parse(res.body());
    BOOST_TEST(body.at("error") == "method_not_allowed");
    BOOST_TEST(error_response({503, "unavailable", "down", {}})[bhttp::field::retry_after] == "1");
    BOOST_TEST(error_response({401, "unauthorized", "no", {}})[bhttp::field::www_authenticate] == "Bearer");
}

BOOST_AUTO_TEST_CASE(events_dropped_is_read_at_scrape_time_when_a_sink_is_set) {
    api_metrics m;
    BOOST_TEST(m.render({}).find("sessionkit_events_dropped_total") == std::string::npos);
    std::uint64_t dropped = 3;
    m.events_dropped = [&dropped] { return dropped; };
    BOOST_TEST(m.render({}).find("\nsessionkit_events_dropped_total 3\n") != std::string::npos);
    dropped = 5;
    const auto text = m.render({});
    BOOST_TEST(text.find("# TYPE sessionkit_events_dropped_total counter\nsessionkit_events_dropped_total 5\n") !=
                   std::string::npos,
               text);
}

BOOST_AUTO_TEST_SUITE_END()
