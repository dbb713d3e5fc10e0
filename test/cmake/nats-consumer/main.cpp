// Builds and links against nats.c through the installed sessionkit::nats;
// runs without a server (options only).
#include <sessionkit/sink/nats.hpp>

#include <iostream>

static_assert(sessionkit::confirming_sink<sessionkit::nats_sink>);

int main() {
    sessionkit::nats_sink_options o;
    o.url = "nats://a.example:4222,nats://b.example";
    sessionkit::validate(o);
    std::cout << sessionkit::describe_servers(sessionkit::parse_nats_url(o.url)) << " " << nats_GetVersion() << "\n";
    return 0;
}
