// nats_sink's pure parts, without a server: subject encoding, option
// checks, the stream comparison, the in-flight tracker and the meaning of
// nats.c's answers. (test/integration/nats_sink_test.cpp runs the sink.)
#include <sessionkit/sink/nats/detail/dead_letter.hpp>
#include <sessionkit/sink/nats/detail/outcome.hpp>
#include <sessionkit/sink/nats/detail/stream.hpp>
#include <sessionkit/sink/nats/detail/subject.hpp>
#include <sessionkit/sink/nats/detail/tracker.hpp>
#include <sessionkit/sink/nats/options.hpp>

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using namespace sessionkit;
namespace nd = sessionkit::detail::nats;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// The message validate() throws for `o` (failing the test if it accepts).
std::string refusal(const nats_sink_options& o) {
    try {
        validate(o);
    } catch (const boost::system::system_error& e) {
        BOOST_TEST((e.code() == error::invalid_argument));
        return e.what();
    }
    BOOST_FAIL("validate accepted the options");
    return {};
}

std::string url_refusal(std::string_view url) {
    nats_sink_options o;
    o.url = std::string(url);
    return refusal(o);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nats_subjects)

BOOST_AUTO_TEST_CASE(ids_without_dots_are_their_own_token) {
    BOOST_TEST(nd::encode_subject_token("alice-1") == "alice-1");
    BOOST_TEST(nd::encode_subject_token("ghost:session:host_1") == "ghost:session:host_1");
    BOOST_TEST(nd::encode_subject_token("ABCxyz0189") == "ABCxyz0189");
}

BOOST_AUTO_TEST_CASE(dots_and_percent_signs_are_encoded) {
    BOOST_TEST(nd::encode_subject_token("a.b") == "a%2Eb");
    BOOST_TEST(nd::encode_subject_token("..") == "%2E%2E");
    BOOST_TEST(nd::encode_subject_token("50%") == "50%25");
    BOOST_TEST(nd::encode_subject_token("%2E") == "%252E");  // not confused with an encoded dot
    // Not in a valid id, but never a wildcard, a space or a separator either.
    BOOST_TEST(nd::encode_subject_token("a*b>c d") == "a%2Ab%3Ec%20d");
    BOOST_TEST(nd::encode_subject_token("\xc3\xa9") == "%C3%A9");
}

BOOST_AUTO_TEST_CASE(every_token_decodes_back_to_its_id) {
    const std::vector<std::string> ids{"a",       "a.b",    "a..b",       ".start", "end.",          "%",   "%%2E",
                                       "x:y-z_w", "v1.2.3", "1.2.3.4:80", "a%25b",  "A.B.C.D.E.F.G", "-_.:"};
    for (const auto& id : ids) {
        const std::string token = nd::encode_subject_token(id);
        BOOST_TEST_CONTEXT(id) {
            BOOST_TEST(token.find('.') == std::string::npos);
            BOOST_TEST(nd::valid_subject("sessions.created." + token, false));
            auto back = nd::decode_subject_token(token);
            BOOST_TEST_REQUIRE(back.has_value());
            BOOST_TEST(*back == id);
        }
    }
}

BOOST_AUTO_TEST_CASE(tokens_the_encoder_never_writes_do_not_decode) {
    for (std::string bad : {"%", "%2", "a%", "%zz", "%2e", "%41", "a.b", "a b", "%G0"}) BOOST_TEST_CONTEXT(bad) {
            BOOST_TEST(!nd::decode_subject_token(bad).has_value());
        }
}

BOOST_AUTO_TEST_CASE(the_subject_is_prefix_type_and_encoded_id) {
    const auto e = event{"ev1", event_type::expired, "a.b", from_unix_ms(1), {}};
    BOOST_TEST(nd::event_subject("sessions", e) == "sessions.expired.a%2Eb");
    const auto w = event{"ev2", event_type::timeout_warning, "alice", from_unix_ms(1), {}};
    BOOST_TEST(nd::event_subject("acme.sessions", w) == "acme.sessions.timeout_warning.alice");
    const auto store_wide = event{"ev3", event_type::store_degraded, "", from_unix_ms(1), {}};
    BOOST_TEST(nd::event_subject("sessions", store_wide) == "sessions.store_degraded._");
}

