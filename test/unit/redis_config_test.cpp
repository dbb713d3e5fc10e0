// redis::connection_options::from_url: every form we accept, and every bad URL named.
#include <sessionkit/redis/config.hpp>

#include <boost/test/unit_test.hpp>

using sessionkit::redis::connection_options;

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
}  // namespace

BOOST_AUTO_TEST_SUITE(redis_config)

BOOST_AUTO_TEST_CASE(plain_tls_and_unix_urls) {
    auto c = connection_options::from_url("redis://127.0.0.1:6380/2");
    BOOST_TEST((c.via == connection_options::transport::tcp));
    BOOST_TEST(c.host == "127.0.0.1");
    BOOST_TEST(c.port == 6380);
    BOOST_TEST(c.db == 2);
    BOOST_TEST(c.password.empty());
    BOOST_TEST(c.describe() == "redis://127.0.0.1:6380/2");

    auto d = connection_options::from_url("redis://redis.internal");
    BOOST_TEST(d.port == 6379);
    BOOST_TEST(d.db == 0);

    auto a = connection_options::from_url("redis://app:s%40cret@db.example:7000/1");
    BOOST_TEST(a.user == "app");
    BOOST_TEST(a.password == "s@cret");
    BOOST_TEST(a.describe().find("cret") == std::string::npos);

    auto p = connection_options::from_url("redis://:only-password@h/0");
    BOOST_TEST(p.user.empty());
    BOOST_TEST(p.password == "only-password");

    auto t = connection_options::from_url("rediss://cache.example:6390/0?insecure=true&sni=other.example");
    BOOST_TEST((t.via == connection_options::transport::tls));
    BOOST_TEST(!t.tls_verify);
    BOOST_TEST(t.tls_sni == "other.example");

    auto u = connection_options::from_url("unix:///run/redis/redis.sock?db=3");
    BOOST_TEST((u.via == connection_options::transport::unix_socket));
    BOOST_TEST(u.socket_path == "/run/redis/redis.sock");
    BOOST_TEST(u.db == 3);

    auto v6 = connection_options::from_url("redis://[::1]:6379");
    BOOST_TEST(v6.host == "::1");
}

BOOST_AUTO_TEST_CASE(bad_urls_are_named_with_the_password_masked) {
    BOOST_TEST(failure_of("http://h:1").find("scheme 'http'") != std::string::npos);
    BOOST_TEST(failure_of("redis://h:0").find("port '0'") != std::string::npos);
    BOOST_TEST(failure_of("redis://h:99999").find("port '99999'") != std::string::npos);
    BOOST_TEST(failure_of("redis://h:1/x").find("database 'x'") != std::string::npos);
    BOOST_TEST(failure_of("redis://h/0?tls=1").find("unknown query parameter 'tls'") != std::string::npos);
    BOOST_TEST(failure_of("unix://relative").find("absolute socket path") != std::string::npos);
    BOOST_TEST(failure_of("not a url").find("not a URL") != std::string::npos);
    auto masked = failure_of("redis://u:topsecret@h:0/0");
    BOOST_TEST(masked.find("topsecret") == std::string::npos);
    BOOST_TEST(masked.find("***") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
