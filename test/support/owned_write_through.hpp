// test/support/owned_write_through.hpp — a write_through that owns its
// primary and cache, so a conformance factory can hand out one object.
#pragma once

#include <sessionkit/store/write_through.hpp>

#include <memory>
#include <utility>

namespace sessionkit::test {

template <class Primary, class Cache>
struct write_through_parts {
    std::unique_ptr<Primary> primary;
    std::unique_ptr<Cache> cache;
};

template <class Primary, class Cache>
class owned_write_through : private write_through_parts<Primary, Cache>, public write_through<Primary, Cache> {
public:
    owned_write_through(std::unique_ptr<Primary> primary, std::unique_ptr<Cache> cache,
                        write_through_options options = {})
        : write_through_parts<Primary, Cache>{std::move(primary), std::move(cache)},
          write_through<Primary, Cache>(*this->write_through_parts<Primary, Cache>::primary,
                                        *this->write_through_parts<Primary, Cache>::cache, std::move(options)) {}
};

}  // namespace sessionkit::test
