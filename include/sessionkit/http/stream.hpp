// sessionkit/http/stream.hpp — an answer whose body is written while it is
// made (server-sent events): what the handler returns, what the server
// writes.
//
// The handler returns a reply. Without a stream, `res` is the whole
// answer. With one, `res` is its head: the server sends it with chunked
// transfer encoding, then runs `stream`, which sends the body piece by
// piece through a stream_writer until it returns; the server then ends the
// body and the connection goes on (keep-alive) or closes.
#pragma once

#include <sessionkit/concepts.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <functional>
#include <string>

namespace sessionkit::http {

using response = boost::beast::http::response<boost::beast::http::string_body>;

/// Where a streamed body goes.
class stream_writer {
public:
    virtual ~stream_writer() = default;
    /// Sends one piece. False once the client is gone or did not take it
    /// within the server's write timeout: the stream should end then.
    virtual awaitable<bool> send(std::string piece) = 0;
    /// True once the server is stopping: the stream should end soon (the
    /// server waits its shutdown grace for it).
    virtual bool stopping() const noexcept = 0;
};

/// Writes a body through the writer it is given; returns when it is done.
using stream_body = std::function<awaitable<void>(stream_writer&)>;

struct reply {
    response res;        ///< the whole answer, or the head of a stream
    stream_body stream;  ///< empty: res is the whole answer
};

}  // namespace sessionkit::http