BOOST_AUTO_TEST_CASE(subjects_and_wildcards) {
    BOOST_TEST(nd::valid_subject("sessions.>", true));
    BOOST_TEST(nd::valid_subject("sessions.*.x", true));
    BOOST_TEST(!nd::valid_subject("sessions.>", false));
    BOOST_TEST(!nd::valid_subject("sessions.>.x", true));
    BOOST_TEST(!nd::valid_subject("sessions..x", true));
    BOOST_TEST(!nd::valid_subject("sessions.", true));
    BOOST_TEST(!nd::valid_subject("", true));
    BOOST_TEST(!nd::valid_subject("a b", true));
    BOOST_TEST(!nd::valid_subject("a*", true));

    BOOST_TEST(nd::subject_matches("sessions.>", "sessions.created.a"));
    BOOST_TEST(!nd::subject_matches("sessions.>", "sessions"));
    BOOST_TEST(nd::subject_matches("sessions.*.*", "sessions.created.a"));
    BOOST_TEST(!nd::subject_matches("sessions.*", "sessions.created.a"));
    BOOST_TEST(nd::subject_matches("sessions.created.a", "sessions.created.a"));
    BOOST_TEST(!nd::subject_matches("sessions.created.a", "sessions.created.b"));
    BOOST_TEST(!nd::subject_matches("other.>", "sessions.created.a"));
    BOOST_TEST(nd::subject_matches(">", "x"));
}

