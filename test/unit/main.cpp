#define BOOST_TEST_MODULE sessionkit_unit
#include <boost/test/unit_test.hpp>
