// sessionkit/output.hpp — a session's output log: what its worker wrote.
//
// The log is an optional capability of a session_store (output_log below).
// Bytes are addressed by offset from the first byte the session's worker
// ever wrote, so a reader that keeps its next_offset reads every byte once,
// in order, however the writes were split. The log is bounded: when it
// exceeds its limit the oldest bytes are dropped, and a reader that asks
// for them is told (`dropped`) and given the oldest bytes still kept.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sessionkit {

/// What one read of an output log returns.
struct output_chunk {
    std::string data;
    std::uint64_t offset = 0;       ///< offset of data's first byte
    std::uint64_t next_offset = 0;  ///< offset + data.size(): where the next read starts
    /// True when bytes between the offset asked for and `offset` were
    /// dropped because the log is bounded.
    bool dropped = false;
};

/// Reads return at most this many bytes, whatever the caller asks for.
inline constexpr std::size_t max_output_read = 1 << 20;

/// output_log: the optional store capability behind registry.read_output
/// and a spawner's output.
///   - append_output(id, bytes): adds bytes at the end of the log of session
///     `id`; false (nothing kept) when there is no such record. Finished
///     records keep their log until they are purged, so a failed worker's
///     last words can be read.
///   - read_output(id, offset, max): up to `max` bytes from `offset`;
///     nullopt when there is no such record. An offset past the end is
///     error::invalid_argument naming both.
/// The log goes with its record: erase, purge and a new session under a
/// finished one's id all start from nothing.
template <class S>
concept output_log = requires(S& s, std::string_view id, std::string_view bytes, std::uint64_t offset,
                              std::size_t max) {
    { s.append_output(id, bytes) } -> std::same_as<boost::asio::awaitable<bool>>;
    { s.read_output(id, offset, max) } -> std::same_as<boost::asio::awaitable<std::optional<output_chunk>>>;
};

namespace detail {

/// A bounded byte log with absolute offsets. Keeps the last `limit` bytes;
/// the buffer may grow to twice that before the dropped front is cut, so an
/// append costs amortised O(bytes), not a move of the whole log.
class bounded_output {
public:
    explicit bounded_output(std::size_t limit) : limit_(limit) {}

    void append(std::string_view bytes) {
        if (bytes.size() >= limit_) {
            // Only the tail of this write survives.
            base_ += buffer_.size() + (bytes.size() - limit_);
            buffer_.assign(bytes.substr(bytes.size() - limit_));
            return;
        }
        buffer_.append(bytes);
        if (buffer_.size() > 2 * limit_) {
            const std::size_t cut = buffer_.size() - limit_;
            buffer_.erase(0, cut);
            base_ += cut;
        }
    }

    /// Offset of the oldest byte still kept, and one past the newest.
    std::uint64_t first() const noexcept { return end() - std::min<std::uint64_t>(buffer_.size(), limit_); }
    std::uint64_t end() const noexcept { return base_ + buffer_.size(); }

    /// Throws error::invalid_argument (naming `what`) for an offset past the end.
    output_chunk read(std::uint64_t offset, std::size_t max, std::string_view what) const {
        if (offset > end())
            throw_error(error::invalid_argument, std::string(what) + ": offset " + std::to_string(offset) +
                                                     " is past the end of the output (" + std::to_string(end()) +
                                                     " bytes so far)");
        output_chunk out;
        out.dropped = offset < first();
        out.offset = std::max(offset, first());
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>({end() - out.offset, max, max_output_read}));
        out.data.assign(buffer_, static_cast<std::size_t>(out.offset - base_), n);
        out.next_offset = out.offset + n;
        return out;
    }

private:
    std::size_t limit_;
    std::string buffer_;
    std::uint64_t base_ = 0;  ///< offset of buffer_[0]
};

}  // namespace detail
}  // namespace sessionkit
