// postgres::connection_options::from_url: every form we accept, and every
// bad URL named with the field that is wrong and the password masked.
#include <sessionkit/postgres/config.hpp>

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>
#include <string_view>

using sessionkit::postgres::connection_options;
using namespace std::chrono_literals;

namespace {
std::string failure_of(std::string_view url) {
    try {
        connection_options::from_url(url);
    } catch (const boost::system::system_error& e) {
        BOOST_TEST((e.code() == sessionkit::error::invalid_argument));
        return e.what();
    }
    BOOST_FAIL("accepted " << url);
    return {};
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

std::string parameter(const connection_options& c, std::string_view key) {
    for (const auto& [k, v] : c.libpq_parameters)
        if (k == key) return v;
    return "<absent>";
}
}  // namespace

BOOST_AUTO_TEST_SUITE(postgres_config)

BOOST_AUTO_TEST_CASE(tcp_urls_with_both_schemes_and_what_they_leave_to_libpq) {
    auto c = connection_options::from_url("postgresql://app:s%40cret@db.example:6543/sessions");
    BOOST_TEST(c.host == "db.example");
    BOOST_TEST(c.port == 6543);
    BOOST_TEST(c.user == "app");
    BOOST_TEST(c.password == "s@cret");
    BOOST_TEST(c.dbname == "sessions");
    BOOST_TEST(!c.is_unix_socket());
    BOOST_TEST(c.describe() == "postgresql://app@db.example:6543/sessions");
    BOOST_TEST(!contains(c.describe(), "cret"));

    auto d = connection_options::from_url("postgres://127.0.0.1/db");
    BOOST_TEST(d.port == 5432);
    BOOST_TEST(d.user.empty());
    BOOST_TEST(d.password.empty());
    BOOST_TEST(d.sslmode.empty());  // libpq's default

    auto v6 = connection_options::from_url("postgresql://[::1]:5433/db");
    BOOST_TEST(v6.host == "::1");
    BOOST_TEST(v6.describe() == "postgresql://[::1]:5433/db");

    // A database name may hold anything percent-encoded.
    BOOST_TEST(connection_options::from_url("postgresql://h/my%2Fdb%20x").dbname == "my/db x");
    // No path: libpq's default database.
    BOOST_TEST(connection_options::from_url("postgresql://h").dbname.empty());
}

BOOST_AUTO_TEST_CASE(unix_sockets_by_percent_encoded_host_or_host_parameter) {
    auto a = connection_options::from_url("postgresql://app@%2Frun%2Fpostgresql:5433/db");
    BOOST_TEST(a.is_unix_socket());
    BOOST_TEST(a.host == "/run/postgresql");
    BOOST_TEST(a.port == 5433);
    BOOST_TEST(a.describe() == "postgresql://app@/db?host=/run/postgresql&port=5433");

    auto b = connection_options::from_url("postgresql:///db?host=/var/run/postgresql");
    BOOST_TEST(b.is_unix_socket());
    BOOST_TEST(b.host == "/var/run/postgresql");
    BOOST_TEST(b.dbname == "db");

    // No host at all: libpq's default (its socket directory, or PGHOST).
    auto c = connection_options::from_url("postgresql:///db");
    BOOST_TEST(c.host.empty());
    BOOST_TEST(!c.is_unix_socket());
}

BOOST_AUTO_TEST_CASE(our_parameters_and_libpqs) {
    auto c = connection_options::from_url(
        "postgresql://u@h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem&pool_size=8&connect_timeout=3"
        "&request_timeout=1500&statement_timeout=1s&health_check_interval=2min&application_name=sessiond"
        "&options=-c%20search_path%3Dsk&user=other&port=6000");
    BOOST_TEST(c.sslmode == "verify-full");
    BOOST_TEST(parameter(c, "sslrootcert") == "/etc/ca.pem");
    BOOST_TEST(parameter(c, "options") == "-c search_path=sk");
    BOOST_TEST(c.pool_size == 8u);
    BOOST_TEST((c.connect_timeout == 3s));  // libpq's unit: seconds
    BOOST_TEST((c.request_timeout == 1500ms));
    BOOST_TEST((c.statement_timeout == 1000ms));
    BOOST_TEST((c.effective_statement_timeout() == 1000ms));
    BOOST_TEST((c.health_check_interval == 2min));
    BOOST_TEST(c.application_name == "sessiond");
    BOOST_TEST(c.user == "other");  // the query wins, as in libpq
    BOOST_TEST(c.port == 6000);

    // Unset, the server gives up at four fifths of the client's deadline;
    // 0 leaves the server's own setting.
    auto d = connection_options::from_url("postgresql://h/db?request_timeout=2s");
    BOOST_TEST(!d.statement_timeout.has_value());
    BOOST_TEST((d.effective_statement_timeout() == 1600ms));
    BOOST_TEST(
        (connection_options::from_url("postgresql://h/db?statement_timeout=0").effective_statement_timeout() == 0ms));
    BOOST_TEST((connection_options::from_url("postgresql://h/db?connect_timeout=250ms").connect_timeout == 250ms));
}

BOOST_AUTO_TEST_CASE(every_bad_field_is_named) {
    BOOST_TEST(contains(failure_of("mysql://h/db"), "scheme 'mysql'"));
    BOOST_TEST(contains(failure_of("not a url"), "not a URL"));
    BOOST_TEST(contains(failure_of("postgresql:db"), "no '//'"));
    BOOST_TEST(contains(failure_of("postgresql://h:0/db"), "port '0' is not 1..65535"));
    BOOST_TEST(contains(failure_of("postgresql://h:70000/db"), "port '70000'"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?port=x"), "port 'x'"));
    BOOST_TEST(contains(failure_of("postgresql://h/a/b"), "database name 'a/b'"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?sslmode=maybe"), "sslmode 'maybe'"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?pool_size=0"), "pool_size '0' is not 1..256"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?pool_size=many"), "pool_size 'many'"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?request_timeout=5x"), "request_timeout '5x' is not a duration"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?request_timeout=0"), "request_timeout must be more than 0"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?connect_timeout=0"), "connect_timeout must be more than 0"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?connect_timeout=-1"), "connect_timeout '-1'"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?statement_timeout=2days"), "statement_timeout '2days'"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?health_check_interval=99999999min"), "health_check_interval"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?request_timeout=1s&statement_timeout=1s"),
                        "statement_timeout (1000 ms) must be shorter than request_timeout (1000 ms)"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?pool=2"), "unknown query parameter 'pool'"));
    BOOST_TEST(contains(failure_of("postgresql://h1,h2/db"), "several hosts"));
    BOOST_TEST(contains(failure_of("postgresql:///db?host=relative/dir"), "host 'relative/dir'"));
    BOOST_TEST(contains(failure_of("postgresql://h/db?application_name=a%00b"), "application_name contains a NUL"));
}

