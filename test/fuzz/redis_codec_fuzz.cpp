// libFuzzer target: arbitrary RESP reply trees through every decoder of
// redis_store (store/redis/codec.hpp and store/redis/detail/replies.hpp).
// The input bytes describe the tree (see `build`): each node's kind, then
// its payload: a string (from `words`, or raw bytes), an integer, a double's
// text, or an aggregate's element count. Nothing may crash or trip
// ASan/UBSan, and:
//   - the only exception is a system_error of sessionkit's category;
//   - what comes back is consistent: a decoded record has the id it was
//     asked for, a pick of candidates holds at most `limit` ids, a merged
//     page at most `limit` sessions, in id order.
// The seeds in corpus/redis_codec use the indexes of `words`: append to it,
// never reorder.
#include <sessionkit/store/redis/codec.hpp>
#include <sessionkit/store/redis/detail/replies.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace sessionkit;
namespace codec = sessionkit::redis_store_codec;
namespace replies = sessionkit::detail::redis_store;
namespace rp = sessionkit::redis::resp;

session sample(std::string id) {
    session s;
    s.id = std::move(id);
    s.owner = "o";
    s.status = session_status::active;
    s.created_at = from_unix_ms(1'700'000'000'000);
    s.last_active = s.created_at;
    s.idle_timeout = milliseconds{60'000};
    s.idle_deadline = s.created_at + s.idle_timeout;
    return s;
}

/// Strings a decoder looks for, so that the fuzzer reaches past the first
/// check (a whole valid record needs a JSON document it would never guess).
const std::vector<std::string>& words() {
    static const std::vector<std::string> w = {
        "",                                                                   // 0
        "s1",                                                                 // 1: the id every decoder is asked about
        "1",                                                                  // 2
        "0",                                                                  // 3
        "-1",                                                                 // 4
        "active",                                                             // 5
        "stopping",                                                           // 6
        "terminated",                                                         // 7
        "1700000000000",                                                      // 8
        "1700000060000",                                                      // 9
        serialize(sample("s1")),                                              // 10: a valid doc for s1
        serialize(sample("s2")),                                              // 11: a valid doc for another session
        "{not json",                                                          // 12
        "nan",                                                                // 13
        "inf",                                                                // 14
        "1e999",                                                              // 15
        "CORRUPT field version of session s1 is not a number",                // 16
        "WRONGTYPE Operation against a key holding the wrong kind of value",  // 17
        "st:active",                                                          // 18
        "created_total",                                                      // 19
        "expired_total",                                                      // 20
        "terminated_total",                                                   // 21
        "20.5",                                                               // 22
        "99999999999999999999",                                               // 23
        " 5",                                                                 // 24
        "-5000000000001",                                                     // 25
        "5000000000000",                                                      // 26
        "idle",                                                               // 27
        "st:nonsense",                                                        // 28
        "-inf",                                                               // 29
        "1.5e3",                                                              // 30
    };
    return w;
}

struct reader {
    const std::uint8_t* p;
    std::size_t n;
    std::size_t nodes = 0;  // bounds the tree: an input's cost follows its size

    std::uint8_t byte() {
        if (n == 0) return 0;
        --n;
        return *p++;
    }
    std::string text() {
        const std::uint8_t b = byte();
        if (b < 0x80) return words()[b % words().size()];
        std::size_t len = (b & 0x7f) % 48;
        if (len > n) len = n;
        std::string s(reinterpret_cast<const char*>(p), len);
        p += len;
        n -= len;
        return s;
    }
    std::int64_t integer() {
        const std::uint8_t b = byte();
        if (b < 0xf0) return static_cast<std::int64_t>(b) - 16;
        std::uint64_t u = 0;
        for (int i = 0; i < 8; ++i) u = (u << 8) | byte();
        std::int64_t v;
        std::memcpy(&v, &u, sizeof v);
        return v;
    }
};

rp::value build(reader& r, int depth) {
    rp::value v;
    if (++r.nodes > 512) return v;
    const std::uint8_t k = r.byte();
    switch (k % 13) {
    case 0: break;  // null
    case 1:
        v.kind = rp::type::bulk_string;
        v.text = r.text();
        break;
    case 2:
        v.kind = rp::type::simple_string;
        v.text = r.text();
        break;
    case 3:
        v.kind = rp::type::integer;
        v.integer = r.integer();
        break;
    case 4:
        v.kind = rp::type::simple_error;
        v.text = r.text();
        break;
    case 5:
        v.kind = rp::type::bulk_error;
        v.text = r.text();
        break;
    case 6:
        v.kind = rp::type::boolean;
        v.integer = r.byte() & 1;
        break;
    // Hand-built doubles may hold any text: as_double must refuse bad ones.
    case 7:
        v.kind = rp::type::double_;
        v.text = r.text();
        break;
    case 8:
        v.kind = rp::type::verbatim_string;
        v.format = "txt";
        v.text = r.text();
        break;
    case 9:
        v.kind = rp::type::big_number;
        v.text = r.text();
        break;
    case 10: v.kind = rp::type::array; break;
    case 11: v.kind = rp::type::map; break;
    case 12: v.kind = rp::type::set; break;
    }
    if (v.kind == rp::type::array || v.kind == rp::type::map || v.kind == rp::type::set) {
        std::size_t count = r.byte() % 16;
        if (v.kind == rp::type::map) count -= count % 2;
        if (depth >= 6) count = 0;
        for (std::size_t i = 0; i < count; ++i) v.elements.push_back(build(r, depth + 1));
    }
    return v;
}

void check(bool ok) {
    if (!ok) std::abort();
}

/// Runs one decoder: it returns, or throws sessionkit's error; anything
/// else escapes and fails the run.
template <class F>
void guarded(F&& f) {
    try {
        f();
    } catch (const boost::system::system_error& e) {
        check(e.code().category() == error_category());
    }
}

void decode_everything(const rp::value& v, std::uint64_t offset, std::size_t limit) {
    static const session sent = sample("s1");
    guarded([&] { check(codec::decode_record("s1", v).id == "s1"); });
    guarded([&] {
        if (auto s = codec::decode_get("s1", v)) check(s->id == "s1");
    });
    guarded([&] {
        store_stats st;
        codec::add_stats(st, v);
        codec::finish_stats(st);
    });
    guarded([&] { codec::decode_stats(v.elements); });
    (void)codec::error_of_reply(v);
    guarded([&] {
        auto c = replies::decode_create(v, sent);
        check(c.record.id == "s1");
    });
    guarded([&] { replies::decode_touch(v); });
    guarded([&] { replies::decode_update(v); });
    guarded([&] { replies::decode_done(v); });
    guarded([&] { replies::decode_locked(v); });
    guarded([&] { replies::decode_count(v); });
    guarded([&] {
        if (auto out = replies::decode_output(v, offset)) check(out->next_offset == out->offset + out->data.size());
    });
    guarded([&] {
        std::vector<replies::candidate> all;
        replies::add_candidates(all, v, 0);
        for (auto& e : v.elements) replies::add_candidates(all, e, 1);
        auto picked = replies::pick_earliest(all, limit);
        std::size_t n = 0;
        for (auto& [p, ids] : picked) n += ids.size();
        check(n <= limit && n <= all.size());
    });
    // The outbox: a stream read, its positions, the dropped-event list.
    guarded([&] {
        auto read = replies::decode_outbox(v, "fuzz");
        check(read.entries.size() + read.skipped.size() == read.count);
        for (auto& e : read.entries) check(!e.ev.id.empty());
    });
    guarded([&] { (void)replies::first_entry_time(v); });
    guarded([&] { (void)replies::decode_counter(v); });
    guarded([&] { (void)replies::outbox_refusal(v, static_cast<std::int64_t>(offset)); });
    guarded([&] { (void)replies::decode_dropped_list(v, 0); });
    if (v.is_string()) {
        guarded([&] {
            if (auto pos = replies::parse_position(v.as_string())) {
                // The next position sorts after the one it follows.
                auto next = replies::parse_position(replies::next_position(v.as_string()));
                check(next && (next->first > pos->first || (next->first == pos->first && next->second > pos->second)));
            }
        });
        guarded([&] { (void)replies::decode_dropped(v.as_string(), 0); });
    }
    // A sweep's or list's reply: each element an entry.
    std::vector<session> sessions;
    guarded([&] {
        auto e = replies::decode_entry(v);
        check(!(e.record && !e.problem.empty()));  // a record never comes with a problem
        if (e.record) check(e.record->id == e.id);
    });
    for (auto& element : v.elements) {
        guarded([&] {
            auto e = replies::decode_entry(element);
            if (e.record) sessions.push_back(std::move(*e.record));
        });
    }
    guarded([&] {
        auto page = replies::merge_pages(sessions, offset & 1, limit == 0 ? 1 : limit);
        check(page.sessions.size() <= (limit == 0 ? 1 : limit));
        for (std::size_t i = 1; i < page.sessions.size(); ++i) check(page.sessions[i - 1].id <= page.sessions[i].id);
    });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    reader r{data, size};
    // Two bytes of parameters, then the tree.
    const std::uint64_t offset = r.byte();
    const std::size_t limit = r.byte() % 8;
    const rp::value v = build(r, 0);
    decode_everything(v, offset, limit);
    return 0;
}
