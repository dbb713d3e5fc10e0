// sessionkit/store/redis/scripts.hpp — redis_store's Lua scripts by name,
// each with the text the server loads and the SHA1 EVALSHA calls it by.
//
// Public so that a tool or a benchmark can run exactly what the store runs
// (EVALSHA <sha> 1 <partition base> ...; each script's arguments are
// described beside its text in detail/lua_records.hpp,
// detail/lua_sweeps.hpp and detail/lua_outbox.hpp). The set is built once,
// on first use. The hot touch, the locks and trim_outbox stand alone; every
// other script starts with the shared prelude (helpers and the FIELDS the
// client decodes), and those that can append events (create, update,
// claim_warnings) with the outbox's helpers after it.
#pragma once

#include <sessionkit/store/redis/detail/lua_outbox.hpp>
#include <sessionkit/store/redis/detail/lua_records.hpp>
#include <sessionkit/store/redis/detail/lua_sweeps.hpp>
#include <sessionkit/store/redis/detail/sha1_hex.hpp>

#include <string>
#include <string_view>
#include <utility>

namespace sessionkit::redis_store_scripts {

/// One script as the server knows it.
struct script {
    std::string name;  ///< the store operation that runs it ("touch", "claim_expired", ...)
    std::string text;  ///< what SCRIPT LOAD sends
    std::string sha;   ///< SHA1 of `text`, lower-case hex

    script(std::string_view op, std::string body)
        : name(op), text(std::move(body)), sha(sessionkit::detail::redis_store::sha1_hex(text)) {}
};

/// Every script of the store.
struct script_set {
    // The texts are private (namespace sessionkit::detail::redis_store::lua).
    script create = with_outbox("create", sessionkit::detail::redis_store::lua::create);
    script update = with_outbox("update", sessionkit::detail::redis_store::lua::update);
    script touch{"touch", std::string(sessionkit::detail::redis_store::lua::touch)};  // the hot path: no prelude
    script erase = with_prelude("erase", sessionkit::detail::redis_store::lua::erase);
    script claim_expired = with_prelude("claim_expired", sessionkit::detail::redis_store::lua::claim_expired);
    script claim_warnings = with_outbox("claim_warnings", sessionkit::detail::redis_store::lua::claim_warnings);
    script purge_ended = with_prelude("purge_ended", sessionkit::detail::redis_store::lua::purge_ended);
    script list = with_prelude("list", sessionkit::detail::redis_store::lua::list);
    script append_output = with_prelude("append_output", sessionkit::detail::redis_store::lua::append_output);
    script read_output = with_prelude("read_output", sessionkit::detail::redis_store::lua::read_output);
    script try_lock{"try_lock", std::string(sessionkit::detail::redis_store::lua::try_lock)};
    script unlock{"unlock", std::string(sessionkit::detail::redis_store::lua::unlock)};
    script extend_lock{"extend_lock", std::string(sessionkit::detail::redis_store::lua::extend_lock)};
    script trim_outbox{"trim_outbox", std::string(sessionkit::detail::redis_store::lua::trim_outbox)};

    /// The script `name` runs, or null for an operation that runs none.
    const script* find(std::string_view name) const noexcept {
        for (const script* s : {&create, &update, &touch, &erase, &claim_expired, &claim_warnings, &purge_ended, &list,
                                &append_output, &read_output, &try_lock, &unlock, &extend_lock, &trim_outbox})
            if (s->name == name) return s;
        return nullptr;
    }

private:
    static script with_prelude(std::string_view name, std::string_view body) {
        return script(name, std::string(sessionkit::detail::redis_store::lua::prelude) + std::string(body));
    }
    static script with_outbox(std::string_view name, std::string_view body) {
        return script(name, std::string(sessionkit::detail::redis_store::lua::prelude) +
                                std::string(sessionkit::detail::redis_store::lua::outbox) + std::string(body));
    }
};

/// The scripts, built (and hashed) once.
inline const script_set& all() {
    static const script_set s;
    return s;
}

}  // namespace sessionkit::redis_store_scripts
