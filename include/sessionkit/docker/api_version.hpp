// sessionkit/docker/api_version.hpp — which Engine API version to speak,
// decided from what GET /version answered (no I/O here).
//
// Versions are "major.minor" and compare part by part as numbers, so
// "1.9" < "1.41" < "1.100". The client asks once and prefixes every later
// path with the version chosen here.
#pragma once

#include <sessionkit/error.hpp>

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace sessionkit::docker {

/// The oldest Engine API we speak: every field we send exists from 1.41.
inline constexpr std::string_view min_api_version = "1.41";

/// Whether version `a` is older than `b`, compared part by part as numbers
/// ("1.40" < "1.41" < "1.100"; a missing part counts as 0, so "1" == "1.0").
/// A part that is not a number counts as far as its leading digits go.
inline bool version_less(std::string_view a, std::string_view b) noexcept {
    auto next = [](std::string_view& s) {
        long v = 0;
        std::size_t i = 0;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) v = v * 10 + (s[i++] - '0');
        // Past this part and whatever ends it (the '.', or a stray character).
        while (i < s.size() && s[i] != '.') ++i;
        s.remove_prefix(std::min(s.size(), i + 1));
        return v;
    };
    while (!a.empty() || !b.empty()) {
        const long x = next(a), y = next(b);
        if (x != y) return x < y;
    }
    return false;
}

/// The version to use with an engine that speaks up to `engine_version`
/// ("ApiVersion") and, when it says so, no older than `engine_minimum`
/// ("MinAPIVersion"; empty when absent): ours (1.41), unless the engine no
/// longer accepts it (Engine 29 raised its minimum to 1.44) — then its
/// minimum, which still has every field we use. An engine older than 1.41
/// is error::backend_unavailable naming both versions and `host`.
inline std::string choose_api_version(std::string_view engine_version, std::string_view engine_minimum,
                                      std::string_view host) {
    if (version_less(engine_version, min_api_version))
        throw_error(error::backend_unavailable, "docker: the engine at " + std::string(host) + " speaks API " +
                                                    std::string(engine_version) + ", older than the " +
                                                    std::string(min_api_version) + " sessionkit needs");
    if (!engine_minimum.empty() && version_less(min_api_version, engine_minimum)) return std::string(engine_minimum);
    return std::string(min_api_version);
}

}  // namespace sessionkit::docker
