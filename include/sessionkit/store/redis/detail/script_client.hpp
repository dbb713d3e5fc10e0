// sessionkit/store/redis/detail/script_client.hpp — how redis_store talks to
// Redis: partition names for its options, EVALSHA with a reload when the
// server lost the script, and errors that name the operation, the session,
// its key and the server.
//
// Private to redis_store (store/redis.hpp), which keeps the operations: what
// each one sends and which decoder reads the answer.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/redis/connection.hpp>
#include <sessionkit/store/redis/codec.hpp>
#include <sessionkit/store/redis/keys.hpp>
#include <sessionkit/store/redis/scripts.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessionkit::detail::redis_store {

class script_client {
public:
    using script = redis_store_scripts::script;
    using value = sessionkit::redis::resp::value;
    using command = sessionkit::redis::resp::command;

    script_client(std::shared_ptr<redis::connection> conn, std::string prefix, unsigned partitions)
        : conn_(std::move(conn)), prefix_(std::move(prefix)), partitions_(partitions) {}

    bool connected() const noexcept { return conn_ != nullptr; }
    redis::connection& conn() const noexcept { return *conn_; }

    static const redis_store_scripts::script_set& scripts() { return redis_store_scripts::all(); }

    // ---- names ------------------------------------------------------------

    unsigned partition_of(std::string_view id) const noexcept {
        return redis_store_keys::partition_of(id, partitions_);
    }
    std::string base_of(unsigned p) const { return redis_store_keys::partition_base(prefix_, p); }
    std::string key_of(std::string_view id) const {
        return redis_store_keys::record_key(base_of(partition_of(id)), id);
    }
    std::string lock_key(std::string_view name) const { return redis_store_keys::lock_key(prefix_, name); }

    /// EVALSHA of `s` on the partition `base`; the caller adds the ARGV.
    static command eval(const script& s, const std::string& base) {
        command cmd("EVALSHA");
        cmd.arg(s.sha).arg(std::int64_t{1}).arg(base);
        return cmd;
    }

    // ---- running scripts --------------------------------------------------

    /// Sends commands; a script the server does not know (it restarted or
    /// was flushed) is loaded and the commands sent again.
    awaitable<std::vector<value>> run(redis::request req, const script& s, std::string_view op) {
        auto replies = co_await conn_->exec(req);
        bool missing = false;
        for (auto& r : replies) missing = missing || (r.is_error() && r.text.starts_with("NOSCRIPT"));
        if (!missing) co_return replies;
        co_await load(s, op);
        co_return co_await conn_->exec(std::move(req));
    }

    /// One command on one session: the hot path (touch, get), so the
    /// request is moved, not copied; it is built again from `cmd` in the
    /// rare case that the script must be loaded first.
    awaitable<value> run_one(command cmd, std::string_view op, const std::string& id) {
        // Errors name the operation and the session: "touch 'abc'".
        redis::request req(std::string(op), id);
        req.push(cmd);
        auto replies = co_await conn_->exec(std::move(req));
        const script* s = nullptr;
        if (replies.front().is_error() && replies.front().text.starts_with("NOSCRIPT") && cmd.name() == "EVALSHA")
            s = scripts().find(op);
        if (!s) co_return std::move(replies.front());
        co_await load(*s, op);
        redis::request again(std::string(op), id);
        again.push(cmd);
        replies = co_await conn_->exec(std::move(again));
        co_return std::move(replies.front());
    }

    /// SCRIPT LOAD, for a server that restarted or was flushed.
    awaitable<void> load(const script& s, std::string_view op) {
        redis::request req("SCRIPT LOAD " + std::string(op));
        req.push("SCRIPT", "LOAD", s.text);
        auto loaded = co_await conn_->exec(std::move(req));
        if (loaded[0].is_error())
            throw_error(error::backend_unavailable,
                        "redis_store." + std::string(op) + ": SCRIPT LOAD: " + loaded[0].text);
    }

    // ---- errors -----------------------------------------------------------

    /// A Redis error reply: a wrong-typed key is a corrupt record, anything
    /// else the backend failing. Both name the key (`id_or_key`: a session
    /// id is turned into its record's key).
    [[noreturn]] void fail_reply(const value& reply, std::string_view op, const std::string& id_or_key) const {
        const std::string key =
            id_or_key.find('{') == std::string::npos && is_valid_id(id_or_key) ? key_of(id_or_key) : id_or_key;
        const std::string text = sessionkit::detail::printable(std::string_view(reply.text).substr(0, 300));
        throw_error(redis_store_codec::error_of_reply(reply), "redis " + conn_->name() + ": redis_store." +
                                                                  std::string(op) + ": key '" +
                                                                  sessionkit::detail::printable(key) + "': " + text);
    }

    /// Runs a decoder of a session's reply; its error gains the operation
    /// and the session (and its key, or the server for a protocol error).
    template <class Decode>
    auto decoded(std::string_view op, const std::string& id, Decode&& decode) const {
        try {
            return decode();
        } catch (const boost::system::system_error& e) {
            if (e.code() == error::corrupt_record)
                throw sessionkit::system_error(error::corrupt_record, corrupt_message(op, id, what_without_code(e)),
                                               {"redis " + conn_->name(), "redis_store." + std::string(op), id, {}});
            failed_decoding(e, op, "session '" + id + "'", id);
        }
    }

    /// The same for a reply about a key (a partition's index, a lock).
    template <class Decode>
    auto decoded_at(std::string_view op, const std::string& key, Decode&& decode) const {
        try {
            return decode();
        } catch (const boost::system::system_error& e) {
            failed_decoding(e, op, "key '" + sessionkit::detail::printable(key) + "'", key);
        }
    }

    /// "redis_store.<op>: session '<id>' (key '<key>'): <what>".
    std::string corrupt_message(std::string_view op, const std::string& id, const std::string& what) const {
        return "redis_store." + std::string(op) + ": session '" + id + "' (key '" +
               sessionkit::detail::printable(key_of(id)) + "'): " + what;
    }

private:
    [[noreturn]] void failed_decoding(const boost::system::system_error& e, std::string_view op,
                                      const std::string& subject, const std::string& key) const {
        const std::string server = e.code() == error::protocol_error ? "redis " + conn_->name() + ": " : "";
        std::string message = server + "redis_store." + std::string(op) + ": " + subject + ": " + what_without_code(e);
        if (e.code().category() != error_category()) throw boost::system::system_error(e.code(), message);
        throw sessionkit::system_error(static_cast<error>(e.code().value()), std::move(message),
                                       {"redis " + conn_->name(), "redis_store." + std::string(op), key, {}});
    }

    std::shared_ptr<redis::connection> conn_;
    std::string prefix_;
    unsigned partitions_;
};

}  // namespace sessionkit::detail::redis_store
