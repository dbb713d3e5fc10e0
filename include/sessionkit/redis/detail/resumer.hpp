// sessionkit/redis/detail/resumer.hpp — how a request's caller is resumed:
// its completion handler, type-erased, with its executor, and the exception
// it gets when the request fails.
#pragma once

#include <sessionkit/detail/resumer.hpp>
#include <sessionkit/redis/resp.hpp>

#include <vector>

namespace sessionkit::redis::detail {

/// A request's caller: resumed with the request's replies.
using resumer = sessionkit::detail::basic_resumer<std::vector<resp::value>>;
using sessionkit::detail::make_failure;

}  // namespace sessionkit::redis::detail
