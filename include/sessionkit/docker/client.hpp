// sessionkit/docker/client.hpp — the Docker Engine API over its unix
// socket, with Boost.Beast (HTTP/1.1).
//
// One connection per request: a unix-socket connect costs microseconds
// next to creating a container, requests never queue behind a slow one
// (stop blocks for its whole timeout), and there is no pool to go stale
// when dockerd restarts. The API version is negotiated once, through the
// unversioned GET /version, and every later path is prefixed with it.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/concepts.hpp>
#include <sessionkit/detail/text.hpp>
#include <sessionkit/docker/api_version.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace sessionkit::docker {

struct client_options {
    /// unix:///path/to/docker.sock (tcp:// is not supported).
    std::string host = "unix:///var/run/docker.sock";
    /// Per request; stop() adds the container's stop timeout to it.
    milliseconds timeout = std::chrono::seconds{30};

    /// DOCKER_HOST when set, else the default socket.
    static client_options from_env() {
        client_options c;
        if (const char* h = std::getenv("DOCKER_HOST"); h && *h) c.host = h;
        return c;
    }

    /// The socket path; error::invalid_argument naming what is wrong.
    std::string socket_path() const {
        constexpr std::string_view scheme = "unix://";
        if (host.rfind(scheme, 0) != 0)
            throw_error(error::invalid_argument,
                        "docker host '" + detail::printable(host) +
                            "' is not supported: only unix:///path/to/docker.sock is (DOCKER_HOST)");
        std::string path = host.substr(scheme.size());
        if (path.empty() || path.front() != '/')
            throw_error(error::invalid_argument,
                        "docker host '" + detail::printable(host) + "' must name an absolute socket path");
        if (path.size() >= 108)  // sizeof(sockaddr_un::sun_path)
            throw_error(error::invalid_argument, "docker socket path '" + detail::printable(path) +
                                                     "' is longer than a unix socket path may be (107 bytes)");
        return path;
    }
};

/// One answer: the status and the body as sent.
struct reply {
    unsigned status = 0;
    std::string body;

    bool ok() const noexcept { return status >= 200 && status < 300; }
    /// The body as JSON; error::protocol_error naming `what` when it is not.
    boost::json::value json(std::string_view what) const {
        boost::system::error_code ec;
        auto v = boost::json::parse(body, ec);
        if (ec)
            throw_error(error::protocol_error, "docker: " + std::string(what) + ": the answer is not JSON: " +
                                                   detail::printable(body.substr(0, 200)));
        return v;
    }
    /// The engine's error text: {"message": "..."}, or the raw body.
    std::string message() const {
        boost::system::error_code ec;
        auto v = boost::json::parse(body, ec);
        if (!ec && v.is_object())
            if (auto* m = v.as_object().if_contains("message"); m && m->is_string()) return std::string(m->as_string());
        std::string raw = body;
        while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r')) raw.pop_back();
        return raw.empty() ? "HTTP " + std::to_string(status) : detail::printable(raw.substr(0, 500));
    }
};

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
inline std::string url_encode(std::string_view text) {
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            sessionkit::detail::append_hex(out, c, /*upper=*/true);
        }
    }
    return out;
}

/// A connection the engine switched to a raw stream (attach), with the
/// stream bytes that arrived together with the switch.
struct raw_stream {
    boost::beast::basic_stream<boost::asio::local::stream_protocol> stream;
    std::string pending;
};

class client {
public:
    client(boost::asio::any_io_executor executor, client_options config)
        : executor_(std::move(executor)), config_(std::move(config)), socket_path_(config_.socket_path()) {
        if (config_.timeout <= milliseconds::zero())
            throw_error(error::invalid_argument, "docker client_options.timeout must be positive");
    }

    const client_options& config() const noexcept { return config_; }

    /// `target` is the path and query without the version ("/containers/json?all=1").
    awaitable<reply> request(boost::beast::http::verb method, std::string target,
                             std::optional<boost::json::value> body = std::nullopt,
                             milliseconds extra_time = milliseconds::zero()) {
        const std::string version = co_await api_version();
        std::string versioned = "/v" + version + target;  // named: GCC 12, see doc/decisions.md
        co_return co_await exchange(method, std::move(versioned), std::move(body), config_.timeout + extra_time);
    }

    /// POSTs `target` asking to switch the connection to a raw stream
    /// (attach). The stream runs on `executor` (a strand, typically) and
    /// has no timeout once switched. error::backend_unavailable naming
    /// the call when the engine refuses.
    awaitable<raw_stream> upgrade(std::string target, boost::asio::any_io_executor executor) {
        namespace http = boost::beast::http;
        const std::string version = co_await api_version();
        const std::string versioned = "/v" + version + target;
        raw_stream out{boost::beast::basic_stream<boost::asio::local::stream_protocol>(executor), {}};
        out.stream.expires_after(config_.timeout);
        std::exception_ptr failure;
        unsigned status = 0;
        std::string refusal;
        try {
            co_await out.stream.async_connect(boost::asio::local::stream_protocol::endpoint(socket_path_),
                                              boost::asio::use_awaitable);
            http::request<http::empty_body> req{http::verb::post, versioned, 11};
            req.set(http::field::host, "api.moby.localhost");
            req.set(http::field::user_agent, "sessionkit");
            req.set(http::field::connection, "Upgrade");
            req.set(http::field::upgrade, "tcp");
            req.prepare_payload();
            co_await http::async_write(out.stream, req, boost::asio::use_awaitable);
            boost::beast::flat_buffer buffer;
            http::response_parser<http::string_body> parser;
            co_await http::async_read_header(out.stream, buffer, parser, boost::asio::use_awaitable);
            status = parser.get().result_int();
            if (status != 101 && status != 200) {
                // An error answer has a body: read it for the message.
                co_await http::async_read(out.stream, buffer, parser, boost::asio::use_awaitable);
                refusal = reply{status, parser.get().body()}.message();
            } else {
                const auto data = buffer.data();
                out.pending.assign(static_cast<const char*>(data.data()), data.size());
            }
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) rethrow_named(failure, "POST " + versioned, config_.timeout);
        if (!refusal.empty())
            throw_error(error::backend_unavailable,
                        "docker: POST " + versioned + " on " + config_.host + ": " + refusal);
        out.stream.expires_never();
        co_return out;
    }

