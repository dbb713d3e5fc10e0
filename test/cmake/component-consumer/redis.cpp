// sessionkit::redis from an installed prefix: a redis:// URL parsed (Boost.URL)
// and OpenSSL's version (OpenSSL, which the redis target links).
#include <sessionkit/redis/config.hpp>

#include <openssl/crypto.h>

#include <iostream>

int main() {
    const auto o = sessionkit::redis::connection_options::from_url("redis://h.example:6380/2");
    std::cout << "redis " << o.host << ':' << o.port << '/' << o.db << ' ' << OpenSSL_version(OPENSSL_VERSION) << '\n';
    return o.port == 6380 && o.db == 2 ? 0 : 1;
}
