// sessionkit/sink/jsonl.hpp — events as JSON lines on a stream or a file.
//
// Each event is one line (see event.hpp for the fields), written and
// flushed under a mutex so lines from several threads never interleave.
// A write to a local stream or file is short; a sink that can stall (a
// network) must queue instead (see nats_sink). When the stream fails, the
// sink counts the lost events (dropped()) and keeps going: emit never
// throws into a session operation.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>

#include <boost/json/serialize.hpp>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>

namespace sessionkit {

class jsonl_sink {
public:
    /// Writes to a stream the caller keeps alive (std::cout, a stringstream).
    explicit jsonl_sink(std::ostream& out) : state_{std::make_shared<state>(&out)} {}

    /// Appends to a file, creating it if needed. Throws
    /// error::backend_unavailable naming the path when it cannot be opened.
    explicit jsonl_sink(const std::string& path) : state_{std::make_shared<state>(nullptr)} {
        state_->file.open(path, std::ios::out | std::ios::app);
        if (!state_->file)
            throw_error(error::backend_unavailable, "jsonl_sink: cannot open '" + path + "' for appending");
        state_->out = &state_->file;
    }

    void emit(const event& e) noexcept {
        try {
            std::string line = boost::json::serialize(to_json(e));
            line += '\n';
            std::lock_guard lock(state_->mutex);
            state_->out->write(line.data(), static_cast<std::streamsize>(line.size()));
            state_->out->flush();
            if (!*state_->out) {
                state_->dropped.fetch_add(1, std::memory_order_relaxed);
                state_->out->clear();
            }
        } catch (...) {
            state_->dropped.fetch_add(1, std::memory_order_relaxed);
        }
    }

    /// Events that could not be written.
    std::uint64_t dropped() const noexcept { return state_->dropped.load(std::memory_order_relaxed); }

private:
    // Shared so that copies (a registry and its janitors each hold one)
    // write through one mutex to one stream.
    struct state {
        explicit state(std::ostream* o) : out(o) {}
        std::mutex mutex;
        std::ofstream file;
        std::ostream* out;
        std::atomic<std::uint64_t> dropped{0};
    };
    std::shared_ptr<state> state_;
};
static_assert(event_sink<jsonl_sink>);

} // namespace sessionkit