BOOST_AUTO_TEST_CASE(passwords_never_appear_in_errors) {
    auto a = failure_of("postgresql://u:topsecret@h:0/db");
    BOOST_TEST(!contains(a, "topsecret"));
    BOOST_TEST(contains(a, "postgresql://u:***@h:0/db"));

    auto b = failure_of("postgresql://h/db?password=topsecret&pool_size=0");
    BOOST_TEST(!contains(b, "topsecret"));
    BOOST_TEST(contains(b, "password=***&pool_size=0"));

    auto c = failure_of("postgresql://h/db?sslpassword=topsecret&bad=1");
    BOOST_TEST(!contains(c, "topsecret"));

    // A '@' in the query is not the end of the user info.
    auto d = failure_of("postgresql://u:topsecret@h/db?application_name=a@b&x=1");
    BOOST_TEST(!contains(d, "topsecret"));

    // The password given as a parameter is read, and kept out of describe().
    auto ok = connection_options::from_url("postgresql://u@h/db?password=p%26w");
    BOOST_TEST(ok.password == "p&w");
    BOOST_TEST(!contains(ok.describe(), "p&w"));
}

BOOST_AUTO_TEST_CASE(database_url_from_the_environment) {
    ::setenv("SESSIONKIT_TEST_PG_URL", "postgresql://u@h:5555/envdb", 1);
    auto c = connection_options::from_env("SESSIONKIT_TEST_PG_URL");
    BOOST_TEST(c.port == 5555);
    BOOST_TEST(c.dbname == "envdb");
    ::unsetenv("SESSIONKIT_TEST_PG_URL");
    try {
        connection_options::from_env("SESSIONKIT_TEST_PG_URL");
        BOOST_FAIL("an unset variable was accepted");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST((e.code() == sessionkit::error::invalid_argument));
        BOOST_TEST(contains(e.what(), "SESSIONKIT_TEST_PG_URL is not set"));
    }
}

BOOST_AUTO_TEST_SUITE_END()
