// The follow streams' parts without a socket: UTF-8 and base64 (how
// output goes into JSON), the server-sent-event format, the event hub, and
// the two stream bodies driven against a memory_store registry with a
// stream_writer that records what it is given.
#include <sessionkit/detail/text.hpp>
#include <sessionkit/http/follow.hpp>
#include <sessionkit/http/sse.hpp>
#include <sessionkit/registry.hpp>
#include <sessionkit/sink/hub.hpp>
#include <sessionkit/store/memory.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <string>
#include <thread>
#include <vector>

using namespace sessionkit;
using namespace std::chrono_literals;

namespace {

// Records every piece; says the server stops once `stop_after` pieces
// were sent (0: never), and that the client left after `gone_after`.
class recording_writer final : public http::stream_writer {
public:
    std::vector<std::string> pieces;
    std::size_t stop_after = 0;
    std::size_t gone_after = 0;

    awaitable<bool> send(std::string piece) override {
        if (gone_after && pieces.size() >= gone_after) co_return false;
        pieces.push_back(std::move(piece));
        co_return true;
    }
    bool stopping() const noexcept override { return stop_after && pieces.size() >= stop_after; }

    // The data of each event that is not a comment, with its event type
    // ("" for the default) in front: "end {...}".
    std::vector<std::string> events() const {
        std::vector<std::string> out;
        for (const auto& p : pieces) {
            if (p.rfind(": ", 0) == 0) continue;
            std::string type, data;
            std::size_t at = 0;
            while (at < p.size()) {
                const auto end = p.find('\n', at);
                const std::string line = p.substr(at, end - at);
                if (line.rfind("event: ", 0) == 0) type = line.substr(7);
                if (line.rfind("data: ", 0) == 0) data += line.substr(6);
                at = end + 1;
            }
            out.push_back(type.empty() ? data : type + " " + data);
        }
        return out;
    }
};

template <class Awaitable>
auto run(boost::asio::io_context& ctx, Awaitable a) {
    auto f = boost::asio::co_spawn(ctx, std::move(a), boost::asio::use_future);
    ctx.restart();
    ctx.run();
    return f.get();
}

// A session with `initial` output, on a memory store, to follow.
struct followed_session {
    memory_store store;
    session_registry<memory_store> registry{store};
    boost::asio::io_context ctx;
    std::string id;

