// sessionkit/store/memory/detail/table.hpp — memory_store's container: each
// record once, with the five indexes the store's operations walk.
//
// Private to memory_store (store/memory.hpp): hashed by id (get, touch),
// ordered by id (paging), by (owner, id) and (status, id) (filtered
// paging), and by expiry (expiry_key_of: class, then check_at) for the
// sweeps. Also the entry of a named lock.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/store/memory/detail/stored.hpp>

#include <boost/multi_index/hashed_index.hpp>
#include <boost/multi_index/ordered_index.hpp>
#include <boost/multi_index/tag.hpp>
#include <boost/multi_index_container.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace sessionkit::detail::memory {

namespace mi = boost::multi_index;

/// One stored record. `record` is mutable so that touch can update the
/// fields no index reads (last_active, idle_deadline, version) in place;
/// everything an index reads changes only through modify()/replace().
struct node {
    explicit node(session s) : record(std::move(s)), check_at(due_time(record)) {}
    mutable stored record;
    time_point check_at;  ///< <= due_time(record) while live (see store/memory.hpp)
};

struct id_of {
    using result_type = std::string_view;
    result_type operator()(const node& n) const noexcept { return n.record.id; }
};

struct expiry_key_of {
    using result_type = std::pair<expiry_class, time_point>;
    result_type operator()(const node& n) const noexcept { return {class_of(n.record), n.check_at}; }
};

struct owner_key_of {
    using result_type = std::pair<std::string_view, std::string_view>;
    result_type operator()(const node& n) const noexcept { return {n.record.owner, n.record.id}; }
};

struct status_key_of {
    using result_type = std::pair<session_status, std::string_view>;
    result_type operator()(const node& n) const noexcept { return {n.record.status, n.record.id}; }
};

// std::hash<std::string> and std::hash<std::string_view> agree, so lookups
// by string_view need no temporary string.
struct id_hash {
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
struct id_equal {
    bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
};

struct by_id_hash {};
struct by_id {};
struct by_owner {};
struct by_status {};
struct by_expiry {};

using table = mi::multi_index_container<
    node, mi::indexed_by<mi::hashed_unique<mi::tag<by_id_hash>, id_of, id_hash, id_equal>,
                         mi::ordered_unique<mi::tag<by_id>, id_of>, mi::ordered_unique<mi::tag<by_owner>, owner_key_of>,
                         mi::ordered_unique<mi::tag<by_status>, status_key_of>,
                         mi::ordered_non_unique<mi::tag<by_expiry>, expiry_key_of>>>;

struct lock_entry {
    std::string token;
    time_point expires;
};

}  // namespace sessionkit::detail::memory
