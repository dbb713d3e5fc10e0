// sessionkit/detail/resp.hpp — the RESP codec under its former name, so code
// written against sessionkit::detail::resp keeps compiling.
//
// The value and command types now live in sessionkit/redis/resp.hpp
// (namespace sessionkit::redis::resp), the parser and byte-level helpers in
// sessionkit/redis/detail/. This namespace gathers them all: resp::value,
// resp::command, resp::parser, resp::impl::quote.
#pragma once

#include <sessionkit/redis/detail/resp_parser.hpp>
#include <sessionkit/redis/detail/resp_text.hpp>
#include <sessionkit/redis/resp.hpp>

namespace sessionkit::detail::resp {

using namespace ::sessionkit::redis::resp;
using ::sessionkit::redis::detail::resp_codec::parser;
using ::sessionkit::redis::detail::resp_codec::parser_limits;
namespace impl = ::sessionkit::redis::detail::resp_codec;

} // namespace sessionkit::detail::resp
