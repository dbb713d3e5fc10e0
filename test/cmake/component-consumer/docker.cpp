// sessionkit::docker from an installed prefix: one attach-stream frame decoded.
#include <sessionkit/docker/frames.hpp>

#include <iostream>
#include <string>

int main() {
    sessionkit::docker::frame_reader r;
    r.feed(std::string{"\x01\x00\x00\x00\x00\x00\x00\x02hi", 10});
    const auto f = r.next();
    std::cout << "docker " << (f ? f->payload : "no frame") << '\n';
    return f && f->stream == 1 && f->payload == "hi" ? 0 : 1;
}