    /// The API version in use, negotiated on first use (see
    /// choose_api_version): never below 1.41 (error::backend_unavailable
    /// naming both) and 1.41 unless the engine's minimum is newer.
    awaitable<std::string> api_version() {
        {
            std::lock_guard lock(mutex_);
            if (!version_.empty()) co_return version_;
        }
        std::string target = "/version";  // named: GCC 12, see doc/decisions.md
        auto r = co_await exchange(boost::beast::http::verb::get, std::move(target), std::nullopt, config_.timeout);
        if (!r.ok())
            throw_error(error::backend_unavailable, "docker: GET /version on " + config_.host + ": " + r.message());
        auto v = r.json("GET /version");
        const auto* api = v.is_object() ? v.as_object().if_contains("ApiVersion") : nullptr;
        if (!api || !api->is_string())
            throw_error(error::protocol_error, "docker: GET /version has no ApiVersion: " + detail::printable(r.body));
        std::string_view oldest;
        if (const auto* m = v.as_object().if_contains("MinAPIVersion"); m && m->is_string()) oldest = m->as_string();
        std::string use = choose_api_version(api->as_string(), oldest, config_.host);
        std::lock_guard lock(mutex_);
        version_ = std::move(use);
        co_return version_;
    }

    /// The engine's own ID (GET /info "ID"), read on first use: it names
    /// this engine among several sharing one session store, and survives
    /// dockerd restarts (it lives in the engine's data directory). Empty
    /// for an engine that reports none.
    awaitable<std::string> engine_id() {
        {
            std::lock_guard lock(mutex_);
            if (engine_id_) co_return *engine_id_;
        }
        std::string target = "/info";  // named: GCC 12, see doc/decisions.md
        auto r = co_await request(boost::beast::http::verb::get, std::move(target));
        if (!r.ok())
            throw_error(error::backend_unavailable, "docker: GET /info on " + config_.host + ": " + r.message());
        auto v = r.json("GET /info");
        std::string id;
        if (const auto* field = v.is_object() ? v.as_object().if_contains("ID") : nullptr; field && field->is_string())
            id = std::string(field->as_string());
        std::lock_guard lock(mutex_);
        engine_id_ = id;
        co_return id;
    }

private:
    using stream_type = boost::beast::basic_stream<boost::asio::local::stream_protocol>;

    awaitable<reply> exchange(boost::beast::http::verb method, std::string target,
                              std::optional<boost::json::value> body, milliseconds limit) {
        namespace http = boost::beast::http;
        const std::string what = std::string(http::to_string(method)) + " " + target;
        stream_type stream(executor_);
        stream.expires_after(limit);
        std::exception_ptr failure;
        reply out;
        try {
            co_await stream.async_connect(boost::asio::local::stream_protocol::endpoint(socket_path_),
                                          boost::asio::use_awaitable);
            http::request<http::string_body> req{method, target, 11};
            // Go's net/http refuses a request without Host; the docker CLI sends this one.
            req.set(http::field::host, "api.moby.localhost");
            req.set(http::field::user_agent, "sessionkit");
            if (body) {
                req.set(http::field::content_type, "application/json");
                req.body() = boost::json::serialize(*body);
            }
            req.prepare_payload();
            co_await http::async_write(stream, req, boost::asio::use_awaitable);
            boost::beast::flat_buffer buffer;
            http::response_parser<http::string_body> parser;
            parser.body_limit(64 * 1024 * 1024);
            co_await http::async_read(stream, buffer, parser, boost::asio::use_awaitable);
            out.status = parser.get().result_int();
            out.body = std::move(parser.get().body());
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) rethrow_named(failure, what, limit);
        boost::system::error_code ignored;
        stream.socket().shutdown(boost::asio::local::stream_protocol::socket::shutdown_both, ignored);
        co_return out;
    }

    [[noreturn]] void rethrow_named(std::exception_ptr failure, const std::string& what, milliseconds limit) const {
        try {
            std::rethrow_exception(failure);
        } catch (const boost::system::system_error& e) {
            if (e.code() == boost::beast::error::timeout)
                throw_error(error::timeout, "docker: " + what + " on " + config_.host + " took longer than " +
                                                std::to_string(limit.count()) + " ms");
            if (e.code() == boost::asio::error::not_found || e.code() == boost::asio::error::connection_refused ||
                e.code().value() == ENOENT || e.code().value() == ECONNREFUSED)
                throw_error(error::backend_unavailable, "docker: cannot reach the engine at " + config_.host + " (" +
                                                            e.code().message() + "); is dockerd running?");
            throw_error(error::backend_unavailable,
                        "docker: " + what + " on " + config_.host + " failed: " + e.code().message());
        }
    }

    boost::asio::any_io_executor executor_;
    client_options config_;
    std::string socket_path_;
    std::mutex mutex_;
    std::string version_;
    std::optional<std::string> engine_id_;
};

}  // namespace sessionkit::docker
