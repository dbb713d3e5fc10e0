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
//
// publish(batch) (what an event_relay calls) is the confirmed path: its
// lines are never dropped for a full queue, and it returns once the writer
// has written and flushed them (and, for a file opened with `fsync`,
// fsync'ed it), or throws error::backend_unavailable naming the file when
// the stream refused them. The suspended publisher waits on a channel the
// writer thread completes: no executor thread ever waits for the stream.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <ostream>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace sessionkit {

struct jsonl_sink_options {
    /// Lines emit() may hold (waiting or being written) before it drops
    /// events (1 or more). publish() is not bounded by it.
    std::size_t max_queued = 10'000;
    /// A file only: fsync after each batch the writer writes, so a
    /// confirmed publish survives a crash of the machine, not only of the
    /// process.
    bool fsync = false;
};

class jsonl_sink {
public:
    /// Lines held (waiting or being written) by default before events are dropped.
    static constexpr std::size_t default_max_queued = jsonl_sink_options{}.max_queued;

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
        : jsonl_sink(path, jsonl_sink_options{max_queued, false}) {}
    jsonl_sink(const std::string& path, jsonl_sink_options options)
        : state_{std::make_shared<state>(nullptr, checked(options.max_queued))} {
        state_->fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (state_->fd < 0)
            throw_error(error::backend_unavailable, "jsonl_sink: cannot open '" + path +
                                                        "' for appending: " + std::system_category().message(errno));
        state_->name = "'" + path + "'";
        state_->fsync = options.fsync;
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
                state_->queue.push_back({std::move(line), nullptr});
                ++state_->held;
                ++state_->accepted;
            }
            state_->work.notify_one();
        } catch (...) {
            state_->dropped.fetch_add(1, std::memory_order_relaxed);
        }
    }

    /// Writes the batch's lines, in order, and returns once they are
    /// written and flushed (fsync'ed too with the option); throws
    /// error::backend_unavailable naming the stream when any was refused.
    awaitable<void> publish(std::span<const event> batch) {
        if (batch.empty()) co_return;
        auto executor = co_await boost::asio::this_coro::executor;
        auto c = std::make_shared<confirmation>(executor, batch.size());
        std::vector<std::string> lines;
        lines.reserve(batch.size());
        for (const auto& e : batch) {
            lines.push_back(boost::json::serialize(to_json(e)));
            lines.back() += '\n';
        }
        {
            std::lock_guard lock(state_->mutex);
            for (auto& l : lines) state_->queue.push_back({std::move(l), c});
            state_->held += batch.size();
            state_->accepted += batch.size();
        }
        state_->work.notify_one();
        co_await c->done.async_receive(boost::asio::use_awaitable);
        if (c->failed.load())
            throw_error(error::backend_unavailable, "jsonl_sink: writing " + std::to_string(batch.size()) +
                                                        " events to " + state_->name + " failed (from event " +
                                                        batch.front().id + ")");
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

    // One publish() waiting for its lines: the writer counts them down and
    // completes `done` (a channel: safe to complete from its thread).
    struct confirmation {
        confirmation(boost::asio::any_io_executor ex, std::size_t lines) : done(std::move(ex), 1), remaining(lines) {}
        boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> done;
        std::size_t remaining;  ///< the writer's alone
        std::atomic<bool> failed{false};
    };
    struct line {
        std::string text;
        std::shared_ptr<confirmation> confirm;  ///< null for emit()
    };

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
            if (fd >= 0) ::close(fd);
        }

        void start() {
            writer = std::thread([this] { run(); });
        }

        // Takes everything queued at once, writes it outside the lock and
        // flushes once per batch; drains the queue before it stops.
        void run() {
            std::vector<line> batch;
            std::unique_lock lock(mutex);
            for (;;) {
                work.wait(lock, [&] { return stopping || !queue.empty(); });
                if (queue.empty()) return;  // stopping, and nothing left to write
                batch.swap(queue);
                lock.unlock();
                write(batch);
                confirm(batch);
                const auto n = batch.size();
                batch.clear();
                lock.lock();
                held -= n;
                done += n;
                progress.notify_all();
            }
        }

        // Marks each line that did not reach the stream (failed), counts
        // emit()'s as dropped, and wakes the publishers whose last line
        // this batch held.
        void write(std::vector<line>& batch) noexcept {
            std::vector<bool> ok(batch.size(), false);
            if (fd >= 0)
                write_fd(batch, ok);
            else
                write_stream(batch, ok);
            for (std::size_t i = 0; i < batch.size(); ++i) {
                if (ok[i]) continue;
                if (batch[i].confirm)
                    batch[i].confirm->failed.store(true);
                else
                    dropped.fetch_add(1, std::memory_order_relaxed);
            }
        }

        static void confirm(std::vector<line>& batch) noexcept {
            for (auto& l : batch)
                if (l.confirm && --l.confirm->remaining == 0) l.confirm->done.try_send(boost::system::error_code{});
        }

        // One write(2) per batch (retried on short writes), then fsync.
        void write_fd(const std::vector<line>& batch, std::vector<bool>& ok) noexcept {
            std::string all;
            try {
                std::size_t total = 0;
                for (const auto& l : batch) total += l.text.size();
                all.reserve(total);
                for (const auto& l : batch) all += l.text;
            } catch (...) {
                return;  // out of memory: nothing written, all failed
            }
            std::size_t at = 0;
            while (at < all.size()) {
                const ssize_t n = ::write(fd, all.data() + at, all.size() - at);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) break;
                at += static_cast<std::size_t>(n);
            }
            const bool synced = !fsync || at < all.size() || ::fdatasync(fd) == 0;
            std::size_t end = 0;
            for (std::size_t i = 0; i < batch.size(); ++i) {
                end += batch[i].text.size();
                ok[i] = end <= at && synced;
            }
        }

        void write_stream(const std::vector<line>& batch, std::vector<bool>& ok) noexcept {
            std::size_t i = 0;  // the line being written
            try {
                for (; i < batch.size(); ++i) {
                    out->write(batch[i].text.data(), static_cast<std::streamsize>(batch[i].text.size()));
                    ok[i] = static_cast<bool>(*out);
                    if (!*out) out->clear();
                }
                out->flush();
                if (!*out) {
                    std::fill(ok.begin(), ok.end(), false);  // written, lost with the flush
                    out->clear();
                }
            } catch (...) {
                // A stream with exceptions() set: the line it threw on and
                // the rest are lost, or, when the flush threw, all of them.
                std::fill(ok.begin(), ok.end(), false);
                try {
                    out->clear();
                } catch (...) {}
            }
        }

        int fd = -1;  ///< a file's descriptor (the sink owns it), or -1: `out`
        bool fsync = false;
        std::string name = "the stream";  ///< for messages
        std::ostream* out;
        const std::size_t max_queued;
        std::mutex mutex;
        std::condition_variable work;      ///< lines queued, or stopping
        std::condition_variable progress;  ///< a batch was written
        std::vector<line> queue;           ///< waiting for the writer
        std::size_t held = 0;              ///< queued + being written
        std::uint64_t accepted = 0;        ///< lines ever queued
        std::uint64_t done = 0;            ///< of those, written or dropped by the writer
        bool stopping = false;
        std::atomic<std::uint64_t> dropped{0};
        std::thread writer;  ///< started by start(), once the stream is set
    };
    std::shared_ptr<state> state_;
};
static_assert(confirming_sink<jsonl_sink>);

}  // namespace sessionkit
