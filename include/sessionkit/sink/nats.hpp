// sessionkit/sink/nats.hpp — events into a NATS JetStream stream, each
// confirmed by JetStream's acknowledgement.
//
//     nats_sink sink = co_await nats_sink::connect({.url = "nats://127.0.0.1:4222"});
//     co_await sink.publish(batch);   // returns once JetStream stored every event
//
// connect() connects and creates the stream (or checks the one that is
// there) on a thread of the sink's own, and completes on the caller's
// executor. Copies of a sink share one connection and one thread; the last
// copy's destruction (or close()) drains and closes them.
//
// Every event goes to <subject_prefix>.<type>.<encoded session id> with the
// header Nats-Msg-Id = event id and its wire form (event.hpp) as payload.
// publish(batch) hands the batch to that thread, which publishes it with
// nats.c's asynchronous JetStream API (js_PublishMsgAsync) within our own
// cap of messages in flight; nats.c's threads deliver the acknowledgements,
// and the one that completes the batch wakes the publisher through a
// channel. No executor thread ever waits for nats.c: a nats.c call that
// can block (connecting, JetStream API requests, a publish that writes to
// a full socket) runs on the sink's thread, callbacks run on nats.c's.
//
// What confirms, what fails and what is dead-lettered: see
// detail/outcome.hpp and doc/events.md#nats-jetstream. In short: a batch
// confirms when JetStream acknowledged each event (a duplicate counts) or
// refused it for good (it is then written to the dead-letter file, if
// any, and counted); it fails with error::timeout when an event is not
// acknowledged within ack_deadline, and with error::backend_unavailable
// when the connection is lost or down. The caller (an event_relay)
// publishes a failed batch again, with the same ids; JetStream's duplicate
// window drops what was already stored.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/sink/nats/detail/dead_letter.hpp>
#include <sessionkit/sink/nats/detail/outcome.hpp>
#include <sessionkit/sink/nats/detail/stream.hpp>
#include <sessionkit/sink/nats/detail/subject.hpp>
#include <sessionkit/sink/nats/detail/tracker.hpp>
#include <sessionkit/sink/nats/options.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <nats/nats.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sessionkit {

/// What a nats_sink did so far (a snapshot).
struct nats_sink_stats {
    std::uint64_t published = 0;       ///< messages JetStream acknowledged as stored
    std::uint64_t duplicates = 0;      ///< messages it acknowledged as duplicates (stored before)
    std::uint64_t publish_errors = 0;  ///< messages of failed batches and emits not confirmed
    std::uint64_t dead_letters = 0;    ///< messages refused for good (dead-lettered)
    std::uint64_t dropped = 0;         ///< emit() calls dropped: queue full, sink closing
    std::uint64_t late_acks = 0;       ///< answers for a batch that had already failed (ignored)
    std::uint64_t disconnects = 0;     ///< connections lost
    std::uint64_t reconnects = 0;      ///< connections regained
    std::size_t in_flight = 0;         ///< messages nats.c holds, not yet answered
    bool connected = false;
};

namespace detail::nats {

class sink_state;

/// nats.c calls back on its own threads with a void* closure and tells
/// nobody when its last callback has returned (a subscription's delivery
/// thread outlives natsConnection_Destroy). So the closure is a number,
/// looked up here: a sink that has gone is simply not found.
class callback_registry {
public:
    static callback_registry& instance() {
        static auto* registry = new callback_registry;  // never destroyed: nats.c may call back during exit
        return *registry;
    }
    void* add(std::weak_ptr<sink_state> state) {
        std::lock_guard lock(mutex_);
        const std::uintptr_t id = next_++;
        states_.emplace(id, std::move(state));
        return reinterpret_cast<void*>(id);  // NOLINT(performance-no-int-to-ptr): a number, never dereferenced
    }
    void remove(void* closure) {
        std::lock_guard lock(mutex_);
        states_.erase(reinterpret_cast<std::uintptr_t>(closure));
    }
    std::shared_ptr<sink_state> find(void* closure) {
        std::lock_guard lock(mutex_);
        auto it = states_.find(reinterpret_cast<std::uintptr_t>(closure));
        return it == states_.end() ? nullptr : it->second.lock();
    }

private:
    std::mutex mutex_;
    std::uintptr_t next_ = 1;
    std::unordered_map<std::uintptr_t, std::weak_ptr<sink_state>> states_;
};

/// A caller waiting for the sink's thread: connect(), publish(), close().
/// The channel it waits on lives in the caller's coroutine and is attached
/// here only while the caller waits: another thread may hold the waiter
/// for longer, and a channel must not outlive its executor's context (a
/// caller's io_context may be gone by then).
class waiter {
public:
    completion result;         ///< publish(): how the batch ended
    std::exception_ptr error;  ///< connect(): why it failed

