// redis_store's pure parts, with no server: the key names (keys.hpp), the
// record and stats codec (codec.hpp), each script's reply decoder
// (detail/replies.hpp), the script set and its SHAs (scripts.hpp), and that
// the Lua's field lists are the C++ one.
#include <sessionkit/store/redis/codec.hpp>
#include <sessionkit/store/redis/detail/replies.hpp>
#include <sessionkit/store/redis/keys.hpp>
#include <sessionkit/store/redis/scripts.hpp>

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace sessionkit;
namespace keys = sessionkit::redis_store_keys;
namespace codec = sessionkit::redis_store_codec;
namespace replies = sessionkit::detail::redis_store;
namespace rp = sessionkit::redis::resp;
using namespace std::chrono_literals;

// ---- reply builders

rp::value bulk(std::string s) { return rp::value::of_text(rp::type::bulk_string, std::move(s)); }
rp::value integer(std::int64_t n) { return rp::value::of_integer(n); }
rp::value double_(std::string text) { return rp::value::of_text(rp::type::double_, std::move(text)); }
rp::value null() { return rp::value{}; }
rp::value boolean(bool b) { return rp::value::of_boolean(b); }
rp::value aggregate(rp::type kind, std::vector<rp::value> elements) {
    return rp::value::of_elements(kind, std::move(elements));
}
rp::value array(std::vector<rp::value> elements) { return aggregate(rp::type::array, std::move(elements)); }

const time_point t0 = from_unix_ms(1'700'000'000'000);

session sample(std::string id = "s1") {
    session s;
    s.id = std::move(id);
    s.owner = "alice";
    s.status = session_status::active;
    s.created_at = t0;
    s.last_active = t0 + 5s;
    s.idle_timeout = 60s;
    s.idle_deadline = t0 + 65s;
    s.absolute_deadline = t0 + 1h;
    s.version = 4;
    s.end_reason = "";
    s.attributes["k"] = "v";
    return s;
}

/// The record_fields values a record written with encode_record holds
/// (the scripts add `version`).
rp::value stored_fields(const session& s) {
    auto written = codec::encode_record(s);
    auto value_of = [&](std::string_view name) {
        for (auto& f : written)
            if (f.name == name) return bulk(f.value);
        return null();
    };
    std::vector<rp::value> out;
    for (auto name : codec::record_fields)
        out.push_back(name == "version" ? bulk(std::to_string(s.version)) : value_of(name));
    return array(std::move(out));
}

