// sessionkit/event_relay.hpp — moves events from a store's outbox to a
// confirming sink: each partition in order, trimmed only once confirmed.
//
// For each outbox partition the relay takes a lease (a store lock named
// "<lock_prefix><partition>"), so across every process that runs a relay on
// the same store each partition has one relay at a time. Holding it, the
// relay reads a batch from the last position it published, hands it to
// sink.publish(), and once that returns (the sink has stored the batch)
// trims the outbox up to it. A publish that fails is retried with backoff
// from the same position, with the same event ids; a relay that dies
// leaves its lease to run out, and the next holder republishes from the
// last trimmed position, again with the same ids (a sink that de-duplicates
// by id, like JetStream, keeps each once). Events of one session share a
// partition, so they leave in the order they were written.
//
// Latency without busy polling: the store notifies the relay when a write
// of this process appended events (outbox_signal); other processes' writes
// are found by a bounded poll (`poll_interval`). doc/events.md has the
// guarantee and the failure behaviour.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/concepts.hpp>
#include <sessionkit/detail/backoff.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/outbox.hpp>
#include <sessionkit/relay/detail/lease.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit {

struct event_relay_options {
    /// Lock name of partition n: lock_prefix + n. Relays that share a
    /// store and a prefix share the partitions.
    std::string lock_prefix = "outbox-relay:";
    /// How long a partition stays leased without renewal (renewed every
    /// third of it): how soon another relay takes over from a dead one.
    milliseconds lease{10'000};
    /// How often a partition with nothing to publish is read again (other
    /// processes' writes; this process's wake the relay at once).
    milliseconds poll_interval{100};
    /// Events read and published at once (1..10,000).
    std::size_t batch_size = 256;
    /// Wait before republishing after a failure: doubles from min to max.
    milliseconds retry_min{100};
    milliseconds retry_max{5'000};
    /// Where the relay reports failures, recoveries and dropped events
    /// (default: stderr).
    std::function<void(std::string_view)> log;
};

/// What a relay did so far (a snapshot: metrics).
struct event_relay_stats {
    std::uint64_t published = 0;       ///< events confirmed by the sink and trimmed
    std::uint64_t publish_errors = 0;  ///< failed publishes (each retried)
    std::uint64_t dropped_logged = 0;  ///< events the outbox dropped, reported in the log
    std::uint64_t leases_lost = 0;     ///< partitions another relay took while we held them
    unsigned partitions_held = 0;      ///< partitions this relay holds now
};

template <outbox_store Store, confirming_sink Sink, session_clock Clock = system_clock_policy>
class event_relay {
public:
    /// `store` (with its outbox on) and `sink` must outlive the relay.
    /// Throws error::invalid_argument naming a bad option.
    event_relay(Store& store, Sink& sink, event_relay_options options = {}, Clock clock = {})
        : store_(store), sink_(sink), options_(std::move(options)), clock_(std::move(clock)) {
        if (!store_.has_outbox())
            throw_error(error::invalid_argument, "event_relay: the store's outbox is off (nothing to relay)");
        if (options_.lease < milliseconds{30})
            throw_error(error::invalid_argument, "event_relay_options.lease must be at least 30 ms");
        if (options_.poll_interval <= milliseconds::zero())
            throw_error(error::invalid_argument, "event_relay_options.poll_interval must be positive");
        if (options_.batch_size == 0 || options_.batch_size > 10'000)
            throw_error(error::invalid_argument,
                        "event_relay_options.batch_size must be 1..10000, got " + std::to_string(options_.batch_size));
        if (options_.retry_min <= milliseconds::zero() || options_.retry_max < options_.retry_min)
            throw_error(error::invalid_argument,
                        "event_relay_options.retry_min must be positive and retry_max at least retry_min");
        if (options_.lock_prefix.empty())
            throw_error(error::invalid_argument, "event_relay_options.lock_prefix must not be empty");
        if (!options_.log)
            options_.log = [](std::string_view line) {
                std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
            };
    }
    event_relay(const event_relay&) = delete;
    event_relay& operator=(const event_relay&) = delete;

    /// Relays until stop() or cancellation (through the co_spawn's slot):
    /// one coroutine per partition on the current executor. Returns once
    /// each has finished the batch in hand and released its lease (so
    /// another relay takes over at once). One run() at a time.
    awaitable<void> run() {
        stopping_.store(false);
        using done_channel =
            boost::asio::experimental::concurrent_channel<void(boost::system::error_code, std::exception_ptr)>;
        auto executor = co_await boost::asio::this_coro::executor;
        const unsigned partitions = store_.outbox_partitions();
        const std::size_t workers = partitions + 1;  // + the dropped-event reporter
        done_channel done(executor, workers);
        auto report = [&done](std::exception_ptr e) { done.try_send(boost::system::error_code{}, e); };
        for (unsigned p = 0; p < partitions; ++p) boost::asio::co_spawn(executor, work_partition(p), report);
        boost::asio::co_spawn(executor, report_dropped(), report);

        std::exception_ptr cancelled;
        for (std::size_t ended = 0; ended < workers;) {
            bool just_cancelled = false;
            try {
                // Once cancelled, wait without a slot: the workers use *this.
                if (cancelled)
                    co_await done.async_receive(boost::asio::bind_cancellation_slot(boost::asio::cancellation_slot(),
                                                                                    boost::asio::use_awaitable));
                else
                    co_await done.async_receive(boost::asio::use_awaitable);
                ++ended;
            } catch (...) {
                if (cancelled) throw;
                cancelled = std::current_exception();
                just_cancelled = true;
            }
            if (just_cancelled) {  // (co_await may not appear in a handler)
                co_await boost::asio::this_coro::throw_if_cancelled(false);
                stop();
            }
        }
        if (cancelled) std::rethrow_exception(cancelled);
    }

    /// Asks run() to return (after the batches in hand). Any thread.
    void stop() noexcept {
        stopping_.store(true);
        wake_.notify(0);
        store_.outbox_signal().notify(0);
    }

    event_relay_stats stats() const noexcept {
        return {published_.load(), publish_errors_.load(), dropped_logged_.load(), leases_lost_.load(), held_.load()};
    }

    const event_relay_options& options() const noexcept { return options_; }

private:
    using steady = std::chrono::steady_clock;

    std::string lock_name(unsigned p) const { return options_.lock_prefix + std::to_string(p); }

    // One partition: lease it, then read → publish → trim while it is ours.
    awaitable<void> work_partition(unsigned p) {
        detail::partition_lease lease(options_.lease);
        detail::backoff retry(options_.retry_min, options_.retry_max);
        std::string cursor;          // last position the sink confirmed ("" = the oldest left)
        std::uint64_t failures = 0;  // publishes failed in a row
        const std::string name = lock_name(p);
        while (!stopping_.load()) {
            const auto now = steady::now();
            try {
                switch (lease.next(now)) {
                case detail::partition_lease::step::wait:
                    co_await wake_.wait(until(lease.due_at()), wake_.generation());
                    continue;
                case detail::partition_lease::step::acquire: {
                    auto token = co_await store_.try_lock(name, options_.lease, clock_.now());
                    if (token) {
                        cursor.clear();  // whoever held it trimmed what it published
                        ++held_;
                    }
                    lease.tried(std::move(token), steady::now(), stagger());
                    continue;
                }
                case detail::partition_lease::step::renew: {
                    const bool kept = co_await store_.extend_lock(name, *lease.token(), options_.lease, clock_.now());
                    lease.renewed(kept, steady::now());
                    if (!kept) {
                        --held_;
                        ++leases_lost_;
                        options_.log("event_relay: lost the lease of outbox partition " + std::to_string(p) +
                                     " (another relay may hold it now)");
                    }
                    continue;
                }
                case detail::partition_lease::step::work: break;
                }
            } catch (const std::exception& e) {
                lease.failed(steady::now());
                options_.log("event_relay: partition " + std::to_string(p) + ": lease: " + e.what());
                continue;
            }

            // Holding it: publish what is there, or wait for more.
            const std::uint64_t seen = store_.outbox_signal().generation();
            std::vector<outbox_entry> batch;
            bool failed = false;
            try {
                batch = co_await store_.read_outbox(p, cursor, options_.batch_size);
            } catch (const std::exception& e) {
                ++publish_errors_;
                note_failure(p, failures, e.what());
                failed = true;
            }
            if (failed) {  // (co_await may not appear in a handler)
                co_await wake_.wait(retry.next_wait(random()), wake_.generation());
                continue;
            }
            if (batch.empty()) {
                co_await store_.outbox_signal().wait(std::min(options_.poll_interval, until(lease.due_at())), seen);
                continue;
            }
            std::vector<event> events;
            events.reserve(batch.size());
            for (auto& entry : batch) events.push_back(std::move(entry.ev));
            try {
                co_await sink_.publish(std::span<const event>(events));
            } catch (const std::exception& e) {
                ++publish_errors_;
                note_failure(p, failures, e.what());
                failed = true;
            }
            if (failed) {
                co_await wake_.wait(retry.next_wait(random()), wake_.generation());
                continue;
            }
            if (failures > 0) {
                options_.log("event_relay: partition " + std::to_string(p) + ": publishing again after " +
                             std::to_string(failures) + " failed attempts");
                failures = 0;
            }
            retry.reset();
            published_ += events.size();
            cursor = batch.back().position;
            try {
                co_await store_.trim_outbox(p, cursor);
            } catch (const std::exception& e) {
                // The cursor keeps us from publishing them again; the next
                // trim removes them too.
                options_.log("event_relay: partition " + std::to_string(p) + ": trim failed: " + e.what());
            }
        }
        if (auto token = lease.release()) {
            --held_;
            try {
                co_await store_.unlock(name, *token);
            } catch (...) {
                // It runs out by itself within one lease.
            }
        }
    }

    // Logs each event the outbox dropped (the overflow policy), by id.
    awaitable<void> report_dropped() {
        while (!stopping_.load()) {
            try {
                auto dropped = co_await store_.take_dropped(1000);
                for (const auto& d : dropped) {
                    ++dropped_logged_;
                    options_.log("event_relay: outbox partition " + std::to_string(d.partition) + " dropped event " +
                                 d.event_id + " (" + d.type + " of session " + d.session_id + "): the outbox was full");
                }
                if (dropped.size() == 1000) continue;
            } catch (const std::exception& e) {
                options_.log(std::string("event_relay: reading dropped events: ") + e.what());
            }
            co_await wake_.wait(options_.lease / 3, wake_.generation());
        }
    }

    // The first failure of a run, then every 50th, is logged: a sink down
    // for an hour must not fill the log.
    void note_failure(unsigned p, std::uint64_t& failures, std::string_view what) {
        if (failures++ % 50 == 0)
            options_.log("event_relay: partition " + std::to_string(p) + ": publish failed (attempt " +
                         std::to_string(failures) + ", retrying with backoff): " + std::string(what));
    }

    static milliseconds until(steady::time_point t) {
        return std::max(milliseconds{1}, std::chrono::ceil<milliseconds>(t - steady::now()));
    }

    milliseconds stagger() {
        return milliseconds{static_cast<std::int64_t>(random() % (options_.lease.count() / 3 + 1))};
    }

    std::uint64_t random() {
        std::lock_guard lock(random_mutex_);
        return random_();
    }

    Store& store_;
    Sink& sink_;
    event_relay_options options_;
    Clock clock_;
    outbox_signal wake_;  ///< stop() and retry waits (not the store's: a write must not cut a backoff short)
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> published_{0}, publish_errors_{0}, dropped_logged_{0}, leases_lost_{0};
    std::atomic<unsigned> held_{0};
    std::mutex random_mutex_;
    std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace sessionkit
