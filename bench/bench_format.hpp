// bench/bench_format.hpp — the one output format of every benchmark
// (doc/benchmarks.md, "One format"): one JSON object per line.
#pragma once

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

namespace sessionkit::bench {

inline void print_line(const boost::json::object& o) {
    std::string line = boost::json::serialize(o);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

/// A measured value: {"bench","case","threads"?,"value","unit","target"?}.
inline void value(std::string_view bench, std::string_view name, double v, std::string_view unit, int threads = 0,
                  std::string_view target = {}) {
    boost::json::object o{{"bench", bench}, {"case", name}};
    if (threads > 0) o["threads"] = threads;
    o["value"] = v;
    o["unit"] = unit;
    if (!target.empty()) o["target"] = target;
    print_line(o);
}

/// A ratio against a named reference: {"bench","case","ratio","vs","target"}.
inline void ratio(std::string_view bench, std::string_view name, double r, std::string_view vs,
                  std::string_view target) {
    boost::json::object o{{"bench", bench}, {"case", name}, {"ratio", r}, {"vs", vs}};
    if (!target.empty()) o["target"] = target;  // none: printed for the analysis only
    print_line(o);
}

template <class F>
double seconds_of(F&& f) {
    auto start = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace sessionkit::bench
