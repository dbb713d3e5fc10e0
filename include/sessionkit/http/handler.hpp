// sessionkit/http/handler.hpp — executes routed API commands against a
// session_registry and renders JSON responses. Never throws: every failure
// becomes a JSON error response naming what was wrong, and backend outages
// become 503 with Retry-After.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/http/follow.hpp>
#include <sessionkit/http/metrics.hpp>
#include <sessionkit/http/router.hpp>
#include <sessionkit/http/stream.hpp>
#include <sessionkit/registry.hpp>
#include <sessionkit/sink/hub.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

namespace sessionkit::http {

inline response json_response(unsigned status, const boost::json::value& body, unsigned version = 11,
                              bool keep_alive = true) {
    response res{static_cast<boost::beast::http::status>(status), version};
    res.set(boost::beast::http::field::content_type, "application/json");
    res.set(boost::beast::http::field::cache_control, "no-store");
    res.body() = boost::json::serialize(body);
    res.body() += '\n';
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

inline response error_response(const api_error& e, unsigned version = 11, bool keep_alive = true) {
    auto res =
        json_response(e.status, boost::json::object{{"error", e.code}, {"message", e.message}}, version, keep_alive);
    if (!e.allow.empty()) res.set(boost::beast::http::field::allow, e.allow);
    if (e.status == 503) res.set(boost::beast::http::field::retry_after, "1");
    if (e.status == 401) res.set(boost::beast::http::field::www_authenticate, "Bearer");
    return res;
}

/// RFC 7386 JSON merge patch: keys set to null are removed, objects merge.
inline void merge_patch(boost::json::object& target, const boost::json::object& patch) {
    for (const auto& kv : patch) {
        if (kv.value().is_null()) {
            target.erase(kv.key());
        } else if (kv.value().is_object()) {
            auto* existing = target.if_contains(kv.key());
            if (!existing || !existing->is_object()) target[kv.key()] = boost::json::object{};
            merge_patch(target[kv.key()].as_object(), kv.value().as_object());
        } else {
            target[kv.key()] = kv.value();
        }
    }
}

/// Maps an exception from the registry or a backend to an API error.
inline api_error error_from_exception(const std::exception& ex) {
    if (auto* se = dynamic_cast<const boost::system::system_error*>(&ex);
        se && se->code().category() == error_category()) {
        std::string msg = se->what();
        switch (static_cast<error>(se->code().value())) {
        case error::invalid_id: return {400, "invalid_id", msg, {}};
        case error::invalid_argument: return {400, "invalid_field", msg, {}};
        case error::invalid_transition: return {409, "invalid_transition", msg, {}};
        case error::not_found: return {404, "not_found", msg, {}};
        case error::contention: return {409, "conflict", msg, {}};
        case error::backend_unavailable:
        case error::timeout:
        case error::protocol_error: return {503, "unavailable", msg, {}};
        case error::spawn_failed: return {502, "spawn_failed", msg, {}};
        case error::corrupt_record: return {500, "corrupt_record", msg, {}};
        }
    }
    return {500, "internal", std::string("internal error: ") + ex.what(), {}};
}

template <class Registry>
class api_handler {
public:
    api_handler(Registry& registry, router_options config, api_metrics& metrics)
        : registry_(registry), config_(std::move(config)), metrics_(metrics) {}

    /// Where a 5xx answer is reported, one JSON line each (none if empty).
    std::function<void(std::string_view)> log;
    /// What /healthz calls the store, as "store" in its answers (200 and
    /// 503), e.g. "postgres"; left out when empty.
    std::string store_name;
    /// What a 503 from /healthz says does not answer, e.g. "PostgreSQL
    /// postgresql://app@db:5432/sessions" (empty: just "the session store").
    std::string store_description;

    /// The events GET /api/v1/events serves (a hub the daemon's sinks
    /// feed); without one that endpoint answers 404.
    std::optional<event_hub> events;
    /// How the ?follow=1 streams poll and keep alive.
    follow_options follow;

    /// Routes, validates, executes and records one request. Never throws.
    /// A follow request's reply is the head of a stream (http/stream.hpp).
    awaitable<reply> handle(const request& req) {
        const auto started = std::chrono::steady_clock::now();
        route_id route = route_id::unknown;
        reply rep;
        bool failed = false;
        api_error failure;
        try {
            auto routed_or_error = http::route(req, config_);
            if (auto* e = std::get_if<api_error>(&routed_or_error)) {
                failure = std::move(*e);
                failed = true;
            } else {
                auto& r = std::get<routed>(routed_or_error);
                route = r.route;
                reply answer = co_await execute(r.cmd);
                rep = std::move(answer);
            }
        } catch (const std::exception& ex) {
            failure = error_from_exception(ex);
            failed = true;
        }
        if (failed) rep = reply{error_response(failure), {}};
        response& res = rep.res;
        if (res.result_int() >= 500 && log) {
            boost::json::object line{
                {"level", "error"},
                {"msg", "request failed"},
                {"time", to_unix_ms(std::chrono::system_clock::now())},
                {"route", to_string(route)},
                {"method", std::string_view(req.method_string().data(), req.method_string().size())},
                {"status", res.result_int()},
                {"error", failed ? failure.message : std::string()}};
            log(boost::json::serialize(line));
        }
        res.version(req.version());
        res.keep_alive(req.keep_alive());
        metrics_.record_request(route, res.result_int(), std::chrono::steady_clock::now() - started);
        co_return rep;
    }

private:
    awaitable<reply> execute(command& cmd) {
        if (auto* out = std::get_if<output_cmd>(&cmd); out && out->follow) co_return co_await follow_output(*out);
        if (auto* ev = std::get_if<events_cmd>(&cmd)) co_return co_await do_events(*ev);
        response res = co_await execute_plain(cmd);
        co_return reply{std::move(res), {}};
    }

    awaitable<response> execute_plain(command& cmd) {
        switch (cmd.index()) {
        case 0: co_return co_await do_create(std::get<create_cmd>(cmd));
        case 1: co_return co_await do_list(std::get<list_cmd>(cmd));
        case 2: co_return co_await do_stats();
        case 3: co_return co_await do_get(std::get<get_cmd>(cmd));
        case 4: co_return co_await do_patch(std::get<patch_cmd>(cmd));
        case 5: co_return co_await do_delete(std::get<delete_cmd>(cmd));
        case 6: co_return co_await do_touch(std::get<touch_cmd>(cmd));
        case 7: co_return co_await do_input(std::get<input_cmd>(cmd));
        case 8: co_return co_await do_output(std::get<output_cmd>(cmd));
        case 9: co_return co_await do_health();
        default: co_return co_await do_metrics();
        }
    }

    static api_error not_found(std::string_view id) {
        return {404, "not_found", "no session '" + std::string(id) + "'", {}};
    }
    static api_error ended(const session& s) {
        return {409,
                "session_ended",
                "session '" + s.id + "' is " + std::string(to_string(s.status)) +
                    (s.end_reason.empty() ? "" : " (" + s.end_reason + ")"),
                {}};
    }

    awaitable<response> do_create(create_cmd& cmd) {
        if (!cmd.id) {
            session made = co_await registry_.create(cmd.options);
            co_return created_response(made);
        }
        auto result = co_await registry_.acquire(*cmd.id, cmd.options);
        if (result.created) co_return created_response(result.record);
        co_return json_response(200, to_json(result.record));
    }

    static response created_response(const session& s) {
        auto res = json_response(201, to_json(s));
        res.set(boost::beast::http::field::location, "/api/v1/sessions/" + s.id);
        return res;
    }

    awaitable<response> do_list(list_cmd& cmd) {
        auto page = co_await registry_.list(cmd.query);
        boost::json::array items;
        items.reserve(page.sessions.size());
        for (const auto& s : page.sessions) items.push_back(to_json(s));
        boost::json::object body{{"sessions", std::move(items)}};
        if (page.next_cursor)
            body["next_cursor"] = *page.next_cursor;
        else
            body["next_cursor"] = nullptr;
        co_return json_response(200, body);
    }

    awaitable<response> do_stats() {
        auto st = co_await registry_.stats();
        boost::json::object by_status;
        for (std::size_t i = 0; i < session_status_count; ++i) by_status[session_status_names[i]] = st.by_status[i];
        co_return json_response(200, boost::json::object{{"by_status", std::move(by_status)},
                                                         {"sessions", st.sessions},
                                                         {"created_total", st.created_total},
                                                         {"expired_total", st.expired_total},
                                                         {"terminated_total", st.terminated_total}});
    }

    awaitable<response> do_get(get_cmd& cmd) {
        auto s = co_await registry_.get(cmd.id);
        if (!s) co_return error_response(not_found(cmd.id));
        auto res = json_response(200, to_json(*s));
        res.set(boost::beast::http::field::etag, "\"" + std::to_string(s->version) + "\"");
        co_return res;
    }

    awaitable<response> do_touch(touch_cmd& cmd) {
        auto t = co_await registry_.touch(cmd.id);
        if (!t) co_return error_response(not_found(cmd.id));
        if (is_final(t->status) || t->status == session_status::stopping) {
            co_return error_response(
                {409,
                 "session_ended",
                 "session '" + cmd.id + "' is " + std::string(to_string(t->status)) + " and can no longer be touched",
                 {}});
        }
        boost::json::object body{{"id", cmd.id},
                                 {"status", to_string(t->status)},
                                 {"last_active", to_unix_ms(t->last_active)},
                                 {"idle_deadline", to_unix_ms(t->idle_deadline)},
                                 {"version", t->version}};
        co_return json_response(200, body);
    }

    awaitable<response> do_patch(patch_cmd& cmd) {
        if (cmd.status && (is_final(*cmd.status) || *cmd.status == session_status::stopping)) {
            if (cmd.attributes)
                co_return error_response(
                    {400, "invalid_field", "a PATCH that ends a session cannot also change its attributes", {}});
            if (*cmd.status == session_status::stopping)
                co_return error_response(
                    {409, "invalid_transition", "stopping is set by DELETE and the janitor, not by PATCH", {}});
            std::string reason = "status_set";
            auto ended = co_await registry_.end(cmd.id, *cmd.status, std::move(reason), cmd.if_match);
            switch (ended.result) {
            case update_result::updated: break;
            case update_result::not_found: co_return error_response(not_found(cmd.id));
            case update_result::final_state:
                if (ended.record->status == *cmd.status) break;  // already so: idempotent
                co_return error_response({409,
                                          "invalid_transition",
                                          "session '" + cmd.id + "': cannot change status from " +
                                              std::string(to_string(ended.record->status)) + " to " +
                                              std::string(to_string(*cmd.status)),
                                          {}});
            case update_result::version_conflict: co_return version_conflict(*ended.record, cmd.if_match.value_or(0));
            }
            auto res = json_response(200, to_json(*ended.record));
            res.set(boost::beast::http::field::etag, "\"" + std::to_string(ended.record->version) + "\"");
            co_return res;
        }
        const std::optional<session_status> status = cmd.status;
        const std::optional<boost::json::object> attributes = cmd.attributes;
        std::function<void(session&)> change = [&status, &attributes](session& s) {
            if (status) s.status = *status;
            if (attributes) merge_patch(s.attributes, *attributes);
        };
        auto out = co_await registry_.modify(cmd.id, std::move(change), cmd.if_match);
        switch (out.result) {
        case update_result::updated: break;
        case update_result::not_found: co_return error_response(not_found(cmd.id));
        case update_result::final_state: co_return error_response(ended(*out.record));
        case update_result::version_conflict:
            if (!out.record) co_return error_response(not_found(cmd.id));
            co_return version_conflict(*out.record, cmd.if_match.value_or(0));
        }
        auto res = json_response(200, to_json(*out.record));
        res.set(boost::beast::http::field::etag, "\"" + std::to_string(out.record->version) + "\"");
        co_return res;
    }

    static response version_conflict(const session& current, std::uint64_t expected) {
        auto res = error_response({412,
                                   "version_conflict",
                                   "session '" + current.id + "' is at version " + std::to_string(current.version) +
                                       ", not " + std::to_string(expected),
                                   {}});
        res.set(boost::beast::http::field::etag, "\"" + std::to_string(current.version) + "\"");
        return res;
    }

    awaitable<response> do_delete(delete_cmd& cmd) {
        auto done = co_await registry_.terminate(cmd.id, cmd.reason);
        if (!done) co_return error_response(not_found(cmd.id));
        co_return json_response(200, to_json(*done));
    }

    // Input goes to the session's worker; output is read from the store's
    // log of what the worker wrote (also after the worker ended).
    awaitable<response> do_input(input_cmd& cmd) {
        auto s = co_await registry_.get(cmd.id);
        if (!s) co_return error_response(not_found(cmd.id));
        if (!s->worker) co_return no_worker(cmd.id, "send input to");
        if constexpr (!input_spawner<typename Registry::spawner_type>) {
            co_return no_worker_io(*s, "send input to");
        } else {
            // A spawner chosen at run time (any_spawner) says what it can do.
            if constexpr (requires(typename Registry::spawner_type & p) { p.takes_input(); }) {
                if (!registry_.spawner().takes_input()) co_return no_worker_io(*s, "send input to");
            }
            co_await registry_.send_input(cmd.id, cmd.data);
            response res{boost::beast::http::status::no_content, 11};
            res.set(boost::beast::http::field::cache_control, "no-store");
            res.prepare_payload();
            co_return res;
        }
    }

    /// The raw bytes, with where they start and where to read on in headers
    /// (the output may be any bytes, so it is not wrapped in JSON).
    awaitable<response> do_output(output_cmd& cmd) {
        auto s = co_await registry_.get(cmd.id);
        if (!s) co_return error_response(not_found(cmd.id));
        if (!s->worker) co_return no_worker(cmd.id, "read output from");
        if constexpr (!output_log<typename Registry::store_type>) {
            co_return no_worker_io(*s, "read output from");
        } else {
            // A worker of this daemon's kind whose spawner reports no output
            // (docker with attach off) has no log to read. Another kind's
            // worker may have one: a daemon sharing the store wrote it.
            if constexpr (requires(typename Registry::spawner_type & p) { p.reports_output(); }) {
                if (registry_.spawner().kind() == s->worker->kind && !registry_.spawner().reports_output())
                    co_return no_worker_io(*s, "read output from");
            }
            auto chunk = co_await registry_.read_output(cmd.id, cmd.from);
            response res{boost::beast::http::status::ok, 11};
            res.set(boost::beast::http::field::content_type, "application/octet-stream");
            res.set(boost::beast::http::field::cache_control, "no-store");
            res.set("Sessionkit-Offset", std::to_string(chunk.offset));
            res.set("Sessionkit-Next-Offset", std::to_string(chunk.next_offset));
            res.set("Sessionkit-Dropped", chunk.dropped ? "true" : "false");
            res.body() = std::move(chunk.data);
            res.prepare_payload();
            co_return res;
        }
    }

    static response event_stream_head() {
        response res{boost::beast::http::status::ok, 11};
        res.set(boost::beast::http::field::content_type, "text/event-stream");
        res.set(boost::beast::http::field::cache_control, "no-store");
        res.set("X-Accel-Buffering", "no");  // a proxy that buffers would hold the stream back
        return res;
    }

    // ?follow=1: checked like a plain read (so a bad offset is a 400, not
    // a stream), then streamed from there.
    awaitable<reply> follow_output(output_cmd& cmd) {
        response checked = co_await do_output(cmd);
        if (checked.result() != boost::beast::http::status::ok) co_return reply{std::move(checked), {}};
        if constexpr (output_log<typename Registry::store_type>) {
            auto* registry = &registry_;
            auto options = follow;
            std::string id = cmd.id;
            const std::uint64_t from = cmd.from;
            co_return reply{event_stream_head(), [registry, id, from, options](stream_writer& w) {
                                return http::follow_output(*registry, w, id, from, options);
                            }};
        } else {
            co_return reply{std::move(checked), {}};  // not reached: do_output refused
        }
    }

    // GET /api/v1/events: what the hub keeps (filtered), or with follow=1
    // a stream of it and of what comes.
    awaitable<reply> do_events(events_cmd& cmd) {
        if (!events)
            co_return reply{error_response({404, "not_found", "this server keeps no events to serve", {}}), {}};
        if (cmd.follow) {
            auto hub = *events;
            auto options = follow;
            co_return reply{event_stream_head(), [hub, cmd, options](stream_writer& w) {
                                return follow_events(hub, w, cmd, options);  // copies of the hub and the request
                            }};
        }
        auto kept = events->read(0, events->keep());
        boost::json::array items;
        for (const auto& e : kept.events)
            if (wanted(cmd, e)) items.push_back(to_json(e));
        co_return reply{json_response(200, boost::json::object{{"events", std::move(items)}}), {}};
    }

    static response no_worker(const std::string& id, std::string_view what) {
        return error_response({409, "no_worker", "session '" + id + "' has no worker to " + std::string(what), {}});
    }
    static response no_worker_io(const session& s, std::string_view what) {
        return error_response({409,
                               "no_worker_io",
                               "session '" + s.id + "' has a " + s.worker->kind + " worker, and this daemon cannot " +
                                   std::string(what) + " it",
                               {}});
    }

    awaitable<response> do_health() {
        bool up = true;
        std::string why;
        try {
            co_await registry_.ping();
        } catch (const std::exception& e) {
            up = false;
            why = e.what();
        }
        if (!up) {
            const std::string who =
                store_description.empty() ? "the session store" : "the session store (" + store_description + ")";
            boost::json::object body{{"error", "unavailable"}, {"message", who + " does not answer: " + why}};
            if (!store_name.empty()) body["store"] = store_name;
            auto res = json_response(503, body);
            res.set(boost::beast::http::field::retry_after, "1");
            co_return res;
        }
        boost::json::object body{{"status", "ok"}};
        if (!store_name.empty()) body["store"] = store_name;
        co_return json_response(200, body);
    }

    awaitable<response> do_metrics() {
        auto st = co_await registry_.stats();
        std::optional<event_figures> events;
        if (metrics_.event_source) events = co_await metrics_.event_source();
        response res{boost::beast::http::status::ok, 11};
        res.set(boost::beast::http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res.body() = metrics_.render(st, events);
        if (metrics_.extra) res.body() += metrics_.extra();
        res.prepare_payload();
        co_return res;
    }

    Registry& registry_;
    router_options config_;
    api_metrics& metrics_;
};

}  // namespace sessionkit::http
