// sessionkit/redis/detail/handshake.hpp — what a new Redis link says before
// any request, as a state machine: the next request to send, given the
// replies to the last one, or done, or failed with the reason in words.
//
// HELLO 3 (RESP3, with AUTH when there is a password); a server before 6
// answers it with an error, and then speaks RESP2 after AUTH (if a password
// is set). WRONGPASS or NOPERM to HELLO is a refusal, not an old server.
// Then SELECT (db != 0) and CLIENT SETNAME, in one request; a failed SELECT
// is fatal, a refused SETNAME is not. The connection does the I/O (and the
// connect timeout) and raises backend_unavailable with `failure`.
#pragma once

#include <sessionkit/redis/resp.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace sessionkit::redis::detail {

/// What the handshake needs from redis::connection_options.
struct handshake_settings {
    std::string user;      ///< empty: "default" with HELLO, none with AUTH
    std::string password;  ///< empty: no AUTH
    int db = 0;
    std::string client_name;  ///< empty: not set
};

struct handshake_step {
    enum class kind : std::uint8_t { send, done, failed };
    kind what = kind::done;
    std::string payload;       ///< send: the commands, encoded
    std::size_t commands = 0;  ///< send: how many replies to read
    std::string failure;       ///< failed: why, as in "authentication failed: WRONGPASS ..."
};

class handshake {
public:
    explicit handshake(handshake_settings s) : settings_(std::move(s)) {}

    /// The first request.
    handshake_step start() {
        stage_ = stage::hello;
        const std::string& user = settings_.user.empty() ? default_user() : settings_.user;
        if (settings_.password.empty()) return send(command("HELLO").arg("3"));
        return send(command("HELLO").arg("3").arg("AUTH").arg(user).arg(settings_.password));
    }

    /// The replies to the request last returned, one per command.
    handshake_step on_replies(std::span<const resp::value> replies) {
        if (replies.empty()) return fail("no reply to the handshake");
        switch (stage_) {
        case stage::hello:
            if (replies.front().is_error()) {
                const std::string_view text = replies.front().text;
                if (text.starts_with("WRONGPASS") || text.starts_with("NOPERM"))
                    return fail("authentication failed: " + std::string(text));
                // No HELLO: a server before 6, RESP2 only.
                if (!settings_.password.empty()) {
                    stage_ = stage::auth;
                    if (settings_.user.empty()) return send(command("AUTH").arg(settings_.password));
                    return send(command("AUTH").arg(settings_.user).arg(settings_.password));
                }
            }
            return setup();
        case stage::auth:
            if (replies.front().is_error()) return fail("authentication failed: " + replies.front().text);
            return setup();
        case stage::setup:
            if (settings_.db != 0 && replies.front().is_error())
                return fail("SELECT " + std::to_string(settings_.db) + " failed: " + replies.front().text);
            return finish();
        case stage::over: break;
        }
        return finish();
    }

private:
    enum class stage : std::uint8_t { hello, auth, setup, over };
    using command = resp::command;

    static const std::string& default_user() {
        static const std::string name = "default";
        return name;
    }

    handshake_step setup() {
        stage_ = stage::setup;
        handshake_step s;
        if (settings_.db != 0) {
            command("SELECT").arg(static_cast<std::int64_t>(settings_.db)).append_to(s.payload);
            ++s.commands;
        }
        if (!settings_.client_name.empty()) {
            command("CLIENT").arg("SETNAME").arg(settings_.client_name).append_to(s.payload);
            ++s.commands;
        }
        if (s.commands == 0) return finish();
        s.what = handshake_step::kind::send;
        return s;
    }

    handshake_step send(const command& c) {
        handshake_step s;
        s.what = handshake_step::kind::send;
        c.append_to(s.payload);
        s.commands = 1;
        return s;
    }

    handshake_step fail(std::string why) {
        stage_ = stage::over;
        handshake_step s;
        s.what = handshake_step::kind::failed;
        s.failure = std::move(why);
        return s;
    }

    handshake_step finish() {
        stage_ = stage::over;
        return {};
    }

    handshake_settings settings_;
    stage stage_ = stage::hello;
};

}  // namespace sessionkit::redis::detail
