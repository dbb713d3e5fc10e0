// postgres_store's pure parts: a record to statement parameters and back
// from a row, every column of a row edited by hand named in its error, the
// outbox position's form, and the schema's name rules and migration text.
#include <sessionkit/store/postgres/codec.hpp>
#include <sessionkit/store/postgres/schema.hpp>
#include <sessionkit/store/postgres/statements.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace sessionkit;
namespace codec = sessionkit::postgres_store_codec;

session sample() {
    session s;
    s.id = "k3v7-abc";
    s.owner = "alice";
    s.status = session_status::active;
    s.created_at = from_unix_ms(1'700'000'000'000);
    s.last_active = from_unix_ms(1'700'000'000'500);
    s.idle_timeout = milliseconds{60'000};
    s.idle_deadline = s.last_active + s.idle_timeout;
    s.absolute_deadline = from_unix_ms(1'700'003'600'000);
    s.version = 7;
    s.worker = worker_ref{"docker", "c0ffee", "node-1"};
    s.warning_sent = true;
    s.end_reason = "idle";
    s.attributes = {{"plan", "pro"}, {"n", 3}};
    s.extra = {{"future_field", "kept"}};
    return s;
}

/// The row PostgreSQL would return for `s`: what the create statement
/// stores, in record_columns order (booleans come back as t/f).
struct stored_row {
    std::vector<std::optional<std::string>> text;
    explicit stored_row(const session& s) {
        auto p = codec::record_parameters(s);
        // owner status created_at last_active idle_timeout_ms idle_deadline
        // absolute_deadline ended_at end_reason worker warning_sent attributes extra
        text = {s.id,
                p[0],
                p[1],
                p[2],
                p[3],
                p[4],
                p[5],
                p[6],
                p[7],
                p[8],
                std::to_string(s.version),
                p[9],
                std::string(*p[10] == "true" ? "t" : "f"),
                p[11],
                p[12]};
    }
    codec::row_values values() const {
        codec::row_values v;
        for (std::size_t i = 0; i < v.size(); ++i)
            if (text[i]) v[i] = std::string_view(*text[i]);
        return v;
    }
};

std::string failure_of(const codec::row_values& row) {
    try {
        codec::decode_record(row, "hint");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST((e.code() == error::corrupt_record));
        return e.what();
    }
    BOOST_FAIL("decoded a corrupt row");
    return {};
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(postgres_store_codec)

BOOST_AUTO_TEST_CASE(a_record_comes_back_as_it_went_in) {
    const auto s = sample();
    const auto back = codec::decode_record(stored_row(s).values(), s.id);
    BOOST_TEST(serialize(back) == serialize(s));
    BOOST_TEST(back.extra.at("future_field").as_string() == "kept");

    session bare = sample();
    bare.worker.reset();
    bare.absolute_deadline.reset();
    bare.end_reason.clear();
    bare.attributes.clear();
    bare.extra.clear();
    BOOST_TEST(serialize(codec::decode_record(stored_row(bare).values(), bare.id)) == serialize(bare));
}

BOOST_AUTO_TEST_CASE(every_bad_column_is_named_with_the_session) {
    struct bad {
        std::size_t column;
        std::optional<std::string> value;
        std::string says;
    };
    for (const auto& b :
         std::vector<bad>{{2, std::string("exploded"), "field 'status' is not a known status: 'exploded'"},
                          {2, std::nullopt, "field 'status' is NULL"},
                          {3, std::string("-5"), "field 'created_at' must be a time"},
                          {3, std::string("soon"), "field 'created_at' is not an integer: 'soon'"},
                          {5, std::string("-1"), "field 'idle_timeout_ms' must be between 0"},
                          {10, std::string("-2"), "field 'version' must not be negative"},
                          {11, std::string("\"docker\""), "field 'worker' must be an object"},
                          {11, std::string("{\"kind\":1,\"id\":\"x\"}"), "field 'worker' must be an object"},
                          {12, std::string("maybe"), "field 'warning_sent' must be a boolean"},
                          {13, std::string("[1,2]"), "field 'attributes' must be an object, got an array"},
                          {13, std::string("{not json"), "field 'attributes' is not JSON"},
                          {14, std::string("3"), "field 'extra' must be an object"}}) {
        stored_row row(sample());
        row.text[b.column] = b.value;
        const auto what = failure_of(row.values());
        BOOST_TEST_INFO("column " << b.column << ": " << what);
        BOOST_TEST(contains(what, "session 'k3v7-abc': " + b.says));
    }
    stored_row no_id(sample());
    no_id.text[0] = "not a valid id!";
    BOOST_TEST(contains(failure_of(no_id.values()), "session 'hint': field 'id' is not a valid session id"));
}

BOOST_AUTO_TEST_CASE(extra_never_overrides_a_known_field) {
    stored_row row(sample());
    row.text[14] = std::string(R"({"status":"failed","owner":"mallory","other":1})");
    const auto s = codec::decode_record(row.values(), "k3v7-abc");
    BOOST_TEST(to_string(s.status) == "active");
    BOOST_TEST(s.owner == "alice");
    BOOST_TEST(s.extra.size() == 1u);
}

BOOST_AUTO_TEST_CASE(positions_are_xid_colon_seq_and_nothing_else) {
    const auto p = codec::parse_position("t", "741:12345");
    BOOST_TEST(p.xid == 741u);
    BOOST_TEST(p.seq == 12345);
    BOOST_TEST(codec::to_text(p) == "741:12345");
    BOOST_TEST(codec::parse_position("t", "").xid == 0u);
    for (std::string_view bad : {"741", ":1", "1:", "1:2:3", "a:1", "1:-1", " 1:2", "1-2", "18446744073709551616:1"}) {
        try {
            codec::parse_position("postgres_store.read_outbox", bad);
            BOOST_ERROR("accepted " << bad);
        } catch (const boost::system::system_error& e) {
            BOOST_TEST((e.code() == error::invalid_argument));
            BOOST_TEST(contains(e.what(), "postgres_store.read_outbox: outbox position"));
        }
    }
}

BOOST_AUTO_TEST_CASE(bytes_travel_as_hex) {
    BOOST_TEST(codec::to_hex(std::string_view("\0\x01\xff"
                                              "a",
                                              4)) == "0001ff61");
    BOOST_TEST(codec::to_hex("").empty());
    // And back, as PostgreSQL's text form of bytea writes them.
    BOOST_TEST(codec::from_bytea_text("\\x0001ff61", "s") == std::string_view("\0\x01\xff"
                                                                              "a",
                                                                              4));
    BOOST_TEST(codec::from_bytea_text("\\x", "s").empty());
    for (std::string_view bad : {"0001", "\\x0", "\\xzz", "\\x0G"})
        BOOST_CHECK_THROW(codec::from_bytea_text(bad, "s"), boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(schema_names_are_plain_identifiers_and_the_only_text_substituted) {
    for (std::string_view good : {"sessionkit", "_x", "a1_b2", "t_0123456789"})
        BOOST_CHECK_NO_THROW(postgres_schema::check_schema_name(good));
    for (std::string_view bad : {"", "A", "1a", "a-b", "a b", "a\"b", "a;b"})
        BOOST_CHECK_THROW(postgres_schema::check_schema_name(bad), boost::system::system_error);
    BOOST_TEST(postgres_schema::in_schema("SELECT 1 FROM {S}.t, {S}.u", "abc") == "SELECT 1 FROM \"abc\".t, \"abc\".u");
    const auto script = postgres_schema::migration_script("abc");
    BOOST_TEST(contains(script, "SELECT pg_advisory_xact_lock(" +
                                    std::to_string(postgres_schema::migration_lock_key("abc")) + ");"));
    BOOST_TEST(!contains(script, "{S}"));
    // Different schemas migrate under different locks.
    BOOST_TEST(postgres_schema::migration_lock_key("a") != postgres_schema::migration_lock_key("b"));
    for (const auto& st : postgres_store_sql::statements("abc")) BOOST_TEST(!contains(st.sql, "{S}"));
}

BOOST_AUTO_TEST_SUITE_END()
