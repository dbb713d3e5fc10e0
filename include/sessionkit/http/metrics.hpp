// sessionkit/http/metrics.hpp — what sessiond exposes on GET /metrics, in the
// Prometheus text format (version 0.0.4).
//
//   sessionkit_sessions{status="active"}             gauge, from store stats
//   sessionkit_sessions_created_total                counter, from store stats
//   sessionkit_sessions_expired_total                counter, from store stats
//   sessionkit_sessions_terminated_total             counter, from store stats
//   sessionkit_janitor_sweep_duration_seconds        histogram
//   sessionkit_janitor_sweeps_total, ..._failures_total
//   sessionkit_http_request_duration_seconds{route,code}  histogram
//   sessionkit_events_dropped_total                  counter, when a source is set
//   with an event outbox (event_figures, read at scrape time):
//   sessionkit_outbox_depth                          gauge, events waiting in the store's outbox
//   sessionkit_outbox_lag_seconds                    gauge, age of the oldest waiting event (0: none)
//   sessionkit_events_published_total                counter, confirmed by the sinks (this process)
//   sessionkit_events_publish_errors_total           counter, failed publishes, each retried (this process)
//   sessionkit_events_dead_letters_total             counter, events a sink refused for good (this process)
//   sessionkit_events_duplicates_total               counter, republished events the sink already held (this process)
//   (sessionkit_events_dropped_total then counts the outbox's overflow drops, store-wide)
//
// Store figures are read at scrape time, so every instance sharing a store
// reports the same totals; request and sweep figures are this process's.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/http/command.hpp>
#include <sessionkit/janitor.hpp>
#include <sessionkit/store_types.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace sessionkit::http {

/// A fixed-bucket histogram (seconds).
class histogram {
public:
    static constexpr std::array<double, 12> bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1.0,  5.0};
    void observe(double seconds) noexcept {
        for (std::size_t i = 0; i < bounds.size(); ++i)
            if (seconds <= bounds[i]) ++buckets_[i];
        ++count_;
        sum_ += seconds;
    }
    void render(std::string& out, std::string_view name, std::string_view labels) const {
        auto line = [&](std::string_view suffix, std::string_view extra, std::string value) {
            out += name;
            out += suffix;
            std::string all(labels);
            if (!extra.empty()) all += all.empty() ? std::string(extra) : "," + std::string(extra);
            if (!all.empty()) out += "{" + all + "}";
            out += ' ';
            out += value;
            out += '\n';
        };
        for (std::size_t i = 0; i < bounds.size(); ++i) {
            char le[32];
            std::snprintf(le, sizeof le, "le=\"%g\"", bounds[i]);
            line("_bucket", le, std::to_string(buckets_[i]));
        }
        line("_bucket", "le=\"+Inf\"", std::to_string(count_));
        char sum[64];
        std::snprintf(sum, sizeof sum, "%.9g", sum_);
        line("_sum", "", sum);
        line("_count", "", std::to_string(count_));
    }

private:
    std::array<std::uint64_t, bounds.size()> buckets_{};
    std::uint64_t count_ = 0;
    double sum_ = 0;
};

/// What an event outbox and its relay report (see the list above).
struct event_figures {
    std::uint64_t outbox_depth = 0;
    double outbox_lag_seconds = 0;
    std::uint64_t published = 0;
    std::uint64_t publish_errors = 0;
    std::uint64_t dropped = 0;
    std::uint64_t dead_letters = 0;
    std::uint64_t duplicates = 0;
};

class api_metrics {
public:
    void record_request(route_id route, unsigned status, std::chrono::steady_clock::duration took) {
        std::lock_guard lock(mutex_);
        requests_[{route, status}].observe(std::chrono::duration<double>(took).count());
    }
    void record_sweep(const sweep_report& r) {
        std::lock_guard lock(mutex_);
        sweep_.observe(std::chrono::duration<double>(r.duration).count());
        ++sweeps_;
    }
    void record_sweep_failure() {
        std::lock_guard lock(mutex_);
        ++sweep_failures_;
    }

    /// Where sessionkit_events_dropped_total is read at scrape time (an
    /// event sink's dropped()); without one the metric is left out. Set it
    /// before the server runs.
    std::function<std::uint64_t()> events_dropped;

