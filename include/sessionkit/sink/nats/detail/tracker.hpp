// sessionkit/sink/nats/detail/tracker.hpp — nats_sink's bookkeeping of the
// messages it has handed to nats.c: which batch (attempt) each belongs to,
// which are acknowledged, how many are in flight, and when an attempt is
// finished, confirmed or failed. No I/O and no locking (the sink holds its
// mutex around every call): unit-tested without a server.
//
// Each publish() and each emit() is an attempt with a generation number of
// its own, never reused. A message in flight is known by a key (the
// natsMsg* nats.c hands back to the ack handler) and remembers its
// attempt's generation. An attempt that failed (a timeout, the connection
// lost) is forgotten at once; answers that arrive later for its messages
// find no open attempt and are ignored (late_answers), so an ack from a
// previous attempt is never counted for the retry that republished the
// same event ids — the retry's own messages have keys and a generation of
// their own. A key stays in flight (and counts against max_in_flight) until
// nats.c answers for it or refuses it, even after its attempt failed:
// nats.c still holds the message until then.
#pragma once

#include <sessionkit/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sessionkit::detail::nats {

/// What happened to one message.
enum class outcome_kind : std::uint8_t {
    stored,       ///< JetStream acknowledged it
    duplicate,    ///< JetStream acknowledged it as one it already had (within the duplicate window)
    refused,      ///< permanently refused; dead-lettered (it confirms, so the batch is not blocked)
    timeout,      ///< no acknowledgement within the deadline: the attempt fails (error::timeout)
    unavailable,  ///< not sent or lost with the connection: the attempt fails (error::backend_unavailable)
};

struct message_outcome {
    outcome_kind kind = outcome_kind::stored;
    std::string reason;  ///< what nats.c or the server said; empty for stored
};

/// An attempt that finished.
struct completion {
    std::uint64_t generation = 0;
    bool ok = true;
    error code = error::backend_unavailable;  ///< when !ok
    std::string reason;                       ///< when !ok: why
    std::size_t first_unconfirmed = 0;        ///< when !ok: index of the first message not confirmed
    std::size_t unconfirmed = 0;              ///< when !ok: how many were not
};

class tracker {
public:
    struct slot {
        std::uint64_t generation = 0;
        std::size_t index = 0;
    };

    explicit tracker(std::size_t max_in_flight) : max_in_flight_(max_in_flight) {}

    /// A new attempt of `messages` messages (at least one); its generation.
    std::uint64_t open(std::size_t messages) {
        const std::uint64_t g = next_generation_++;
        attempts_.emplace(g, attempt{std::vector<bool>(messages, false), messages});
        return g;
    }

    bool is_open(std::uint64_t generation) const { return attempts_.count(generation) != 0; }
    std::size_t open_attempts() const noexcept { return attempts_.size(); }

    /// Whether another message may be handed to nats.c now.
    bool has_room() const noexcept { return slots_.size() < max_in_flight_; }
    std::size_t in_flight() const noexcept { return slots_.size(); }

    /// Message `index` of attempt `generation` was handed to nats.c under `key`.
    void sent(const void* key, std::uint64_t generation, std::size_t index) {
        slots_.insert_or_assign(key, slot{generation, index});
    }

    /// nats.c refused `key` at once: it will never answer for it. Its slot,
    /// if its attempt is still open.
    std::optional<slot> unsend(const void* key) { return take(key, false); }

    /// nats.c answered for `key` (an ack, an error or its own timeout). Its
    /// slot, if its attempt is still open; nullopt for an answer to an
    /// attempt that already finished (counted in late_answers) or to a key
    /// never sent.
    std::optional<slot> answered(const void* key) { return take(key, true); }

    /// The outcome of message `index` of attempt `generation`. A completion
    /// when this finished the attempt: confirmed once every message is
    /// stored, a duplicate or refused; failed at the first timeout or
    /// unavailable outcome. nullopt while it goes on, and for an attempt
    /// that already finished.
    std::optional<completion> resolve(std::uint64_t generation, std::size_t index, const message_outcome& o) {
        auto it = attempts_.find(generation);
        if (it == attempts_.end() || index >= it->second.confirmed.size()) return std::nullopt;
        switch (o.kind) {
        case outcome_kind::timeout: return fail(generation, error::timeout, o.reason);
        case outcome_kind::unavailable: return fail(generation, error::backend_unavailable, o.reason);
        case outcome_kind::stored:
        case outcome_kind::duplicate:
        case outcome_kind::refused: break;
        }
        attempt& a = it->second;
        if (a.confirmed[index]) return std::nullopt;
        a.confirmed[index] = true;
        if (--a.remaining > 0) return std::nullopt;
        attempts_.erase(it);
        return completion{generation, true, error::backend_unavailable, {}, 0, 0};
    }

    /// Fails attempt `generation` (if still open), naming its first
    /// message not confirmed.
    std::optional<completion> fail(std::uint64_t generation, error code, std::string reason) {
        auto it = attempts_.find(generation);
        if (it == attempts_.end()) return std::nullopt;
        completion c = failed(generation, it->second, code, std::move(reason));
        attempts_.erase(it);
        return c;
    }

    /// Fails every open attempt (the connection was lost), oldest first.
    std::vector<completion> fail_all(error code, const std::string& reason) {
        std::vector<completion> out;
        out.reserve(attempts_.size());
        for (auto& [g, a] : attempts_) out.push_back(failed(g, a, code, reason));
        attempts_.clear();
        std::sort(out.begin(), out.end(),
                  [](const completion& x, const completion& y) { return x.generation < y.generation; });
        return out;
    }

    /// Forgets attempt `generation` without a completion (its caller stopped waiting).
    void abandon(std::uint64_t generation) { attempts_.erase(generation); }

    std::uint64_t late_answers() const noexcept { return late_answers_; }

private:
    struct attempt {
        std::vector<bool> confirmed;
        std::size_t remaining = 0;
    };

    std::optional<slot> take(const void* key, bool answer) {
        auto it = slots_.find(key);
        if (it == slots_.end()) return std::nullopt;
        const slot s = it->second;
        slots_.erase(it);
        if (!is_open(s.generation)) {
            if (answer) ++late_answers_;
            return std::nullopt;
        }
        return s;
    }

    static completion failed(std::uint64_t generation, const attempt& a, error code, std::string reason) {
        completion c{generation, false, code, std::move(reason), a.confirmed.size(), a.remaining};
        for (std::size_t i = 0; i < a.confirmed.size(); ++i)
            if (!a.confirmed[i]) {
                c.first_unconfirmed = i;
                break;
            }
        return c;
    }

    std::size_t max_in_flight_;
    std::uint64_t next_generation_ = 1;
    std::uint64_t late_answers_ = 0;
    std::unordered_map<std::uint64_t, attempt> attempts_;
    std::unordered_map<const void*, slot> slots_;
};

}  // namespace sessionkit::detail::nats