BOOST_AUTO_TEST_CASE(stream_names) {
    BOOST_TEST(nd::valid_stream_name("SESSIONS"));
    BOOST_TEST(nd::valid_stream_name("sessions-test_1"));
    for (std::string bad : std::vector<std::string>{"", "A.B", "A B", "A*", "A>", "A/B", "A\\B", std::string(256, 'x')})
        BOOST_TEST_CONTEXT(bad) { BOOST_TEST(!nd::valid_stream_name(bad)); }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(nats_options)

BOOST_AUTO_TEST_CASE(the_defaults_are_valid) {
    nats_sink_options o;
    BOOST_CHECK_NO_THROW(validate(o));
    BOOST_TEST(o.stream == "SESSIONS");
    BOOST_TEST(o.subjects == std::vector<std::string>{"sessions.>"});
    BOOST_TEST(o.subject_prefix == "sessions");
    BOOST_TEST(o.duplicate_window.count() == 120'000);
}

BOOST_AUTO_TEST_CASE(urls_of_one_or_several_servers) {
    auto one = parse_nats_url("nats://127.0.0.1:4222");
    BOOST_TEST_REQUIRE(one.size() == 1u);
    BOOST_TEST(!one[0].tls);
    BOOST_TEST(one[0].host == "127.0.0.1");
    BOOST_TEST(one[0].port == 4222);
    BOOST_TEST(one[0].describe() == "nats://127.0.0.1:4222");

    auto several = parse_nats_url("nats://app:s3cret@a.example:4223, nats://b.example ,nats://[::1]:5000");
    BOOST_TEST_REQUIRE(several.size() == 3u);
    BOOST_TEST(several[0].user == "app");
    BOOST_TEST(several[0].password == "s3cret");
    BOOST_TEST(several[0].text == "nats://app:s3cret@a.example:4223");
    BOOST_TEST(several[1].host == "b.example");
    BOOST_TEST(several[1].port == 4222);
    BOOST_TEST(several[2].host == "[::1]");
    BOOST_TEST(several[2].port == 5000);
    BOOST_TEST(describe_servers(several) == "nats://a.example:4223,nats://b.example:4222,nats://[::1]:5000");

    auto tls = parse_nats_url("tls://tok3n@nats.example:4443");
    BOOST_TEST(tls[0].tls);
    BOOST_TEST(tls[0].user == "tok3n");
    BOOST_TEST(tls[0].describe() == "tls://nats.example:4443");
}

BOOST_AUTO_TEST_CASE(bad_urls_are_named_with_credentials_masked) {
    auto scheme = url_refusal("http://h:1");
    BOOST_TEST(contains(scheme, "nats_sink option url = 'http://h:1'"));
    BOOST_TEST(contains(scheme, "scheme 'http'"));
    BOOST_TEST(contains(url_refusal("127.0.0.1:4222"), "has no scheme"));
    BOOST_TEST(contains(url_refusal(""), "no server given"));
    BOOST_TEST(contains(url_refusal("nats://a:1,,nats://b:2"), "an empty server"));
    BOOST_TEST(contains(url_refusal("nats://h:0"), "port '0'"));
    BOOST_TEST(contains(url_refusal("nats://h:70000"), "port '70000'"));
    BOOST_TEST(contains(url_refusal("nats://h:x"), "port 'x'"));
    BOOST_TEST(contains(url_refusal("nats://h:"), "port ''"));
    BOOST_TEST(contains(url_refusal("nats://:4222"), "has no host"));
    BOOST_TEST(contains(url_refusal("nats://h:4222/path"), "a path"));
    BOOST_TEST(contains(url_refusal("nats://[::1:4222"), "IPv6"));
    BOOST_TEST(contains(url_refusal("nats://a:1,tls://b:2"), "mixes nats:// and tls://"));
    auto secret = url_refusal("nats://app:s3cret@h:99999");
    BOOST_TEST(contains(secret, "nats://***@h:99999"));
    BOOST_TEST(!contains(secret, "s3cret"));
    BOOST_TEST(!contains(url_refusal("nats://t0ken@h:x"), "t0ken"));
}

BOOST_AUTO_TEST_CASE(every_bad_option_is_named_with_its_value) {
    auto check = [](auto change, const std::string& field, const std::string& shown) {
        nats_sink_options o;
        change(o);
        const std::string what = refusal(o);
        BOOST_TEST_CONTEXT(what) {
            BOOST_TEST(contains(what, "nats_sink option " + field + " = "));
            BOOST_TEST(contains(what, shown));
        }
    };
    check([](auto& o) { o.duplicate_window = 60s; }, "duplicate_window", "60000 ms");
    check([](auto& o) { o.duplicate_window = 119'999ms; }, "duplicate_window", "119999 ms");
    check([](auto& o) { o.max_in_flight = 0; }, "max_in_flight", "0");
    check([](auto& o) { o.max_in_flight = 1'000'000; }, "max_in_flight", "1000000");
    check([](auto& o) { o.ack_deadline = 0ms; }, "ack_deadline", "0 ms");
    check([](auto& o) { o.connect_timeout = -5ms; }, "connect_timeout", "-5 ms");
    check([](auto& o) { o.drain_timeout = -1ms; }, "drain_timeout", "-1 ms");
    check([](auto& o) { o.stream = "SESSIONS.X"; }, "stream", "'SESSIONS.X'");
    check([](auto& o) { o.stream = ""; }, "stream", "''");
    check([](auto& o) { o.subjects = {}; }, "subjects", "[]");
    check([](auto& o) { o.subjects = {"sessions..>"}; }, "subjects", "'sessions..>'");
    check([](auto& o) { o.subjects = {"other.>"}; }, "subjects", "would not take in 'sessions.created.<id>'");
    check([](auto& o) { o.subjects = {"sessions.created.*"}; }, "subjects", "'sessions.status_changed.<id>'");
    check([](auto& o) { o.subject_prefix = "sessions.*"; }, "subject_prefix", "'sessions.*'");
    check([](auto& o) { o.subject_prefix = ""; }, "subject_prefix", "''");
    check(
        [](auto& o) {
            o.url = "nats://u:p@h:1";
            o.token = "t";
        },
        "token", "(hidden)");
    check([](auto& o) { o.token = "a b"; }, "token", "(hidden)");
    check(
        [](auto& o) {
            o.token = "t";
            o.credentials_file = "/x.creds";
        },
        "credentials_file", "'/x.creds'");
    check([](auto& o) { o.dead_letter_file = std::string("a\0b", 3); }, "dead_letter_file", "NUL");
}

BOOST_AUTO_TEST_CASE(matching_subjects_and_prefixes_are_accepted) {
    nats_sink_options o;
    o.subjects = {"acme.sessions.>", "unrelated.>"};
    o.subject_prefix = "acme.sessions";
    BOOST_CHECK_NO_THROW(validate(o));
    o.subjects = {"sessions.*.*"};
    o.subject_prefix = "sessions";
    o.duplicate_window = 10min;
    BOOST_CHECK_NO_THROW(validate(o));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(nats_stream_config)

BOOST_AUTO_TEST_CASE(an_existing_stream_must_match_subjects_storage_and_window) {
    const nd::stream_settings wanted{{"sessions.>"}, true, 2min};
    BOOST_TEST(!nd::incompatibility(wanted, {{"sessions.>"}, true, 2min}));
    BOOST_TEST(!nd::incompatibility(wanted, {{"sessions.>"}, true, 1h}));  // longer is fine
    BOOST_TEST(!nd::incompatibility({{"a.>", "b.>"}, true, 2min}, {{"b.>", "a.>"}, true, 5min}));
    BOOST_TEST(*nd::incompatibility(wanted, {{"sessions.*"}, true, 2min}) == "other subjects");
    BOOST_TEST(*nd::incompatibility(wanted, {{"sessions.>"}, false, 2min}) == "memory storage, not file");
    BOOST_TEST(*nd::incompatibility(wanted, {{"sessions.>"}, true, 1min}) == "a duplicate window under 2 minutes");
    BOOST_TEST(*nd::incompatibility(wanted, {{"x.>"}, false, 0s}) ==
               "other subjects; memory storage, not file; a duplicate window under 2 minutes");
    nd::stream_settings silent{{"sessions.>"}, true, 2min};
    silent.no_ack = true;
    BOOST_TEST(*nd::incompatibility(wanted, silent) == "no acknowledgements, so nothing could be confirmed");
    BOOST_TEST(silent.describe() == "subjects [sessions.>], file storage, duplicate window 120 s, no acknowledgements");
    nd::stream_settings sealed{{"sessions.>"}, true, 2min};
    sealed.sealed = true;
    BOOST_TEST(*nd::incompatibility(wanted, sealed) == "sealed");
}

BOOST_AUTO_TEST_CASE(configurations_are_described) {
    BOOST_TEST(nd::stream_settings({{"sessions.>"}, true, 2min}).describe() ==
               "subjects [sessions.>], file storage, duplicate window 120 s");
    BOOST_TEST(nd::stream_settings({{"a.>", "b.*"}, false, 1500ms}).describe() ==
               "subjects [a.>, b.*], memory storage, duplicate window 1500 ms");
    nats_sink_options o;
    o.duplicate_window = 5min;
    BOOST_TEST(nd::wanted_stream(o).describe() == "subjects [sessions.>], file storage, duplicate window 300 s");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(nats_tracker)

namespace {
const int keys[8] = {};  // distinct addresses to use as message keys
const void* key(int i) { return &keys[i]; }
nd::message_outcome stored() { return {nd::outcome_kind::stored, {}}; }
}  // namespace

BOOST_AUTO_TEST_CASE(a_batch_confirms_once_every_message_is_acknowledged) {
    nd::tracker t(16);
    const auto g = t.open(3);
    for (int i = 0; i < 3; ++i) t.sent(key(i), g, static_cast<std::size_t>(i));
    BOOST_TEST(t.in_flight() == 3u);
    auto s1 = t.answered(key(1));
    BOOST_TEST_REQUIRE(s1.has_value());
    BOOST_TEST(s1->generation == g);
    BOOST_TEST(s1->index == 1u);
    BOOST_TEST(!t.resolve(g, 1, stored()).has_value());
    BOOST_TEST(!t.resolve(g, 1, stored()).has_value());  // twice is once
    t.answered(key(0));
    BOOST_TEST(!t.resolve(g, 0, {nd::outcome_kind::duplicate, {}}).has_value());
    t.answered(key(2));
    auto c = t.resolve(g, 2, {nd::outcome_kind::refused, "too large"});  // dead-lettered: confirms
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST(c->ok);
    BOOST_TEST(c->generation == g);
    BOOST_TEST(t.in_flight() == 0u);
    BOOST_TEST(!t.is_open(g));
}

BOOST_AUTO_TEST_CASE(a_timeout_fails_the_batch_naming_the_first_unacknowledged_message) {
    nd::tracker t(16);
    const auto g = t.open(4);
    for (int i = 0; i < 4; ++i) t.sent(key(i), g, static_cast<std::size_t>(i));
    t.answered(key(0));
    t.resolve(g, 0, stored());
    t.answered(key(3));
    auto c = t.resolve(g, 3, {nd::outcome_kind::timeout, "no ack"});
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST(!c->ok);
    BOOST_TEST((c->code == error::timeout));
    BOOST_TEST(c->first_unconfirmed == 1u);
    BOOST_TEST(c->unconfirmed == 3u);
    BOOST_TEST(c->reason == "no ack");
    BOOST_TEST(!t.is_open(g));
    // Its other two messages are still nats.c's until it answers for them.
    BOOST_TEST(t.in_flight() == 2u);
}

BOOST_AUTO_TEST_CASE(late_answers_of_a_failed_attempt_never_count_for_its_retry) {
    nd::tracker t(16);
    const auto first = t.open(2);
    t.sent(key(0), first, 0);
    t.sent(key(1), first, 1);
    auto lost = t.fail_all(error::backend_unavailable, "connection lost");
    BOOST_TEST_REQUIRE(lost.size() == 1u);
    BOOST_TEST((lost[0].code == error::backend_unavailable));
    BOOST_TEST(lost[0].first_unconfirmed == 0u);
    // The retry republishes the same events as a new attempt.
    const auto retry = t.open(2);
    BOOST_TEST(retry != first);
    t.sent(key(2), retry, 0);
    t.sent(key(3), retry, 1);
    // The first attempt's acks arrive late: ignored, counted.
    BOOST_TEST(!t.answered(key(0)).has_value());
    BOOST_TEST(!t.answered(key(1)).has_value());
    BOOST_TEST(t.late_answers() == 2u);
    BOOST_TEST(!t.resolve(first, 0, stored()).has_value());
    BOOST_TEST(!t.resolve(first, 1, stored()).has_value());
    BOOST_TEST(t.is_open(retry));
    t.answered(key(2));
    BOOST_TEST(!t.resolve(retry, 0, stored()).has_value());
    t.answered(key(3));
    auto c = t.resolve(retry, 1, stored());
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST(c->ok);
}

BOOST_AUTO_TEST_CASE(the_in_flight_cap_counts_what_nats_c_holds) {
    nd::tracker t(2);
    const auto g = t.open(3);
    BOOST_TEST(t.has_room());
    t.sent(key(0), g, 0);
    t.sent(key(1), g, 1);
    BOOST_TEST(!t.has_room());
    t.fail(g, error::timeout, "x");
    BOOST_TEST(!t.has_room());  // failed, but nats.c has not answered yet
    t.answered(key(0));
    BOOST_TEST(t.has_room());
    BOOST_TEST(!t.unsend(key(1)).has_value());  // refused at once, attempt already over
    BOOST_TEST(t.in_flight() == 0u);
    BOOST_TEST(t.late_answers() == 1u);  // unsend is not an answer
}

BOOST_AUTO_TEST_CASE(fail_all_fails_every_open_attempt_oldest_first_and_abandon_is_silent) {
    nd::tracker t(8);
    const auto a = t.open(1);
    const auto b = t.open(2);
    const auto c = t.open(1);
    t.abandon(b);
    t.sent(key(0), c, 0);
    t.answered(key(0));
    t.resolve(c, 0, stored());  // c confirmed
    auto failed = t.fail_all(error::backend_unavailable, "down");
    BOOST_TEST_REQUIRE(failed.size() == 1u);
    BOOST_TEST(failed[0].generation == a);
    BOOST_TEST(t.open_attempts() == 0u);
    BOOST_TEST(!t.fail(a, error::timeout, "again").has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(nats_outcomes)

BOOST_AUTO_TEST_CASE(acknowledgements_and_duplicates_confirm) {
    jsPubAck pa{};
    BOOST_TEST((nd::classify_ack(&pa, nullptr).kind == nd::outcome_kind::stored));
    pa.Duplicate = true;
    BOOST_TEST((nd::classify_ack(&pa, nullptr).kind == nd::outcome_kind::duplicate));
}

BOOST_AUTO_TEST_CASE(refusals_that_a_retry_cannot_fix_are_permanent) {
    jsPubAckErr pae{};
    pae.Err = NATS_NO_RESPONDERS;
    BOOST_TEST((nd::classify_ack(nullptr, &pae).kind == nd::outcome_kind::refused));
    pae.Err = NATS_ERR;
    pae.ErrCode = JSStreamMessageExceedsMaximumErr;
    pae.ErrText = "message size exceeds maximum allowed";
    auto big = nd::classify_ack(nullptr, &pae);
    BOOST_TEST((big.kind == nd::outcome_kind::refused));
    BOOST_TEST(big.reason == "JetStream error 10054: message size exceeds maximum allowed");
    pae.ErrCode = JSStreamSealedErr;
    BOOST_TEST((nd::classify_ack(nullptr, &pae).kind == nd::outcome_kind::refused));
    pae.ErrCode = static_cast<jsErrCode>(10097);  // header too large
    BOOST_TEST((nd::classify_ack(nullptr, &pae).kind == nd::outcome_kind::refused));
    BOOST_TEST((nd::classify_publish_status(NATS_MAX_PAYLOAD, "Payload 3000 greater than maximum allowed: 1024").kind ==
                nd::outcome_kind::refused));
}

BOOST_AUTO_TEST_CASE(everything_else_fails_the_batch_for_a_retry) {
    jsPubAckErr pae{};
    pae.Err = NATS_TIMEOUT;
    BOOST_TEST((nd::classify_ack(nullptr, &pae).kind == nd::outcome_kind::timeout));
    pae.Err = NATS_ERR;
    for (int code : {10077 /* store failed */, 10047 /* storage exceeded */, 10008, 10009, 10118, 10999}) {
        pae.ErrCode = static_cast<jsErrCode>(code);
        BOOST_TEST_CONTEXT(code) {
            BOOST_TEST((nd::classify_ack(nullptr, &pae).kind == nd::outcome_kind::unavailable));
        }
    }
    pae.Err = NATS_CONNECTION_CLOSED;
    pae.ErrCode = static_cast<jsErrCode>(0);
    pae.ErrText = nullptr;
    BOOST_TEST((nd::classify_ack(nullptr, &pae).kind == nd::outcome_kind::unavailable));
    BOOST_TEST((nd::classify_ack(nullptr, nullptr).kind == nd::outcome_kind::unavailable));
    BOOST_TEST((nd::classify_publish_status(NATS_CONNECTION_CLOSED, "").kind == nd::outcome_kind::unavailable));
    BOOST_TEST((nd::classify_publish_status(NATS_INSUFFICIENT_BUFFER, "").kind == nd::outcome_kind::unavailable));
}

BOOST_AUTO_TEST_CASE(a_dead_letter_is_one_json_line_holding_the_event) {
    const event e{"ev1", event_type::created, "a.b", from_unix_ms(5), {{"owner", "x"}}};
    const std::string line =
        nd::dead_letter_line(42, "too \"large\"", "SESSIONS", "sessions.created.a%2Eb", to_text(e));
    BOOST_TEST(line.find('\n') == std::string::npos);
    auto v = boost::json::parse(line);
    BOOST_TEST(v.at("time") == 42);
    BOOST_TEST(v.at("reason") == "too \"large\"");
    BOOST_TEST(v.at("stream") == "SESSIONS");
    BOOST_TEST(v.at("subject") == "sessions.created.a%2Eb");
    BOOST_TEST(v.at("event").at("id") == "ev1");
    BOOST_TEST(event_from_text(boost::json::serialize(v.at("event")), "test").session_id == "a.b");
}

BOOST_AUTO_TEST_SUITE_END()
