// sessionkit/docker/frames.hpp — the Docker attach stream's framing,
// sans I/O.
//
// A container created without a TTY multiplexes its stdout and stderr on
// an attach connection as frames: an 8-byte header [stream, 0, 0, 0,
// length as a big-endian uint32] and `length` bytes of payload (stream 1:
// stdout, 2: stderr; 0 is stdin and 3 an engine error, API 1.42+). Bytes
// arrive in pieces of any size; feed them in, take whole frames out.
#pragma once

#include <sessionkit/error.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sessionkit::docker {

struct frame {
    std::uint8_t stream = 0;  ///< 1 stdout, 2 stderr, 3 an engine error
    std::string payload;
};

class frame_reader {
public:
    /// A frame larger than this is a protocol error, not an allocation.
    static constexpr std::uint32_t max_payload = 16u << 20;

    void feed(std::string_view bytes) { buffer_.append(bytes); }

    /// The next whole frame, or nullopt until more bytes arrive.
    /// error::protocol_error for a header that is not a frame header.
    std::optional<frame> next() {
        if (buffer_.size() - offset_ < 8) {
            compact();
            return std::nullopt;
        }
        const auto* h = reinterpret_cast<const unsigned char*>(buffer_.data() + offset_);
        if (h[0] > 3 || h[1] != 0 || h[2] != 0 || h[3] != 0)
            throw_error(error::protocol_error, "docker attach stream: bytes that are not a frame header (stream " +
                                                   std::to_string(h[0]) + ")");
        const std::uint32_t length = (std::uint32_t{h[4]} << 24) | (std::uint32_t{h[5]} << 16) |
                                     (std::uint32_t{h[6]} << 8) | std::uint32_t{h[7]};
        if (length > max_payload)
            throw_error(error::protocol_error,
                        "docker attach stream: a frame of " + std::to_string(length) + " bytes (at most 16 MiB)");
        if (buffer_.size() - offset_ - 8 < length) {
            compact();
            return std::nullopt;
        }
        frame f{h[0], buffer_.substr(offset_ + 8, length)};
        offset_ += 8 + length;
        return f;
    }

    /// Bytes fed but not yet returned as frames.
    std::size_t pending() const noexcept { return buffer_.size() - offset_; }

private:
    void compact() {
        buffer_.erase(0, offset_);
        offset_ = 0;
    }

    std::string buffer_;
    std::size_t offset_ = 0;
};

}  // namespace sessionkit::docker
