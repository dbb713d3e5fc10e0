// sessionkit::core from an installed prefix: an id check, and Boost.JSON (a
// compiled library the core target links).
#include <sessionkit/id.hpp>

#include <boost/json/parse.hpp>

#include <iostream>

int main() {
    sessionkit::check_id("consumer-1");
    auto v = boost::json::parse(R"({"id":"consumer-1"})");
    std::cout << "core " << v.at("id").as_string() << '\n';
    return v.at("id").as_string() == "consumer-1" ? 0 : 1;
}