    /// Where the outbox and relay figures are read at scrape time (the
    /// handler awaits it); without one they are left out. Set it before
    /// the server runs. It replaces events_dropped when both are set.
    std::function<awaitable<event_figures>()> event_source;

    /// More exposition text, appended at scrape time: figures of the
    /// store's own (write_through's cache). Set it before the server runs.
    std::function<std::string()> extra;

    /// The whole exposition, with the store's figures read by the caller.
    std::string render(const store_stats& st, const std::optional<event_figures>& events = std::nullopt) const {
        std::string out;
        out += "# HELP sessionkit_sessions Sessions in the store, by status.\n"
               "# TYPE sessionkit_sessions gauge\n";
        for (std::size_t i = 0; i < session_status_count; ++i)
            out += "sessionkit_sessions{status=\"" + std::string(session_status_names[i]) + "\"} " +
                   std::to_string(st.by_status[i]) + "\n";
        auto counter = [&](std::string_view name, std::string_view help, std::uint64_t v) {
            out += "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " + std::string(name) +
                   " counter\n" + std::string(name) + " " + std::to_string(v) + "\n";
        };
        counter("sessionkit_sessions_created_total", "Sessions created since the store began.", st.created_total);
        counter("sessionkit_sessions_expired_total", "Sessions expired by a janitor.", st.expired_total);
        counter("sessionkit_sessions_terminated_total", "Sessions that reached a final status.", st.terminated_total);
        auto gauge = [&](std::string_view name, std::string_view help, std::string value) {
            out += "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " + std::string(name) +
                   " gauge\n" + std::string(name) + " " + value + "\n";
        };
        if (events) {
            char lag[64];
            std::snprintf(lag, sizeof lag, "%.3f", events->outbox_lag_seconds);
            gauge("sessionkit_outbox_depth", "Events waiting in the store's outbox (every partition).",
                  std::to_string(events->outbox_depth));
            gauge("sessionkit_outbox_lag_seconds", "Age of the oldest event waiting in the outbox (0 when empty).",
                  lag);
            counter("sessionkit_events_published_total", "Events this process published and a sink confirmed.",
                    events->published);
            counter("sessionkit_events_publish_errors_total", "Publishes that failed in this process (each retried).",
                    events->publish_errors);
            counter("sessionkit_events_dropped_total",
                    "Events the outbox dropped because it was full (store-wide; each logged with its id).",
                    events->dropped);
            counter("sessionkit_events_dead_letters_total",
                    "Events a sink refused for good, set aside as dead letters (this process).", events->dead_letters);
            counter("sessionkit_events_duplicates_total",
                    "Republished events the sink already held, kept once (JetStream's duplicate window; this process).",
                    events->duplicates);
        } else if (events_dropped)
            counter("sessionkit_events_dropped_total",
                    "Lifecycle events this process could not deliver to its event sink (queue full or write failed).",
                    events_dropped());
        std::lock_guard lock(mutex_);
        counter("sessionkit_janitor_sweeps_total", "Janitor sweeps that completed in this process.", sweeps_);
        counter("sessionkit_janitor_sweep_failures_total", "Janitor sweeps that failed in this process.",
                sweep_failures_);
        out += "# HELP sessionkit_janitor_sweep_duration_seconds Duration of janitor sweeps.\n"
               "# TYPE sessionkit_janitor_sweep_duration_seconds histogram\n";
        sweep_.render(out, "sessionkit_janitor_sweep_duration_seconds", "");
        out += "# HELP sessionkit_http_request_duration_seconds HTTP requests by route and status code.\n"
               "# TYPE sessionkit_http_request_duration_seconds histogram\n";
        for (const auto& [key, h] : requests_)
            h.render(out, "sessionkit_http_request_duration_seconds",
                     "route=\"" + std::string(to_string(key.first)) + "\",code=\"" + std::to_string(key.second) + "\"");
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::map<std::pair<route_id, unsigned>, histogram> requests_;
    histogram sweep_;
    std::uint64_t sweeps_ = 0;
    std::uint64_t sweep_failures_ = 0;
};

}  // namespace sessionkit::http
