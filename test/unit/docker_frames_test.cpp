// The Docker attach stream's frame reader, byte by byte.
#include <sessionkit/docker/frames.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using sessionkit::docker::frame_reader;

namespace {
std::string header(unsigned char stream, std::uint32_t length) {
    return {static_cast<char>(stream),
            0,
            0,
            0,
            static_cast<char>(length >> 24),
            static_cast<char>(length >> 16),
            static_cast<char>(length >> 8),
            static_cast<char>(length)};
}
}  // namespace

BOOST_AUTO_TEST_SUITE(docker_frames)

BOOST_AUTO_TEST_CASE(frames_split_at_every_position_come_out_whole) {
    const std::string stream = header(1, 5) + "hello" + header(2, 0) + header(2, 4) + "err\n" + header(1, 1) + "!";
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        frame_reader r;
        std::vector<std::pair<int, std::string>> got;
        r.feed(std::string_view(stream).substr(0, cut));
        while (auto f = r.next()) got.emplace_back(f->stream, f->payload);
        r.feed(std::string_view(stream).substr(cut));
        while (auto f = r.next()) got.emplace_back(f->stream, f->payload);
        BOOST_REQUIRE_MESSAGE(got.size() == 4u, "cut at " << cut);
        BOOST_TEST(got[0].first == 1);
        BOOST_TEST(got[0].second == "hello");
        BOOST_TEST(got[1].second.empty());
        BOOST_TEST(got[2].first == 2);
        BOOST_TEST(got[2].second == "err\n");
        BOOST_TEST(got[3].second == "!");
        BOOST_TEST(r.pending() == 0u);
    }
}

BOOST_AUTO_TEST_CASE(bytes_that_are_not_frames_are_a_protocol_error) {
    frame_reader bad_stream;
    bad_stream.feed("HTTP/1.1 500 x\r\n");
    BOOST_CHECK_THROW(bad_stream.next(), boost::system::system_error);
    frame_reader huge;
    huge.feed(header(1, 0x7fffffff));
    try {
        huge.next();
        BOOST_FAIL("expected protocol_error");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == sessionkit::make_error_code(sessionkit::error::protocol_error));
        BOOST_TEST(std::string(e.what()).find("2147483647 bytes") != std::string::npos);
    }
}

BOOST_AUTO_TEST_SUITE_END()