    /// Wakes the caller, now or as soon as it waits (any thread).
    void wake() noexcept {
        std::lock_guard lock(mutex_);
        woken_ = true;
        if (channel_) channel_->try_send(boost::system::error_code{});
    }

    /// Suspends until wake(); throws boost::system::system_error with
    /// asio::error::operation_aborted when the caller is cancelled.
    awaitable<void> wait() {
        channel_type channel(co_await boost::asio::this_coro::executor, 1);
        struct attached {
            waiter& w;
            explicit attached(waiter& to, channel_type& c) : w(to) {
                std::lock_guard lock(w.mutex_);
                w.channel_ = &c;
                if (w.woken_) c.try_send(boost::system::error_code{});
            }
            attached(const attached&) = delete;
            attached& operator=(const attached&) = delete;
            ~attached() {
                std::lock_guard lock(w.mutex_);
                w.channel_ = nullptr;
            }
        } guard(*this, channel);
        boost::system::error_code ec;
        co_await channel.async_receive(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        // Only cancellation ends the wait early; it reads as any cancelled
        // Asio operation does (not as the channel's own code).
        if (ec) throw boost::system::system_error(boost::asio::error::operation_aborted, "nats_sink: wait cancelled");
    }

private:
    using channel_type = boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>;
    std::mutex mutex_;
    channel_type* channel_ = nullptr;
    bool woken_ = false;
};

/// One event, ready to publish.
struct prepared {
    std::string id;       ///< Nats-Msg-Id
    std::string subject;  ///< <prefix>.<type>.<encoded id>
    std::string payload;  ///< the event's wire form
    std::string refusal;  ///< non-empty: refused before sending (why)
};

/// The events of one publish() or one emit(), until the attempt ends.
struct batch {
    std::vector<prepared> messages;
    std::shared_ptr<waiter> publisher;  ///< null for emit()
};

/// nats.c's last error on this thread, without the "(conn.c:2088): " it
/// starts with; the status's text when there is none.
inline std::string last_nats_error(natsStatus fallback) {
    const char* text = nats_GetLastError(nullptr);
    std::string_view t = text ? text : "";
    if (t.starts_with('(')) {
        if (const auto end = t.find("): "); end != std::string_view::npos) t.remove_prefix(end + 3);
    }
    return t.empty() ? std::string(natsStatus_GetText(fallback)) : std::string(t);
}

/// What a copy of nats_sink points to: the options, the nats.c objects
/// (the sink's thread alone touches them after connecting), the queue of
/// attempts and the tracker, under one mutex that nobody holds while
/// calling nats.c or writing a file.
class sink_state : public std::enable_shared_from_this<sink_state> {
public:
    explicit sink_state(nats_sink_options o)
        : options_(std::move(o)), servers_(parse_nats_url(options_.url)), name_("NATS " + describe_servers(servers_)),
          operation_("publish to stream " + options_.stream), wanted_(wanted_stream(options_)),
          tracker_(options_.max_in_flight) {
        if (!options_.log)
            options_.log = [](std::string_view line) {
                std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
            };
    }
    sink_state(const sink_state&) = delete;
    sink_state& operator=(const sink_state&) = delete;

    const std::string& name() const noexcept { return name_; }
    const std::string& operation() const noexcept { return operation_; }
    const nats_sink_options& options() const noexcept { return options_; }

    // ---- the sink's thread ------------------------------------------------

    /// The thread's whole life: connect, tell `ready`, serve the queue until
    /// stopped, drain, close.
    void run(waiter& ready) noexcept {
        try {
            connect();
        } catch (...) {
            ready.error = std::current_exception();
        }
        const bool connected = ready.error == nullptr;
        ready.wake();
        if (connected) {
            serve();
            drain();
        }
        close_nats();
        finish();
    }

    /// Stop taking work and close (on the sink's thread); idempotent.
    void stop() {
        {
            std::lock_guard lock(mutex_);
            if (!stopping_) {
                stopping_ = true;
                drain_deadline_ = std::chrono::steady_clock::now() + options_.drain_timeout;
            }
        }
        work_.notify_all();
    }

    /// Waits up to `limit` for the thread to finish; whether it did.
    bool wait_finished(std::chrono::milliseconds limit) {
        std::unique_lock lock(mutex_);
        return finished_cv_.wait_for(lock, limit, [&] { return finished_; });
    }

