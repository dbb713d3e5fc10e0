// sessionkit/sink/jsonl.hpp — events as JSON lines on a stream or a file.
//
// Each event is one line (see event.hpp for the fields). emit() only turns
// the event into its line and queues it; a writer thread of the sink's own
// writes and flushes the queue. So a stream that stalls (the pipe of a
// reader that stopped reading `sessiond --events -`) holds up no request or
// janitor thread: the queue fills instead. It is bounded (max_queued lines,
// waiting or being written); an event that finds it full is dropped and
// counted, as is one the stream fails to take: dropped(). Delivery is at
// most once, nothing is retried, and emit never throws into a session
// operation. Lines from several threads never interleave. flush() waits
// for what was emitted before it (flush_for, for a while); destroying the
// last copy of a sink writes every line still queued, then ends the writer
// (so it waits as long as the stream takes).
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>

#include <boost/json/serialize.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace sessionkit {

class jsonl_sink {
public:
    /// Lines held (waiting or being written) by default before events are dropped.
    static constexpr std::size_t default_max_queued = 10'000;

    /// Writes to a stream the caller keeps alive (std::cout, a stringstream)
    /// for as long as any copy of the sink. Throws error::invalid_argument
    /// when max_queued is 0.
    explicit jsonl_sink(std::ostream& out, std::size_t max_queued = default_max_queued)
        : state_{std::make_shared<state>(&out, checked(max_queued))} {
        state_->start();
    }

    /// Appends to a file, creating it if needed. Throws
    /// error::backend_unavailable naming the path when it cannot be opened.
    explicit jsonl_sink(const std::string& path, std::size_t max_queued = default_max_queued)
        : state_{std::make_shared<state>(nullptr, checked(max_queued))} {
        state_->file.open(path, std::ios::out | std::ios::app);
        if (!state_->file)
            throw_error(error::backend_unavailable, "jsonl_sink: cannot open '" + path + "' for appending");
        state_->out = &state_->file;
        state_->start();
    }

    /// Queues the event's line for the writer; never waits for the stream.
    void emit(const event& e) noexcept {
        try {
            std::string line = boost::json::serialize(to_json(e));
            line += '\n';
            {
                std::lock_guard lock(state_->mutex);
                if (state_->held >= state_->max_queued) {
                    state_->dropped.fetch_add(1, std::memory_order_relaxed);
                    return;
                }
                state_->queue.push_back(std::move(line));
                ++state_->held;
                ++state_->accepted;
            }
            state_->work.notify_one();
        } catch (...) {
            state_->dropped.fetch_add(1, std::memory_order_relaxed);
        }
    }

    /// Waits until every event emitted before the call has been written (or
    /// counted as dropped). A stream that never takes another byte makes it
    /// wait for ever: see flush_for.
    void flush() {
        std::unique_lock lock(state_->mutex);
        const std::uint64_t target = state_->accepted;
        state_->progress.wait(lock, [&] { return state_->done >= target; });
    }

    /// flush() for at most `timeout`: true when everything emitted before
    /// the call was written (or counted as dropped) in time.
    bool flush_for(std::chrono::milliseconds timeout) {
        std::unique_lock lock(state_->mutex);
        const std::uint64_t target = state_->accepted;
        return state_->progress.wait_for(lock, timeout, [&] { return state_->done >= target; });
    }

    /// Events dropped: the queue was full, or the stream failed to take them.
    std::uint64_t dropped() const noexcept { return state_->dropped.load(std::memory_order_relaxed); }

    /// Lines waiting or being written now (at most max_queued).
    std::size_t queued() const {
        std::lock_guard lock(state_->mutex);
        return state_->held;
    }

private:
    static std::size_t checked(std::size_t max_queued) {
        if (max_queued == 0) throw_error(error::invalid_argument, "jsonl_sink: max_queued must be at least 1");
        return max_queued;
    }

    // Shared so that copies (a registry and its janitors each hold one)
    // queue to one writer and one stream. The writer thread holds no
    // reference: the last copy's destruction stops and joins it.
    struct state {
        state(std::ostream* o, std::size_t limit) : out(o), max_queued(limit) {}
        state(const state&) = delete;
        state& operator=(const state&) = delete;
        ~state() {
            {
                std::lock_guard lock(mutex);
                stopping = true;
            }
            work.notify_one();
            if (writer.joinable()) writer.join();
        }

        void start() {
            writer = std::thread([this] { run(); });
        }

        // Takes everything queued at once, writes it outside the lock and
        // flushes once per batch; drains the queue before it stops.
        void run() {
            std::vector<std::string> batch;
            std::unique_lock lock(mutex);
            for (;;) {
                work.wait(lock, [&] { return stopping || !queue.empty(); });
                if (queue.empty()) return;  // stopping, and nothing left to write
                batch.swap(queue);
                lock.unlock();
                write(batch);
                const auto n = batch.size();
                batch.clear();
                lock.lock();
                held -= n;
                done += n;
                progress.notify_all();
            }
        }

        void write(const std::vector<std::string>& batch) noexcept {
            std::size_t unflushed = 0;  // written, lost if the flush fails
            std::size_t i = 0;          // the line being written
            try {
                for (; i < batch.size(); ++i) {
                    out->write(batch[i].data(), static_cast<std::streamsize>(batch[i].size()));
                    if (*out) {
                        ++unflushed;
                    } else {
                        dropped.fetch_add(1, std::memory_order_relaxed);
                        out->clear();
                    }
                }
                out->flush();
                if (!*out) {
                    dropped.fetch_add(unflushed, std::memory_order_relaxed);
                    out->clear();
                }
            } catch (...) {
                // A stream with exceptions() set: the line it threw on and
                // the rest are lost, or, when the flush threw, what it held.
                dropped.fetch_add(i < batch.size() ? batch.size() - i : unflushed, std::memory_order_relaxed);
                try {
                    out->clear();
                } catch (...) {}
            }
        }

        std::ofstream file;
        std::ostream* out;
        const std::size_t max_queued;
        std::mutex mutex;
        std::condition_variable work;      ///< lines queued, or stopping
        std::condition_variable progress;  ///< a batch was written
        std::vector<std::string> queue;    ///< waiting for the writer
        std::size_t held = 0;              ///< queued + being written
        std::uint64_t accepted = 0;        ///< lines ever queued
        std::uint64_t done = 0;            ///< of those, written or dropped by the writer
        bool stopping = false;
        std::atomic<std::uint64_t> dropped{0};
        std::thread writer;  ///< started by start(), once the stream is set
    };
    std::shared_ptr<state> state_;
};
static_assert(event_sink<jsonl_sink>);

}  // namespace sessionkit
