// sessionkit::postgres from an installed prefix: a postgresql:// URL parsed
// (Boost.URL) and libpq's version (libpq, which the postgres target links).
#include <sessionkit/postgres/config.hpp>

#include <libpq-fe.h>

#include <iostream>

int main() {
    const auto o = sessionkit::postgres::connection_options::from_url("postgresql://u@h.example:5433/db");
    std::cout << "postgres " << o.host << ':' << o.port << '/' << o.dbname << " libpq " << PQlibVersion() << '\n';
    return o.port == 5433 && PQlibVersion() >= 140000 ? 0 : 1;
}