    followed_session(std::string name, std::string initial) {
        id = run(ctx, registry.acquire(name, acquire_options{})).record.id;
        run(ctx, store.append_output(id, initial));
    }
    // Runs `change` on another thread after `delay`, while the caller follows.
    template <class Change>
    std::thread later(std::chrono::milliseconds delay, Change change) {
        return std::thread([delay, change] {
            std::this_thread::sleep_for(delay);
            boost::asio::io_context other;
            change(other);
        });
    }
    void follow(recording_writer& w, std::uint64_t from) {
        run(ctx, http::follow_output(registry, w, id, from, http::follow_options{10ms, 10s}));
    }
};

event numbered(int n, std::string session = "s1", event_type type = event_type::created) {
    return event{"e" + std::to_string(n), type, std::move(session), from_unix_ms(n), {}};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(follow)

BOOST_AUTO_TEST_CASE(utf8_is_checked_as_the_standard_says) {
    using sessionkit::detail::valid_utf8;
    BOOST_TEST(valid_utf8(""));
    BOOST_TEST(valid_utf8("hello\n"));
    BOOST_TEST(valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));  // é € 😀
    BOOST_TEST(!valid_utf8("\xC0\xAF"));                                  // overlong '/'
    BOOST_TEST(!valid_utf8("\xE0\x80\xAF"));                              // overlong, 3 bytes
    BOOST_TEST(!valid_utf8("\xED\xA0\x80"));                              // a surrogate
    BOOST_TEST(!valid_utf8("\xF4\x90\x80\x80"));                          // past U+10FFFF
    BOOST_TEST(!valid_utf8("\xFF"));
    BOOST_TEST(!valid_utf8("\x80"));       // a lone continuation byte
    BOOST_TEST(!valid_utf8("a\xE2\x82"));  // cut
}

BOOST_AUTO_TEST_CASE(text_goes_as_text_and_a_cut_character_waits) {
    using sessionkit::detail::valid_utf8_prefix;
    BOOST_TEST(valid_utf8_prefix("") == 0u);
    BOOST_TEST(valid_utf8_prefix("abc") == 3u);
    BOOST_TEST(valid_utf8_prefix("a\xE2\x82") == 1u);
    BOOST_TEST(valid_utf8_prefix("ab\xFF"
                                 "c") == 2u);
    auto send = [](std::string data, bool ended) {
        const std::uint64_t at = 100;
        auto piece = http::output_to_send(output_chunk{data, at, at + data.size(), false}, ended);
        return piece ? http::output_event_data(*piece) : std::string("(wait)");
    };
    BOOST_TEST(send("hi\n", false) == R"({"offset":100,"next_offset":103,"text":"hi\n"})");
    // The valid prefix goes now; the cut character waits for its bytes.
    BOOST_TEST(send("a\xE2\x82", false) == R"({"offset":100,"next_offset":101,"text":"a"})");
    BOOST_TEST(send("\xE2\x82", false) == "(wait)");
    BOOST_TEST(send("\xE2\x82", true) == R"({"offset":100,"next_offset":102,"base64":"4oI="})");  // ended: as is
    // Bytes that are not UTF-8: the text before them, then the rest as base64.
    BOOST_TEST(send("ok\xFF!", false) == R"({"offset":100,"next_offset":102,"text":"ok"})");
    BOOST_TEST(send("\xFF!", false) == R"({"offset":100,"next_offset":102,"base64":"/yE="})");
    BOOST_TEST(send("", false) == "(wait)");
    auto dropped = http::output_to_send(output_chunk{"", 50, 50, true}, false);
    BOOST_REQUIRE(dropped);
    BOOST_TEST(dropped->dropped);
}

BOOST_AUTO_TEST_CASE(base64_matches_the_rfc_vectors) {
    using sessionkit::detail::to_base64;
    // RFC 4648 section 10.
    BOOST_TEST(to_base64("") == "");
    BOOST_TEST(to_base64("f") == "Zg==");
    BOOST_TEST(to_base64("fo") == "Zm8=");
    BOOST_TEST(to_base64("foo") == "Zm9v");
    BOOST_TEST(to_base64("foob") == "Zm9vYg==");
    BOOST_TEST(to_base64("fooba") == "Zm9vYmE=");
    BOOST_TEST(to_base64("foobar") == "Zm9vYmFy");
    BOOST_TEST(to_base64(std::string("\x00\xFF\xFE", 3)) == "AP/+");
}

BOOST_AUTO_TEST_CASE(server_sent_events_are_framed_line_by_line) {
    BOOST_TEST(http::sse_event("", "", "x") == "data: x\n\n");
    BOOST_TEST(http::sse_event("end", "12", "a\nb") == "event: end\nid: 12\ndata: a\ndata: b\n\n");
    BOOST_TEST(http::sse_event("", "", "") == "data: \n\n");
    BOOST_TEST(http::sse_comment("keep-alive") == ": keep-alive\n\n");
}

BOOST_AUTO_TEST_CASE(output_data_is_text_when_it_can_be_and_base64_when_not) {
    output_chunk text{"h\xC3\xA9\n", 4, 8, false};
    BOOST_TEST(http::output_event_data(text) == R"({"offset":4,"next_offset":8,"text":"hé\n"})");
    output_chunk binary{std::string("\x00\xFF", 2), 0, 2, true};
    BOOST_TEST(http::output_event_data(binary) == R"({"offset":0,"next_offset":2,"base64":"AP8=","dropped":true})");
}

BOOST_AUTO_TEST_CASE(a_hub_numbers_events_keeps_the_last_and_says_what_a_reader_missed) {
    event_hub hub(3);
    BOOST_TEST(hub.last() == 0u);
    for (int n = 1; n <= 5; ++n) hub.emit(numbered(n));
    BOOST_TEST(hub.last() == 5u);
    auto all = hub.read(0, 100);
    BOOST_TEST(all.missed == 2u);  // 1 and 2 are no longer kept
    BOOST_REQUIRE(all.events.size() == 3u);
    BOOST_TEST(all.events.front().id == "e3");
    BOOST_TEST(all.next == 5u);
    auto some = hub.read(3, 1);
    BOOST_TEST(some.missed == 0u);
    BOOST_REQUIRE(some.events.size() == 1u);
    BOOST_TEST(some.events.front().id == "e4");
    BOOST_TEST(some.next == 4u);
    auto none = hub.read(5, 10);
    BOOST_TEST(none.events.empty());
    BOOST_TEST(none.next == 5u);
    BOOST_TEST(hub.number_of("e4").value_or(0) == 4u);
    BOOST_TEST(!hub.number_of("e1"));
    BOOST_CHECK_THROW(event_hub(0), boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(an_event_published_again_is_kept_once) {
    event_hub hub(10);
    boost::asio::io_context ctx;
    std::vector<event> batch{numbered(1), numbered(2)};
    run(ctx, hub.publish(batch));
    run(ctx, hub.publish(batch));  // a relay's retry after another sink failed
    hub.emit(numbered(2));
    BOOST_TEST(hub.last() == 2u);
    BOOST_TEST(hub.read(0, 10).events.size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_waiting_reader_wakes_when_another_thread_emits) {
    event_hub hub;
    event_hub feeding = hub;  // copies share
    boost::asio::io_context ctx;
    std::thread emitter([&] {
        std::this_thread::sleep_for(50ms);
        feeding.emit(numbered(1));
    });
    const auto started = std::chrono::steady_clock::now();
    run(ctx, hub.wait(0, 10s));
    emitter.join();
    BOOST_TEST(hub.last() == 1u);
    BOOST_TEST((std::chrono::steady_clock::now() - started < 5s));
}

BOOST_AUTO_TEST_CASE(an_output_follower_gets_every_byte_once_then_the_end) {
    followed_session f("s-follow", "hello\n\xE2\x82");  // € cut in two
    recording_writer w;
    auto writer = f.later(60ms, [&f](boost::asio::io_context& other) {
        run(other, f.store.append_output(f.id, "\xAC!\xFF"));
        std::this_thread::sleep_for(60ms);
        run(other, f.registry.terminate(f.id, "done"));
    });
    f.follow(w, 0);
    writer.join();
    const auto got = w.events();
    for (const auto& e : got) BOOST_TEST_MESSAGE("got " << e);
    BOOST_REQUIRE(got.size() == 4u);
    BOOST_TEST(got[0] == R"({"offset":0,"next_offset":6,"text":"hello\n"})");
    BOOST_TEST(got[1] == R"({"offset":6,"next_offset":10,"text":"€!"})");  // the € once whole
    BOOST_TEST(got[2] == R"({"offset":10,"next_offset":11,"base64":"/w=="})");
    BOOST_TEST(got[3] == R"(end {"next_offset":11,"status":"terminated","end_reason":"done"})");
    BOOST_TEST(w.pieces[0].find("id: 6\n") != std::string::npos);  // where a reconnecting client resumes
}

BOOST_AUTO_TEST_CASE(an_output_follower_resumes_from_an_offset_and_stops_with_the_server) {
    followed_session f("s-resume", "abcdef");
    recording_writer w;
    w.stop_after = 1;
    f.follow(w, 4);
    BOOST_REQUIRE(w.events().size() == 1u);
    BOOST_TEST(w.events()[0] == R"({"offset":4,"next_offset":6,"text":"ef"})");
}

BOOST_AUTO_TEST_CASE(an_output_follower_of_a_session_erased_meanwhile_is_told_so) {
    followed_session f("s-erased", "x");
    recording_writer w;
    auto eraser = f.later(50ms, [&f](boost::asio::io_context& other) { run(other, f.store.erase(f.id)); });
    f.follow(w, 0);
    eraser.join();
    const auto got = w.events();
    BOOST_REQUIRE(got.size() == 2u);
    BOOST_TEST(got[1] == R"(end {"next_offset":1,"status":null})");
}

BOOST_AUTO_TEST_CASE(an_event_follower_gets_what_it_asked_for_and_resumes_after_an_id) {
    event_hub hub(100);
    hub.emit(numbered(1, "a"));
    http::events_cmd cmd;
    cmd.follow = true;
    cmd.session = "b";
    cmd.types = {event_type::expired};
    recording_writer w;
    w.stop_after = 2;
    std::thread feeder([hub]() mutable {
        std::this_thread::sleep_for(30ms);
        hub.emit(numbered(2, "b", event_type::created));
        hub.emit(numbered(3, "b", event_type::expired));
        hub.emit(numbered(4, "a", event_type::expired));
        hub.emit(numbered(5, "b", event_type::expired));
    });
    boost::asio::io_context ctx;
    run(ctx, http::follow_events(hub, w, cmd, http::follow_options{10ms, 10s}));
    feeder.join();
    // From now (not event 1), only b's expired ones.
    BOOST_REQUIRE(w.pieces.size() == 2u);
    BOOST_TEST(w.pieces[0].find("id: e3\n") != std::string::npos);
    BOOST_TEST(w.pieces[1].find("id: e5\n") != std::string::npos);

    // Reconnecting after e3 replays e4 and e5 (only e5 is wanted).
    recording_writer again;
    again.stop_after = 1;
    cmd.last_event_id = "e3";
    run(ctx, http::follow_events(hub, again, cmd, http::follow_options{10ms, 10s}));
    BOOST_REQUIRE(again.pieces.size() == 1u);
    BOOST_TEST(again.pieces[0].find("id: e5\n") != std::string::npos);

    // After an id the hub no longer keeps: told so, then all that is kept.
    recording_writer lost;
    lost.stop_after = 3;
    cmd.last_event_id = "gone";
    run(ctx, http::follow_events(hub, lost, cmd, http::follow_options{10ms, 10s}));
    for (const auto& e : lost.pieces) BOOST_TEST_MESSAGE("lost " << e);
    BOOST_REQUIRE(lost.events().size() == 3u);
    BOOST_TEST(lost.events()[0] == R"(missed {"missed":null})");
    BOOST_TEST(lost.pieces[1].find("id: e3\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_follower_whose_client_left_ends) {
    event_hub hub(100);
    recording_writer w;
    w.gone_after = 1;
    std::thread feeder([hub]() mutable {
        for (int n = 1; n <= 3; ++n) {
            std::this_thread::sleep_for(20ms);
            hub.emit(numbered(n));
        }
    });
    boost::asio::io_context ctx;
    http::events_cmd cmd;
    cmd.follow = true;
    run(ctx, http::follow_events(hub, w, cmd, http::follow_options{10ms, 10s}));
    feeder.join();
    BOOST_TEST(w.pieces.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