    /// close(): `w` is woken once the thread has finished.
    void on_finished(const std::shared_ptr<waiter>& w) {
        bool now = false;
        {
            std::lock_guard lock(mutex_);
            if (finished_)
                now = true;
            else
                closers_.push_back(w);
        }
        if (now) w->wake();
    }

    // ---- callers ---------------------------------------------------------------

    /// Queues an attempt; its generation, or 0 when the sink is stopping
    /// (or, for emit(), when the queue is full).
    std::uint64_t enqueue(std::shared_ptr<batch> b) {
        std::uint64_t g = 0;
        {
            std::lock_guard lock(mutex_);
            const bool emitted = !b->publisher;
            if (stopping_ || (emitted && queued_emits_ >= options_.max_in_flight)) return 0;
            g = tracker_.open(b->messages.size());
            if (emitted) ++queued_emits_;
            batches_.emplace(g, std::move(b));
            jobs_.push_back({g, emitted});
        }
        work_.notify_all();
        return g;
    }

    /// The caller stopped waiting for attempt `g` (cancelled).
    void abandon(std::uint64_t g) {
        std::lock_guard lock(mutex_);
        tracker_.abandon(g);
        batches_.erase(g);
    }

    prepared prepare(const event& e) const {
        prepared p{e.id, event_subject(options_.subject_prefix, e), to_text(e), {}};
        if (e.id.empty())
            p.refusal = "the event has no id (Nats-Msg-Id)";
        else if (e.session_id.empty())
            p.refusal = "the event has no session id (its subject needs one)";
        return p;
    }

    nats_sink_stats stats() const {
        nats_sink_stats s;
        s.published = published_.load();
        s.duplicates = duplicates_.load();
        s.publish_errors = publish_errors_.load();
        s.dead_letters = dead_letters_.load();
        s.dropped = dropped_.load();
        s.disconnects = disconnects_.load();
        s.reconnects = reconnects_.load();
        s.connected = connected_.load();
        std::lock_guard lock(mutex_);
        s.late_acks = tracker_.late_answers();
        s.in_flight = tracker_.in_flight();
        return s;
    }

    void count_dropped() noexcept { dropped_.fetch_add(1, std::memory_order_relaxed); }

private:
    // ---- connecting (the sink's thread) -----------------------------------------

    [[noreturn]] void connect_failed(error code, std::string_view operation, natsStatus s, std::string detail = {}) {
        diagnostics d{name_, std::string(operation), {}, detail.empty() ? last_nats_error(s) : std::move(detail)};
        throw_error(code, std::move(d));
    }

    static void check_readable(std::string_view field, const std::string& path) {
        if (path.empty()) return;
        if (::access(path.c_str(), R_OK) != 0)
            throw_error(error::invalid_argument, "nats_sink option " + std::string(field) + " = '" + printable(path) +
                                                     "': cannot read it: " + std::system_category().message(errno));
    }

