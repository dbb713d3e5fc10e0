// Error codes, the conditions they belong to, and the diagnostics an error
// carries: what callers compare against instead of parsing messages.
#include <sessionkit/detail/text.hpp>
#include <sessionkit/error.hpp>

#include <boost/test/unit_test.hpp>

#include <stdexcept>

using namespace sessionkit;

BOOST_AUTO_TEST_SUITE(errors)

BOOST_AUTO_TEST_CASE(every_code_belongs_to_the_condition_a_caller_acts_on) {
    struct row {
        error code;
        condition expected;
    };
    const row table[] = {
        {error::invalid_id, condition::invalid_input},
        {error::invalid_argument, condition::invalid_input},
        {error::not_found, condition::not_found},
        {error::invalid_transition, condition::conflict},
        {error::contention, condition::conflict},
        {error::backend_unavailable, condition::unavailable},
        {error::timeout, condition::unavailable},
        {error::protocol_error, condition::unavailable},
        {error::corrupt_record, condition::backend_failure},
        {error::spawn_failed, condition::backend_failure},
    };
    for (const auto& r : table) {
        const boost::system::error_code ec = r.code;
        BOOST_TEST_CONTEXT(ec.message()) {
            BOOST_TEST((ec == r.expected));
            for (int c = 1; c <= static_cast<int>(condition::backend_failure); ++c)
                if (static_cast<condition>(c) != r.expected) BOOST_TEST((ec != static_cast<condition>(c)));
        }
    }
    // A code of another category never matches ours.
    const boost::system::error_code refused(ECONNREFUSED, boost::system::system_category());
    BOOST_TEST((refused != condition::unavailable));
}

BOOST_AUTO_TEST_CASE(an_error_keeps_its_message_and_diagnostics_apart_from_the_code) {
    try {
        throw_error(error::timeout, diagnostics{"redis 127.0.0.1:6379", "EVALSHA touch", "abc", "BUSY script"});
    } catch (const boost::system::system_error& e) {
        BOOST_TEST((e.code() == error::timeout));
        BOOST_TEST((e.code() == condition::unavailable));
        const auto* ours = dynamic_cast<const sessionkit::system_error*>(&e);
        BOOST_REQUIRE(ours);
        BOOST_TEST(ours->message() == "redis 127.0.0.1:6379 EVALSHA touch 'abc': BUSY script");
        BOOST_TEST(ours->diagnostics().key == "abc");
        BOOST_TEST(ours->diagnostics().server_message == "BUSY script");
        BOOST_TEST(what_without_code(e) == ours->message());
        BOOST_TEST(std::string(e.what()).starts_with(ours->message() + ": backend operation timed out"));
    }
}

BOOST_AUTO_TEST_CASE(describe_leaves_out_what_is_not_known) {
    BOOST_TEST(describe({}) == "");
    BOOST_TEST(describe({"memory_store", "update", "", ""}) == "memory_store update");
    BOOST_TEST(describe({"", "", "abc", "gone"}) == "'abc': gone");
    BOOST_TEST(describe({"docker", "", "", "no such image"}) == "docker: no such image");
}

BOOST_AUTO_TEST_CASE(what_without_code_cuts_only_the_suffix_of_foreign_errors) {
    // The prefix as a std::string: GCC 12 at -O1 misreads the const char*
    // constructor's concatenation as out of bounds (-Warray-bounds).
    const std::string prefix = "connect 10.0.0.1";
    const boost::system::system_error foreign(boost::system::error_code(ECONNREFUSED, boost::system::system_category()),
                                              prefix);
    BOOST_TEST(what_without_code(foreign) == "connect 10.0.0.1");
    try {
        throw_error(error::not_found, "memory_store.update: session 'x'");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(what_without_code(e) == "memory_store.update: session 'x'");
    }
}

BOOST_AUTO_TEST_CASE(untrusted_bytes_are_escaped_and_cut_before_they_reach_a_message) {
    using sessionkit::detail::printable;
    using sessionkit::detail::quote_untrusted;
    BOOST_TEST(printable("abc") == "abc");
    BOOST_TEST(printable(std::string_view("a\0'\\\xff", 5)) == "a\\x00\\x27\\x5c\\xff");
    BOOST_TEST(printable(std::string(200, 'x')) == std::string(160, 'x') + "...");
    BOOST_TEST(printable(std::string(160, 'x')) == std::string(160, 'x'));
    BOOST_TEST(quote_untrusted("+OK\r\n") == "'+OK\\r\\n'");
    BOOST_TEST(quote_untrusted(std::string_view("\x01'", 2)) == "'\\x01\\''");
    BOOST_TEST(quote_untrusted(std::string(40, 'y')) == "'" + std::string(32, 'y') + "'...");
    const unsigned char digest[] = {0x00, 0xa9, 0xff};
    BOOST_TEST(sessionkit::detail::to_hex(digest) == "00a9ff");
}

BOOST_AUTO_TEST_SUITE_END()
