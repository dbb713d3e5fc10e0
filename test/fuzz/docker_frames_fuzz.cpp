// libFuzzer target: arbitrary bytes through the Docker attach-stream frame
// reader, fed in fragments. The first input byte picks two fragment sizes
// (low and high nibble) used alternately; the rest is the stream. Nothing
// may crash or trip ASan/UBSan, and:
//   - the fragmented read and the one-shot read agree exactly: the same
//     frames, then the same error (or none);
//   - every frame is one the stream really holds: re-encoded, the frames
//     are a prefix of the stream;
//   - the only exception is a protocol_error system_error.
#include <sessionkit/docker/frames.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace docker = sessionkit::docker;

constexpr std::size_t sizes[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 16, 31, 64, 257, 1000};

struct outcome {
    std::vector<docker::frame> frames;
    bool failed = false;
    std::string error;
};

void drain(docker::frame_reader& r, outcome& out) {
    try {
        while (auto f = r.next()) out.frames.push_back(std::move(*f));
    } catch (const boost::system::system_error& e) {
        if (e.code() != sessionkit::make_error_code(sessionkit::error::protocol_error)) std::abort();
        out.failed = true;
        out.error = e.what();
    }
}

outcome read_in_pieces(std::string_view stream, std::size_t a, std::size_t b) {
    docker::frame_reader r;
    outcome out;
    for (std::size_t at = 0, turn = 0; at < stream.size() && !out.failed; ++turn) {
        std::size_t n = (turn % 2 ? b : a);
        if (n == 0) n = stream.size() - at;
        n = std::min(n, stream.size() - at);
        r.feed(stream.substr(at, n));
        at += n;
        drain(r, out);
    }
    return out;
}

std::string encode(const docker::frame& f) {
    std::string h(8, '\0');
    h[0] = static_cast<char>(f.stream);
    const auto n = static_cast<std::uint32_t>(f.payload.size());
    h[4] = static_cast<char>(n >> 24);
    h[5] = static_cast<char>(n >> 16);
    h[6] = static_cast<char>(n >> 8);
    h[7] = static_cast<char>(n);
    return h + f.payload;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t a = sizes[data[0] & 15], b = sizes[data[0] >> 4];
    const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
    const outcome pieces = read_in_pieces(stream, a, b);
    const outcome whole = read_in_pieces(stream, 0, 0);
    if (pieces.failed != whole.failed || pieces.error != whole.error) std::abort();
    if (pieces.frames.size() != whole.frames.size()) std::abort();
    std::string again;
    for (std::size_t i = 0; i < pieces.frames.size(); ++i) {
        if (pieces.frames[i].stream != whole.frames[i].stream || pieces.frames[i].payload != whole.frames[i].payload)
            std::abort();
        again += encode(pieces.frames[i]);
    }
    if (stream.substr(0, again.size()) != again) std::abort();
    return 0;
}