    void connect() {
        check_readable("credentials_file", options_.credentials_file);
        check_readable("tls_ca_file", options_.tls_ca_file);
        if (!options_.dead_letter_file.empty()) dead_letters_file_.open(options_.dead_letter_file);

        closure_ = callback_registry::instance().add(weak_from_this());
        natsOptions* o = nullptr;
        if (natsOptions_Create(&o) != NATS_OK) connect_failed(error::backend_unavailable, "connect", NATS_NO_MEMORY);
        struct destroy_options {
            natsOptions* o;
            ~destroy_options() { natsOptions_Destroy(o); }
        } destroy_o{o};
        std::vector<const char*> urls;
        for (const auto& s : servers_) urls.push_back(s.text.c_str());
        natsStatus s = natsOptions_SetServers(o, urls.data(), static_cast<int>(urls.size()));
        if (s == NATS_OK) s = natsOptions_SetTimeout(o, options_.connect_timeout.count());
        if (s == NATS_OK) s = natsOptions_SetName(o, "sessionkit nats_sink");
        if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);  // for ever: batches fail meanwhile
        if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 250);
        // A server that stops answering without closing the socket is
        // noticed after about three intervals (two pings unanswered, measured
        // 15 s), then reconnected.
        if (s == NATS_OK) s = natsOptions_SetPingInterval(o, 5'000);
        if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(o, 2);
        if (s == NATS_OK) s = natsOptions_SetFailRequestsOnDisconnect(o, true);
        if (s == NATS_OK && !options_.token.empty()) s = natsOptions_SetToken(o, options_.token.c_str());
        if (s == NATS_OK && !options_.credentials_file.empty())
            s = natsOptions_SetUserCredentialsFromFiles(o, options_.credentials_file.c_str(), nullptr);
        if (s == NATS_OK && !options_.tls_ca_file.empty())
            s = natsOptions_LoadCATrustedCertificates(o, options_.tls_ca_file.c_str());
        // nats.c checks each certificate against its server's host (its
        // default build and Debian's force host verification).
        if (s == NATS_OK && servers_.front().tls) s = natsOptions_SetSecure(o, true);
        if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(o, &sink_state::on_disconnected, closure_);
        if (s == NATS_OK) s = natsOptions_SetReconnectedCB(o, &sink_state::on_reconnected, closure_);
        if (s == NATS_OK) s = natsOptions_SetClosedCB(o, &sink_state::on_closed, closure_);
        if (s == NATS_OK) s = natsOptions_SetErrorHandler(o, &sink_state::on_async_error, closure_);
        if (s != NATS_OK) connect_failed(error::invalid_argument, "configure the connection", s);

        s = natsConnection_Connect(&nc_, o);
        if (s != NATS_OK) {
            nc_ = nullptr;
            connect_failed(s == NATS_TIMEOUT ? error::timeout : error::backend_unavailable, "connect", s);
        }
        connected_.store(true);

        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = options_.connect_timeout.count();
        jo.PublishAsync.AckHandler = &sink_state::on_ack;
        jo.PublishAsync.AckHandlerClosure = closure_;
        // Above our own cap, so that nats.c never stalls the sink's thread.
        jo.PublishAsync.MaxPending = static_cast<int64_t>(options_.max_in_flight) + 64;
        s = natsConnection_JetStream(&js_, nc_, &jo);
        if (s != NATS_OK) connect_failed(error::backend_unavailable, "JetStream context", s);
        ensure_stream();
    }

    static stream_settings settings_of(const jsStreamConfig& c) {
        stream_settings out;
        for (int i = 0; i < c.SubjectsLen; ++i) out.subjects.emplace_back(c.Subjects[i] ? c.Subjects[i] : "");
        out.file_storage = c.Storage == js_FileStorage;
        out.duplicate_window = std::chrono::nanoseconds(c.Duplicates);
        out.no_ack = c.NoAck;
        out.sealed = c.Sealed;
        return out;
    }