template <class F>
boost::system::system_error failure(F&& f) {
    try {
        f();
    } catch (const boost::system::system_error& e) {
        return e;
    }
    BOOST_FAIL("expected a system_error");
    throw;  // unreachable
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

/// The quoted names of a Lua list: the first `open` after `after`, then
/// 'name', 'name', ... up to the first thing that is not a quoted name.
std::vector<std::string> lua_names(std::string_view text, std::string_view after, std::string_view open) {
    auto at = text.find(after);
    BOOST_REQUIRE_MESSAGE(at != std::string_view::npos, "no '" << after << "' in the script");
    at = text.find(open, at);
    BOOST_REQUIRE_MESSAGE(at != std::string_view::npos, "no '" << open << "' after '" << after << "'");
    at += open.size();
    std::vector<std::string> names;
    for (;;) {
        while (at < text.size() && (text[at] == ' ' || text[at] == ',' || text[at] == '\n')) ++at;
        if (at >= text.size() || text[at] != '\'') break;
        const auto end = text.find('\'', at + 1);
        BOOST_REQUIRE(end != std::string_view::npos);
        names.emplace_back(text.substr(at + 1, end - at - 1));
        at = end + 1;
    }
    return names;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_keys)

BOOST_AUTO_TEST_CASE(every_key_is_named_from_the_prefix_and_partition) {
    BOOST_TEST(keys::partition_base("session:", 3) == "session:{3}:");
    BOOST_TEST(keys::record_key("session:{3}:", "abc") == "session:{3}:s:abc");
    BOOST_TEST(keys::output_key("session:{3}:", "abc") == "session:{3}:o:abc");
    BOOST_TEST(keys::lock_key("session:", "janitor") == "session:lock:janitor");
    BOOST_TEST(keys::owner_index("alice") == "owner:alice");
    BOOST_TEST(keys::status_index(session_status::waiting_input) == "status:waiting_input");
    BOOST_TEST(keys::ids_index == "ids");
    BOOST_TEST(keys::live_index == "live");
    BOOST_TEST(keys::warn_index == "warn");
    BOOST_TEST(keys::ended_index == "ended");
    BOOST_TEST(keys::corrupt_index == "corrupt");
    BOOST_TEST(keys::stats_hash == "stats");
}

BOOST_AUTO_TEST_CASE(the_partition_is_fnv1a_of_the_id_and_stable) {
    // Fixed values: every instance, version and tool must agree on them.
    static_assert(keys::partition_of("a", 1024) == 0xe40c292cu % 1024);
    BOOST_TEST(keys::partition_of("a", 16) == 0xe40c292cu % 16);
    BOOST_TEST(keys::partition_of("anything", 1) == 0u);
    for (unsigned n : {1u, 2u, 16u, 1024u})
        for (auto id : {"s1", "s2", "x-y.z:0"}) BOOST_TEST(keys::partition_of(id, n) < n);
}

BOOST_AUTO_TEST_CASE(a_list_reads_the_narrowest_index) {
    list_query q;
    auto all = keys::list_source_of(q);
    BOOST_TEST(all.index == "ids");
    BOOST_TEST(all.status_filter == "");
    q.status = session_status::idle;
    auto by_status = keys::list_source_of(q);
    BOOST_TEST(by_status.index == "status:idle");
    BOOST_TEST(by_status.status_filter == "");
    q.owner = "bob";
    auto both = keys::list_source_of(q);
    BOOST_TEST(both.index == "owner:bob");
    BOOST_TEST(both.status_filter == "idle");
    q.status.reset();
    auto by_owner = keys::list_source_of(q);
    BOOST_TEST(by_owner.index == "owner:bob");
    BOOST_TEST(by_owner.status_filter == "");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_codec)

BOOST_AUTO_TEST_CASE(a_record_reads_back_as_it_was_written) {
    auto s = sample();
    s.warning_sent = true;
    s.ended_at = t0 + 2min;
    s.end_reason = "idle";
    auto back = codec::decode_record("s1", stored_fields(s));
    BOOST_TEST(serialize(back) == serialize(s));
    BOOST_TEST(back.version == 4u);
    BOOST_TEST(back.warning_sent);
    BOOST_TEST((back.ended_at == s.ended_at));

    s.ended_at.reset();
    s.absolute_deadline.reset();
    s.warning_sent = false;
    back = codec::decode_record("s1", stored_fields(s));
    BOOST_TEST(serialize(back) == serialize(s));
    BOOST_TEST(!back.ended_at);
}

BOOST_AUTO_TEST_CASE(a_record_is_written_with_every_field_scripts_read) {
    auto s = sample();
    auto fields = codec::encode_record(s);
    std::vector<std::string> names;
    for (auto& f : fields) names.emplace_back(f.name);
    const std::vector<std::string> expected = {
        "doc",          "status",     "owner",   "last_active", "idle_deadline", "idle_timeout", "absolute_deadline",
        "warning_sent", "end_reason", "ended_at"};
    BOOST_TEST(names == expected, boost::test_tools::per_element());
    BOOST_TEST(fields[1].value == "active");
    BOOST_TEST(fields[3].value == std::to_string(to_unix_ms(t0 + 5s)));
    BOOST_TEST(fields[5].value == "60000");
    BOOST_TEST(fields[6].value == std::to_string(to_unix_ms(t0 + 1h)));
    BOOST_TEST(fields[7].value == "0");
    BOOST_TEST(fields[9].value == "");  // no end time
}

BOOST_AUTO_TEST_CASE(a_malformed_record_is_corrupt_naming_the_field) {
    auto with = [](std::size_t i, rp::value v) {
        auto f = stored_fields(sample());
        f.elements[i] = std::move(v);
        return f;
    };
    struct bad {
        rp::value fields;
        std::string_view says;
    };
    const std::vector<bad> cases = {
        {array({bulk("x")}), "not a hash with the expected fields"},
        {bulk("garbage"), "not a hash with the expected fields"},
        {with(0, bulk("{not json")), "field 'doc'"},
        {with(1, bulk("sleeping")), "field 'status': unknown session status 'sleeping'"},
        {with(2, bulk("many")), "field 'version' is 'many', not a number"},
        {with(3, bulk("-5")), "field 'last_active' is '-5'"},
        {with(4, bulk("1e999")), "field 'idle_deadline' is '1e999'"},
        {with(4, bulk("99999999999999999999")), "field 'idle_deadline'"},
        {with(7, bulk(" 5")), "field 'ended_at' is ' 5'"},
        {with(5, null()), "field 'warning_sent' is missing"},
        {with(0, bulk(serialize(sample("other")))), "field 'doc' holds session 'other'"},
    };
    for (auto& c : cases) {
        auto e = failure([&] { codec::decode_record("s1", c.fields); });
        BOOST_TEST((e.code() == error::corrupt_record), e.what());
        BOOST_TEST(contains(e.what(), c.says), e.what() << " should say " << c.says);
    }
    // A value that is not a string at all is the server's mistake.
    auto e = failure([&] { codec::decode_record("s1", with(6, integer(3))); });
    BOOST_TEST((e.code() == error::protocol_error));
}

BOOST_AUTO_TEST_CASE(get_finds_no_record_when_doc_or_status_is_absent) {
    BOOST_TEST(!codec::decode_get("s1", null()));
    BOOST_TEST(!codec::decode_get("s1", array({})));
    auto f = stored_fields(sample());
    auto no_doc = f;
    no_doc.elements[0] = null();
    BOOST_TEST(!codec::decode_get("s1", no_doc));
    auto no_status = f;
    no_status.elements[1] = null();
    BOOST_TEST(!codec::decode_get("s1", no_status));
    BOOST_TEST(codec::decode_get("s1", f)->owner == "alice");
    // One element where eight belong: corrupt, not read past the end.
    auto e = failure([&] { codec::decode_get("s1", array({bulk("{}")})); });
    BOOST_TEST((e.code() == error::corrupt_record));
}

BOOST_AUTO_TEST_CASE(stats_sum_every_partition_in_resp2_and_resp3) {
    auto resp2 = array({bulk("st:active"), bulk("3"), bulk("created_total"), bulk("7"), bulk("st:idle"), bulk("1")});
    auto resp3 = aggregate(rp::type::map, {bulk("st:active"), integer(2), bulk("expired_total"), integer(4),
                                           bulk("terminated_total"), integer(5), bulk("st:failed"), integer(-2),
                                           bulk("future_counter"), integer(9), bulk("st:nonsense"), integer(9)});
    const std::vector<rp::value> hashes = {resp2, resp3, array({})};
    auto st = codec::decode_stats(hashes);
    BOOST_TEST(st.count(session_status::active) == 5u);
    BOOST_TEST(st.count(session_status::idle) == 1u);
    BOOST_TEST(st.count(session_status::failed) == 0u);  // a negative counter counts as none
    BOOST_TEST(st.sessions == 6u);
    BOOST_TEST(st.created_total == 7u);
    BOOST_TEST(st.expired_total == 4u);
    BOOST_TEST(st.terminated_total == 5u);

    const std::vector<rp::value> bad = {array({bulk("st:active"), bulk("lots")})};
    auto e = failure([&] { codec::decode_stats(bad); });
    BOOST_TEST((e.code() == error::protocol_error));
}

BOOST_AUTO_TEST_CASE(an_error_reply_is_corrupt_only_for_a_bad_key) {
    rp::value err;
    err.kind = rp::type::simple_error;
    err.text = "WRONGTYPE Operation against a key holding the wrong kind of value";
    BOOST_TEST((codec::error_of_reply(err) == error::corrupt_record));
    err.text = "CORRUPT field version of session s1 is not a number";
    BOOST_TEST((codec::error_of_reply(err) == error::corrupt_record));
    err.text = "ERR Error running script: user_script:1: something";
    BOOST_TEST((codec::error_of_reply(err) == error::backend_unavailable));
    err.text = "OOM command not allowed";
    BOOST_TEST((codec::error_of_reply(err) == error::backend_unavailable));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_replies)

BOOST_AUTO_TEST_CASE(create_answers_the_new_version_or_the_live_record) {
    auto s = sample();
    auto made = replies::decode_create(array({integer(1), integer(9)}), s);
    BOOST_TEST(made.created);
    BOOST_TEST(made.record.version == 9u);
    BOOST_TEST(made.record.owner == "alice");
    auto other = sample();
    other.owner = "carol";
    auto taken = replies::decode_create(array({integer(0), stored_fields(other)}), s);
    BOOST_TEST(!taken.created);
    BOOST_TEST(taken.record.owner == "carol");
    auto e = failure([&] { replies::decode_create(integer(1), s); });
    BOOST_TEST((e.code() == error::protocol_error));
    BOOST_TEST(contains(e.what(), "unexpected reply type integer"));
}

BOOST_AUTO_TEST_CASE(touch_answers_the_new_deadline) {
    BOOST_TEST(!replies::decode_touch(null()));
    auto t = replies::decode_touch(
        array({bulk("active"), bulk("1700000005000"), integer(1700000065000), bulk("1700003600000"), integer(5)}));
    BOOST_REQUIRE(t);
    BOOST_TEST((t->status == session_status::active));
    BOOST_TEST(to_unix_ms(t->last_active) == 1700000005000);
    BOOST_TEST(to_unix_ms(t->idle_deadline) == 1700000065000);
    BOOST_TEST(to_unix_ms(*t->absolute_deadline) == 1700003600000);
    BOOST_TEST(t->version == 5u);
    auto open = replies::decode_touch(array({bulk("idle"), integer(1), integer(2), bulk(""), integer(3)}));
    BOOST_TEST(!open->absolute_deadline);

    // The values come from the record: unreadable ones are a corrupt record.
    auto bad_status = failure([] {
        replies::decode_touch(array({bulk("zz"), integer(1), integer(2), bulk(""), integer(3)}));
    });
    BOOST_TEST((bad_status.code() == error::corrupt_record));
    BOOST_TEST(contains(bad_status.what(), "unknown session status 'zz'"));
    auto huge = failure([] {
        replies::decode_touch(array({bulk("idle"), integer(INT64_MAX), integer(2), bulk(""), integer(3)}));
    });
    BOOST_TEST((huge.code() == error::corrupt_record));
    BOOST_TEST(contains(huge.what(), "out of range"));
    auto short_reply = failure([] { replies::decode_touch(array({bulk("idle")})); });
    BOOST_TEST((short_reply.code() == error::protocol_error));
}

BOOST_AUTO_TEST_CASE(update_erase_lock_and_count_answers) {
    BOOST_TEST((replies::decode_update(integer(0)) == update_result::updated));
    BOOST_TEST((replies::decode_update(integer(1)) == update_result::not_found));
    BOOST_TEST((replies::decode_update(integer(2)) == update_result::version_conflict));
    BOOST_TEST((replies::decode_update(integer(3)) == update_result::final_state));
    BOOST_TEST((failure([] { replies::decode_update(integer(4)); }).code() == error::protocol_error));
    BOOST_TEST(replies::decode_done(integer(1)));
    BOOST_TEST(!replies::decode_done(integer(0)));
    BOOST_TEST(replies::decode_locked(integer(1)));
    BOOST_TEST(!replies::decode_locked(null()));
    BOOST_TEST(replies::decode_count(integer(12)) == 12u);
    BOOST_TEST((failure([] { replies::decode_count(integer(-1)); }).code() == error::protocol_error));
}

BOOST_AUTO_TEST_CASE(a_sweep_entry_is_a_record_or_why_it_is_not) {
    auto ok = replies::decode_entry(array({bulk("s1"), stored_fields(sample())}));
    BOOST_TEST(ok.id == "s1");
    BOOST_TEST(ok.record.has_value());

    auto quarantined = replies::decode_entry(array({bulk("s2"), boolean(false), bulk("CORRUPT field x")}));
    BOOST_TEST(!quarantined.record);
    BOOST_TEST(quarantined.script_found_it);
    BOOST_TEST(quarantined.problem == "CORRUPT field x");
    auto resp2_false = replies::decode_entry(array({bulk("s3"), null()}));
    BOOST_TEST(resp2_false.problem == "unreadable");

    auto f = stored_fields(sample("s4"));
    f.elements[2] = bulk("many");
    auto unreadable = replies::decode_entry(array({bulk("s4"), f}));
    BOOST_TEST(!unreadable.record);
    BOOST_TEST(!unreadable.script_found_it);
    BOOST_TEST(contains(unreadable.problem, "field 'version'"));

    auto e = failure([] { replies::decode_entry(array({bulk("s5")})); });
    BOOST_TEST((e.code() == error::protocol_error));
}

BOOST_AUTO_TEST_CASE(sweep_candidates_are_the_earliest_across_partitions) {
    std::vector<replies::candidate> all;
    // RESP2: id, score as text; RESP3: [id, double] pairs.
    replies::add_candidates(all, array({bulk("a"), bulk("30"), bulk("b"), bulk("10")}), 0);
    replies::add_candidates(all, array({array({bulk("c"), double_("20")}), array({bulk("d"), double_("10")})}), 5);
    replies::add_candidates(all, array({}), 7);
    BOOST_REQUIRE(all.size() == 4u);
    auto picked = replies::pick_earliest(all, 3);
    BOOST_TEST(picked.size() == 2u);
    BOOST_TEST(picked[0] == std::vector<std::string>{"b"}, boost::test_tools::per_element());
    BOOST_TEST(picked[5] == (std::vector<std::string>{"d", "c"}), boost::test_tools::per_element());
    BOOST_TEST(replies::pick_earliest(all, 0).empty());
    BOOST_TEST(replies::pick_earliest(all, 100)[0].size() == 2u);

    // No order exists for NaN: refused rather than sorted.
    auto e = failure([&] { replies::add_candidates(all, array({bulk("x"), bulk("nan")}), 1); });
    BOOST_TEST((e.code() == error::protocol_error));
    e = failure([&] { replies::add_candidates(all, array({array({bulk("x"), double_("nan")})}), 1); });
    BOOST_TEST((e.code() == error::protocol_error));
}

BOOST_AUTO_TEST_CASE(list_pages_merge_in_id_order) {
    std::vector<session> all = {sample("c"), sample("a"), sample("d"), sample("b")};
    auto page = replies::merge_pages(all, false, 3);
    BOOST_REQUIRE(page.sessions.size() == 3u);
    BOOST_TEST(page.sessions[0].id == "a");
    BOOST_TEST(page.sessions[2].id == "c");
    BOOST_TEST(page.next_cursor.has_value());
    auto last = replies::merge_pages(all, false, 10);
    BOOST_TEST(last.sessions.size() == 4u);
    BOOST_TEST(!last.next_cursor);
    // A partition that filled its page may hold more.
    BOOST_TEST(replies::merge_pages(all, true, 10).next_cursor.has_value());
    BOOST_TEST(!replies::merge_pages({}, true, 10).next_cursor);
}

BOOST_AUTO_TEST_CASE(output_reads_say_what_was_dropped) {
    BOOST_TEST(!replies::decode_output(null(), 0));
    auto c = replies::decode_output(array({integer(100), integer(150), bulk("0123456789")}), 40);
    BOOST_REQUIRE(c);
    BOOST_TEST(c->offset == 100u);
    BOOST_TEST(c->next_offset == 110u);
    BOOST_TEST(c->dropped);
    BOOST_TEST(c->data == "0123456789");
    auto e = failure([] { replies::decode_output(array({integer(0), integer(5), bulk("")}), 6); });
    BOOST_TEST((e.code() == error::invalid_argument));
    BOOST_TEST(contains(e.what(), "offset 6 is past the end of the output (5 bytes so far)"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_outbox_replies)

BOOST_AUTO_TEST_CASE(the_position_after_one_is_the_next_entry_id) {
    BOOST_TEST(replies::next_position("1700000000000-0") == "1700000000000-1");
    BOOST_TEST(replies::next_position("5-41") == "5-42");
    BOOST_TEST(replies::next_position("5-18446744073709551615") == "6-0");
    for (auto bad : {"", "-", "5-", "-5", "5", "5-x", "x-5", "5-5-5", " 5-5"}) {
        auto e = failure([&] { replies::next_position(bad); });
        BOOST_TEST((e.code() == error::invalid_argument), bad);
    }
    BOOST_TEST((replies::parse_position("3-9") < replies::parse_position("3-10")));
    BOOST_TEST((replies::parse_position("3-9") < replies::parse_position("4-0")));
}

BOOST_AUTO_TEST_CASE(a_refused_write_is_told_apart_from_the_other_answers) {
    BOOST_TEST(replies::outbox_refusal(array({integer(2), integer(7)}), 2).value() == 7u);
    BOOST_TEST(!replies::outbox_refusal(array({integer(1), integer(7)}), 2));  // created at version 7
    BOOST_TEST(!replies::outbox_refusal(array({integer(0), array({})}), 2));
    BOOST_TEST(replies::outbox_refusal(array({integer(4), integer(3)}), 4).value() == 3u);
    BOOST_TEST(!replies::outbox_refusal(integer(0), 4));
    BOOST_TEST(!replies::outbox_refusal(integer(4), 4));
}

BOOST_AUTO_TEST_CASE(an_xrange_of_the_outbox_gives_events_and_names_what_it_could_not_read) {
    const event e = make_event(event_type::created, "s1", t0, {{"owner", "alice"}});
    auto entry = [](std::string id, std::vector<rp::value> fields) { return array({bulk(id), array(fields)}); };
    auto read = replies::decode_outbox(
        array({entry("1-0", {bulk("event"), bulk(to_text(e)), bulk("id"), bulk(e.id)}),
               entry("1-1", {bulk("event"), bulk("{nope")}), entry("2-0", {bulk("other"), bulk("x")})}),
        "k:{0}:outbox");
    BOOST_TEST_REQUIRE(read.entries.size() == 1u);
    BOOST_TEST(read.entries[0].position == "1-0");
    BOOST_TEST(read.entries[0].ev.id == e.id);
    BOOST_TEST(to_text(read.entries[0].ev) == to_text(e));
    BOOST_TEST_REQUIRE(read.skipped.size() == 2u);
    BOOST_TEST(read.skipped[0].position == "1-1");
    BOOST_TEST(contains(read.skipped[0].problem, "k:{0}:outbox entry 1-1"));
    BOOST_TEST(contains(read.skipped[1].problem, "no 'event' field"));
    BOOST_TEST(read.count == 3u);
    BOOST_TEST(read.last_position == "2-0");
    BOOST_TEST(replies::decode_outbox(array({}), "k").count == 0u);
    BOOST_TEST((failure([&] { replies::decode_outbox(integer(1), "k"); }).code() == error::protocol_error));
    BOOST_TEST(replies::first_entry_time(array({entry("1-0", {bulk("time"), bulk("1700000000000")})})).value() ==
               1'700'000'000'000);
    BOOST_TEST(!replies::first_entry_time(array({entry("1-0", {bulk("time"), bulk("soon")})})));
    BOOST_TEST(!replies::first_entry_time(array({})));
}

BOOST_AUTO_TEST_CASE(dropped_lines_are_read_and_merged_oldest_first) {
    auto d = replies::decode_dropped("1700000000005 expired ev1 a session id", 3);
    BOOST_TEST(d.time == 1'700'000'000'005);
    BOOST_TEST(d.event.type == "expired");
    BOOST_TEST(d.event.event_id == "ev1");
    BOOST_TEST(d.event.session_id == "a session id");
    BOOST_TEST(d.event.partition == 3u);
    auto odd = replies::decode_dropped("garbage", 0);  // never a crash
    BOOST_TEST(odd.event.event_id.empty());
    auto list = [](unsigned p, std::vector<std::string> lines) {
        std::vector<rp::value> v;
        for (auto& l : lines) v.push_back(bulk(l));
        return replies::decode_dropped_list(array(v), p);
    };
    std::vector<std::vector<replies::dropped_line>> parts;
    parts.push_back(list(0, {"10 created a0 s", "40 created a1 s"}));
    parts.push_back(list(1, {"20 created b0 s", "30 created b1 s", "50 created b2 s"}));
    parts.push_back(replies::decode_dropped_list(null(), 2));
    std::vector<std::string> ids;
    for (auto& m : replies::merge_dropped(parts, 4)) ids.push_back(m.event.event_id);
    BOOST_TEST((ids == std::vector<std::string>{"a0", "b0", "b1", "a1"}));
    // Each partition keeps its order, even when times disagree.
    parts = {list(0, {"50 x late s", "10 x early s"}), list(1, {"20 x mid s"})};
    ids.clear();
    for (auto& m : replies::merge_dropped(parts, 10)) ids.push_back(m.event.event_id);
    BOOST_TEST((ids == std::vector<std::string>{"mid", "late", "early"}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_scripts)

BOOST_AUTO_TEST_CASE(the_lua_field_lists_are_the_cpp_one) {
    const std::vector<std::string> cpp(codec::record_fields.begin(), codec::record_fields.end());
    auto& s = redis_store_scripts::all();
    // FIELDS in the prelude: what every script returning a record sends.
    auto fields = lua_names(s.create.text, "local FIELDS", "{");
    BOOST_TEST(fields == cpp, boost::test_tools::per_element());
    // claim_expired reads them itself (plus two it needs) and returns that
    // list trimmed: its first names must be the same, in the same order.
    auto claimed = lua_names(s.claim_expired.text, "local function claim(", "redis.call('HMGET', skey,");
    BOOST_REQUIRE(claimed.size() >= cpp.size());
    claimed.resize(cpp.size());
    BOOST_TEST(claimed == cpp, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(every_script_has_its_name_text_and_sha) {
    BOOST_TEST(sessionkit::detail::redis_store::sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
    auto& s = redis_store_scripts::all();
    for (auto name : {"create", "update", "touch", "erase", "claim_expired", "claim_warnings", "purge_ended", "list",
                      "append_output", "read_output", "try_lock", "unlock", "extend_lock", "trim_outbox"}) {
        auto* found = s.find(name);
        BOOST_REQUIRE_MESSAGE(found, name);
        BOOST_TEST(found->name == name);
        BOOST_TEST(found->sha == sessionkit::detail::redis_store::sha1_hex(found->text));
    }
    BOOST_TEST(!s.find("get"));
    // The hot touch and the locks stand alone; the rest start with the prelude.
    BOOST_TEST(!contains(s.touch.text, "local FIELDS"));
    BOOST_TEST(!contains(s.try_lock.text, "local FIELDS"));
    BOOST_TEST(!contains(s.trim_outbox.text, "local FIELDS"));
    // The scripts that append events carry the outbox's helpers.
    for (auto* with : {&s.create, &s.update, &s.claim_warnings}) BOOST_TEST(contains(with->text, "outbox_append"));
    BOOST_TEST(!contains(s.claim_expired.text, "outbox_append"));
    BOOST_TEST(contains(s.list.text, "local FIELDS"));
    BOOST_TEST(&redis_store_scripts::all() == &s);
}

BOOST_AUTO_TEST_SUITE_END()
