// sessionkit::nats from an installed prefix: the sink's options checked, and
// nats.c's version (nats.c, which the nats target links through pkg-config).
#include <sessionkit/sink/nats/options.hpp>

#include <nats/nats.h>

#include <iostream>

int main() {
    sessionkit::nats_sink_options o;
    o.url = "nats://a.example:4222,nats://b.example";
    sessionkit::validate(o);
    std::cout << "nats " << sessionkit::describe_servers(sessionkit::parse_nats_url(o.url)) << ' ' << nats_GetVersion()
              << '\n';
    return 0;
}