    /// Creates the stream, or checks the one of that name; throws
    /// error::invalid_argument naming both configurations when it differs.
    void ensure_stream() {
        const std::string& stream = options_.stream;
        jsStreamInfo* info = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        natsStatus s = js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, &code);
        bool created = false;
        std::string operation = "look up stream " + stream;
        if (s == NATS_NOT_FOUND) {
            operation = "create stream " + stream;
            s = create_stream(&info, code);
            created = s == NATS_OK;
            if (s != NATS_OK && code != 0) {
                // Another process may have created it meanwhile: JetStream
                // then says "name in use" (10058) or, while that creation
                // is under way, "subjects overlap" (10065). A stream of that
                // name that is there now is checked like any other.
                const std::string refusal = last_nats_error(s);
                const int refused_with = static_cast<int>(code);
                if (js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, &code) != NATS_OK) {
                    // Subjects another stream has (10065) or a configuration
                    // the server refuses (10052): the options are wrong.
                    const bool options_wrong = refused_with == JSStreamSubjectOverlapErr || refused_with == 10052;
                    connect_failed(options_wrong ? error::invalid_argument : error::backend_unavailable, operation, s,
                                   "JetStream error " + std::to_string(refused_with) + ": " + refusal);
                }
                s = NATS_OK;
            }
        }
        if (s != NATS_OK) {
            std::string detail = last_nats_error(s);
            if (code != 0) detail = "JetStream error " + std::to_string(static_cast<int>(code)) + ": " + detail;
            if (s == NATS_NO_RESPONDERS) detail = "no responders: is JetStream enabled on the server?";
            connect_failed(s == NATS_TIMEOUT ? error::timeout : error::backend_unavailable, operation, s, detail);
        }
        const stream_settings found = info && info->Config ? settings_of(*info->Config) : stream_settings{};
        jsStreamInfo_Destroy(info);
        if (auto why = incompatibility(wanted_, found))
            throw_error(error::invalid_argument,
                        diagnostics{name_,
                                    "check stream " + stream,
                                    {},
                                    "stream '" + printable(stream) + "' exists with " + found.describe() +
                                        "; nats_sink wants " + wanted_.describe() + " (" + *why +
                                        "); it is left unchanged: delete it or choose another stream name"});
        log((created ? "nats_sink: created stream '" : "nats_sink: using stream '") + stream + "' (" +
            found.describe() + ") on " + name_);
    }

    /// js_AddStream with file storage, the subjects and the duplicate window.
    natsStatus create_stream(jsStreamInfo** info, jsErrCode& code) {
        std::vector<const char*> subjects;
        for (const auto& subject : options_.subjects) subjects.push_back(subject.c_str());
        jsStreamConfig config;
        jsStreamConfig_Init(&config);
        config.Name = options_.stream.c_str();
        config.Subjects = subjects.data();
        config.SubjectsLen = static_cast<int>(subjects.size());
        config.Storage = js_FileStorage;
        config.Duplicates = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.duplicate_window).count();
        return js_AddStream(info, js_, &config, nullptr, &code);
    }

    // ---- publishing (the sink's thread) -----------------------------------------

    bool drain_over() const { return stopping_ && std::chrono::steady_clock::now() >= drain_deadline_; }

    /// Waits on work_ (lock held) until `ready`, checking the drain
    /// deadline when stopping.
    template <class Ready>
    void wait_for_work(std::unique_lock<std::mutex>& lock, Ready ready) {
        while (!ready()) {
            if (stopping_)
                work_.wait_until(lock, drain_deadline_);
            else
                work_.wait(lock);
        }
    }

    void serve() {
        for (;;) {
            std::shared_ptr<batch> b;
            std::uint64_t g = 0;
            {
                std::unique_lock lock(mutex_);
                wait_for_work(lock, [&] { return stopping_ || !jobs_.empty(); });
                if (jobs_.empty()) return;  // stopping, and nothing queued
                const job next = jobs_.front();
                jobs_.pop_front();
                g = next.generation;
                if (next.emitted) --queued_emits_;
                auto it = batches_.find(g);
                if (it == batches_.end()) continue;  // failed or abandoned while queued
                b = it->second;
            }
            send(g, *b);
        }
    }

    /// Hands the messages of attempt `g` to nats.c, one at a time within
    /// the in-flight cap; stops when the attempt ends meanwhile.
    void send(std::uint64_t g, const batch& b) {
        if (natsConnection_Status(nc_) != NATS_CONN_STATUS_CONNECTED) {
            fail(g, error::backend_unavailable, "not connected (reconnecting)");
            return;
        }
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = options_.ack_deadline.count();  // nats.c answers NATS_TIMEOUT after it
        for (std::size_t i = 0; i < b.messages.size(); ++i) {
            const prepared& m = b.messages[i];
            if (!m.refusal.empty()) {
                outcome(g, i, {outcome_kind::refused, m.refusal});
                continue;
            }
            natsMsg* msg = nullptr;
            natsStatus s =
                natsMsg_Create(&msg, m.subject.c_str(), nullptr, m.payload.data(), static_cast<int>(m.payload.size()));
            if (s != NATS_OK) {
                outcome(g, i, classify_publish_status(s, last_nats_error(s)));
                continue;
            }
            const void* key = msg;
            {
                std::unique_lock lock(mutex_);
                wait_for_work(lock, [&] { return tracker_.has_room() || !tracker_.is_open(g) || drain_over(); });
                if (!tracker_.is_open(g) || drain_over()) {
                    lock.unlock();
                    natsMsg_Destroy(msg);
                    fail(g, error::backend_unavailable, "the sink closed before it was sent");
                    return;
                }
                tracker_.sent(key, g, i);
            }
            po.MsgId = m.id.c_str();
            s = js_PublishMsgAsync(js_, &msg, &po);  // on success nats.c owns msg (and sets it to null)
            if (s != NATS_OK) {
                const std::string text = last_nats_error(s);
                {
                    std::lock_guard lock(mutex_);
                    tracker_.unsend(key);
                }
                work_.notify_all();
                natsMsg_Destroy(msg);
                outcome(g, i, classify_publish_status(s, text));
            }
            std::lock_guard lock(mutex_);
            if (!tracker_.is_open(g)) return;
        }
    }

    /// After the queue: waits (up to the drain deadline) for what is in
    /// flight, then fails every attempt still open.
    void drain() {
        std::unique_lock lock(mutex_);
        wait_for_work(lock, [&] { return tracker_.in_flight() == 0 || drain_over(); });
    }

    void close_nats() {
        if (js_) jsCtx_Destroy(js_);
        js_ = nullptr;
        // Flushes for at most 500 ms, closes the socket and joins nats.c's
        // connection threads (the reconnect thread ends within a connect timeout).
        closing_.store(true);  // the disconnect this causes is ours, not a loss
        if (nc_) natsConnection_Destroy(nc_);
        nc_ = nullptr;
        connected_.store(false);
        if (closure_) callback_registry::instance().remove(closure_);
        fail_all(error::backend_unavailable, "the sink closed before JetStream acknowledged it");
    }

    void finish() {
        std::vector<std::shared_ptr<waiter>> closers;
        {
            std::lock_guard lock(mutex_);
            finished_ = true;
            closers.swap(closers_);
        }
        finished_cv_.notify_all();
        for (auto& c : closers) c->wake();
    }

    // ---- outcomes (any thread) ------------------------------------------------

    /// Message `i` of attempt `g` ended with `o`: dead-letters a refusal,
    /// then records it; settles the attempt if that finished it.
    void outcome(std::uint64_t g, std::size_t i, message_outcome o) noexcept {
        try {
            std::shared_ptr<batch> b;
            {
                std::lock_guard lock(mutex_);
                if (!tracker_.is_open(g)) return;
                b = batches_.at(g);
            }
            if (o.kind == outcome_kind::refused) o = dead_letter(b->messages.at(i), std::move(o.reason));
            std::optional<completion> c;
            {
                std::lock_guard lock(mutex_);
                c = tracker_.resolve(g, i, o);
                if (c) batches_.erase(g);
            }
            if (c) settle(*c, *b);
        } catch (...) {
            fail(g, error::backend_unavailable, "out of memory recording an acknowledgement");
        }
    }

    message_outcome dead_letter(const prepared& m, std::string reason) {
        std::string where = "not kept (no dead_letter_file)";
        if (dead_letters_file_.is_open()) {
            const auto now = std::chrono::system_clock::now();
            std::string error = dead_letters_file_.write(
                dead_letter_line(to_unix_ms(now), reason, options_.stream, m.subject, m.payload));
            if (!error.empty()) {
                log("nats_sink: event " + m.id + " refused for good (" + reason +
                    ") and the dead-letter file failed: " + error + "; its batch fails");
                return {outcome_kind::unavailable,
                        "refused for good (" + reason + "), and the dead-letter file " + "failed: " + error};
            }
            where = "written to " + dead_letters_file_.path();
        }
        dead_letters_.fetch_add(1, std::memory_order_relaxed);
        log("nats_sink: event " + m.id + " (" + m.subject + ") refused for good: " + reason + "; " + where);
        return {outcome_kind::refused, std::move(reason)};
    }

    void fail(std::uint64_t g, error code, std::string reason) noexcept {
        try {
            std::optional<completion> c;
            std::shared_ptr<batch> b;
            {
                std::lock_guard lock(mutex_);
                c = tracker_.fail(g, code, std::move(reason));
                if (!c) return;
                auto it = batches_.find(g);
                if (it == batches_.end()) return;
                b = std::move(it->second);
                batches_.erase(it);
            }
            settle(*c, *b);
        } catch (...) {}
    }

    void fail_all(error code, const std::string& reason) noexcept {
        try {
            std::vector<std::pair<completion, std::shared_ptr<batch>>> ended;
            {
                std::lock_guard lock(mutex_);
                for (auto& c : tracker_.fail_all(code, reason)) {
                    auto it = batches_.find(c.generation);
                    if (it == batches_.end()) continue;
                    ended.emplace_back(std::move(c), std::move(it->second));
                    batches_.erase(it);
                }
                jobs_.clear();
                queued_emits_ = 0;
            }
            for (auto& [c, b] : ended) settle(c, *b);
        } catch (...) {}
    }

    void settle(const completion& c, batch& b) noexcept {
        if (!c.ok) publish_errors_.fetch_add(c.unconfirmed, std::memory_order_relaxed);
        if (!b.publisher) return;
        b.publisher->result = c;
        b.publisher->wake();
    }

    void log(const std::string& line) noexcept {
        try {
            options_.log(line);
        } catch (...) {}
    }

    // ---- nats.c's callbacks (nats.c's threads) ---------------------------------

    static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
        if (auto self = callback_registry::instance().find(closure)) self->acked(msg, pa, pae);
        natsMsg_Destroy(msg);  // the handler owns it
    }

    void acked(natsMsg* msg, const jsPubAck* pa, const jsPubAckErr* pae) noexcept {
        try {
            message_outcome o = classify_ack(pa, pae);
            if (o.kind == outcome_kind::stored) published_.fetch_add(1, std::memory_order_relaxed);
            if (o.kind == outcome_kind::duplicate) duplicates_.fetch_add(1, std::memory_order_relaxed);
            if (o.kind == outcome_kind::timeout)
                o.reason =
                    "no acknowledgement from JetStream within " + std::to_string(options_.ack_deadline.count()) + " ms";
            std::optional<tracker::slot> slot;
            {
                std::lock_guard lock(mutex_);
                slot = tracker_.answered(msg);
            }
            work_.notify_all();  // room for the next message
            if (slot) outcome(slot->generation, slot->index, std::move(o));
        } catch (...) {}
    }

    static void on_disconnected(natsConnection*, void* closure) {
        auto self = callback_registry::instance().find(closure);
        if (!self) return;
        self->connected_.store(false);
        if (self->closing_.load()) return;
        self->disconnects_.fetch_add(1, std::memory_order_relaxed);
        self->log("nats_sink: connection to " + self->name_ + " lost; reconnecting");
        self->fail_all(error::backend_unavailable, "connection lost before JetStream acknowledged it");
    }

    static void on_reconnected(natsConnection* nc, void* closure) {
        auto self = callback_registry::instance().find(closure);
        if (!self) return;
        self->connected_.store(true);
        self->reconnects_.fetch_add(1, std::memory_order_relaxed);
        char url[256] = {};
        natsConnection_GetConnectedUrl(nc, url, sizeof url);
        self->log("nats_sink: reconnected to " + masked_url(url));
    }

    static void on_closed(natsConnection*, void* closure) {
        if (auto self = callback_registry::instance().find(closure)) {
            self->connected_.store(false);
            self->fail_all(error::backend_unavailable, "connection closed before JetStream acknowledged it");
        }
    }

    static void on_async_error(natsConnection*, natsSubscription*, natsStatus err, void* closure) {
        if (auto self = callback_registry::instance().find(closure))
            self->log("nats_sink: asynchronous error from " + self->name_ + ": " + natsStatus_GetText(err));
    }

    nats_sink_options options_;
    std::vector<nats_server_url> servers_;
    std::string name_;       ///< "NATS nats://host:port": for messages
    std::string operation_;  ///< "publish to stream SESSIONS"
    stream_settings wanted_;
    dead_letter_file dead_letters_file_;
    void* closure_ = nullptr;  ///< our number in the callback registry
    natsConnection* nc_ = nullptr;
    jsCtx* js_ = nullptr;

    mutable std::mutex mutex_;
    std::condition_variable work_;  ///< attempts queued, room in flight, an attempt ended, stopping
    std::condition_variable finished_cv_;
    struct job {
        std::uint64_t generation = 0;
        bool emitted = false;  ///< counts in queued_emits_
    };
    std::deque<job> jobs_;                                               ///< attempts for the sink's thread, in order
    std::unordered_map<std::uint64_t, std::shared_ptr<batch>> batches_;  ///< open attempts' events
    tracker tracker_;
    std::size_t queued_emits_ = 0;
    bool stopping_ = false;
    bool finished_ = false;
    std::chrono::steady_clock::time_point drain_deadline_{};
    std::vector<std::shared_ptr<waiter>> closers_;

    std::atomic<std::uint64_t> published_{0}, duplicates_{0}, publish_errors_{0}, dead_letters_{0}, dropped_{0},
        disconnects_{0}, reconnects_{0};
    std::atomic<bool> connected_{false};
    std::atomic<bool> closing_{false};  ///< close_nats() is closing the connection
};

}  // namespace detail::nats

