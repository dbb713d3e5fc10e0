// sessionkit::http from an installed prefix: the framing check on a request
// header, and Boost.URL (a compiled library the http target links).
#include <sessionkit/http/framing.hpp>

#include <boost/url/parse.hpp>

#include <iostream>

int main() {
    boost::beast::http::request_header<> h;
    h.method(boost::beast::http::verb::get);
    h.target("/api/v1/sessions");
    const bool framed = !sessionkit::http::framing_error(h).has_value();
    const auto url = boost::urls::parse_origin_form("/api/v1/sessions?follow=1");
    std::cout << "http " << framed << ' ' << url.has_value() << '\n';
    return framed && url.has_value() ? 0 : 1;
}