/// A confirming_sink into a JetStream stream (see the top of this file).
class nats_sink {
public:
    /// A sink that is not connected (what connect() returns replaces it):
    /// emit() does nothing, publish() and close() throw
    /// error::backend_unavailable, stats() are zero.
    nats_sink() = default;

    /// Checks the options (error::invalid_argument naming the bad one),
    /// connects, and creates the stream or checks the one that exists
    /// (error::invalid_argument naming both configurations when it
    /// differs), all on the sink's own thread. Fails with
    /// error::backend_unavailable or error::timeout naming NATS when the
    /// servers cannot be reached within connect_timeout each.
    static awaitable<nats_sink> connect(nats_sink_options options) {
        validate(options);
        auto state = std::make_shared<detail::nats::sink_state>(std::move(options));
        auto ready = std::make_shared<detail::nats::waiter>();
        auto keeper = std::make_shared<owner>(state);
        keeper->thread = std::thread([state, ready] { state->run(*ready); });
        co_await ready->wait();
        if (ready->error) std::rethrow_exception(ready->error);
        co_return nats_sink(std::move(keeper));
    }

    /// Best effort: queues the event for the sink's thread and returns.
    /// Dropped and counted (stats().dropped) when max_in_flight emitted
    /// events are already queued or the sink is closing; a failure to
    /// publish it is counted (publish_errors), never retried.
    void emit(const event& e) noexcept {
        if (!owner_) return;
        auto& state = *owner_->state;
        try {
            auto b = std::make_shared<detail::nats::batch>();
            b->messages.push_back(state.prepare(e));
            if (state.enqueue(std::move(b)) == 0) state.count_dropped();
        } catch (...) {
            state.count_dropped();
        }
    }

    /// Publishes the batch and returns once JetStream acknowledged every
    /// event (or it was dead-lettered). Throws error::timeout naming NATS
    /// and the first event not acknowledged within ack_deadline, or
    /// error::backend_unavailable when the connection is down or lost, or
    /// the sink is closed. Cancelled (through the coroutine's cancellation
    /// slot), it throws asio::error::operation_aborted at once; what was
    /// already sent may still be stored. `batch` must stay valid until it
    /// returns.
    awaitable<void> publish(std::span<const event> batch) {
        if (batch.empty()) co_return;
        check_connected();
        auto& state = *owner_->state;
        auto b = std::make_shared<detail::nats::batch>();
        b->messages.reserve(batch.size());
        for (const auto& e : batch) b->messages.push_back(state.prepare(e));
        b->publisher = std::make_shared<detail::nats::waiter>();
        auto publisher = b->publisher;
        const std::uint64_t generation = state.enqueue(b);
        if (generation == 0)
            throw_error(error::backend_unavailable,
                        diagnostics{state.name(), state.operation(), batch.front().id, "the sink is closed"});
        std::exception_ptr cancelled;
        try {
            co_await publisher->wait();
        } catch (...) {
            cancelled = std::current_exception();
        }
        if (cancelled) {
            state.abandon(generation);
            std::rethrow_exception(cancelled);
        }
        const detail::nats::completion& c = publisher->result;
        if (c.ok) co_return;
        const std::string& id = b->messages.at(c.first_unconfirmed).id;
        throw_error(c.code, diagnostics{state.name(), state.operation(), id,
                                        c.reason + " (" + std::to_string(c.unconfirmed) + " of " +
                                            std::to_string(batch.size()) + " events of the batch not confirmed)"});
    }

    /// Stops taking events, waits up to drain_timeout for what is in flight
    /// and closes the connection, on the sink's thread; returns when it
    /// has. Afterwards publish() throws and emit() drops. Every copy is
    /// closed.
    awaitable<void> close() {
        check_connected();
        auto w = std::make_shared<detail::nats::waiter>();
        owner_->state->on_finished(w);
        owner_->state->stop();
        co_await w->wait();
    }

    nats_sink_stats stats() const { return owner_ ? owner_->state->stats() : nats_sink_stats{}; }
    std::uint64_t published() const { return stats().published; }
    std::uint64_t publish_errors() const { return stats().publish_errors; }
    std::uint64_t dead_letters() const { return stats().dead_letters; }

    /// "NATS nats://host:port[,…]": how errors and logs name the servers
    /// ("NATS" when not connected).
    const std::string& name() const noexcept {
        static const std::string none = "NATS";
        return owner_ ? owner_->state->name() : none;
    }

private:
    // Holds the thread. The last copy's destruction stops it and waits at
    // most drain_timeout + connect_timeout + 2 s (the drain, nats.c's
    // close and a reconnect attempt under way); a thread that has not
    // finished by then is detached and finishes on its own (it holds the
    // state), so no thread waits for ever.
    struct owner {
        explicit owner(std::shared_ptr<detail::nats::sink_state> s) : state(std::move(s)) {}
        owner(const owner&) = delete;
        owner& operator=(const owner&) = delete;
        ~owner() {
            if (!thread.joinable()) return;
            state->stop();
            const auto& o = state->options();
            if (state->wait_finished(o.drain_timeout + o.connect_timeout + std::chrono::seconds{2})) {
                thread.join();
            } else {
                thread.detach();
                try {
                    o.log("nats_sink: closing " + state->name() + " takes longer than expected; left to finish");
                } catch (...) {}
            }
        }
        std::shared_ptr<detail::nats::sink_state> state;
        std::thread thread;
    };

    explicit nats_sink(std::shared_ptr<owner> o) : owner_(std::move(o)) {}

    void check_connected() const {
        if (!owner_)
            throw_error(error::backend_unavailable, "nats_sink: not connected (made by the default constructor)");
    }

    std::shared_ptr<owner> owner_;
};
static_assert(confirming_sink<nats_sink>);

}  // namespace sessionkit
