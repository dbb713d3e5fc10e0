// sessionkit/version.hpp — which sessionkit this is.
//
// Kept equal to project(VERSION) in CMakeLists.txt: configuring fails when
// they differ. SESSIONKIT_VERSION encodes the three numbers as Boost does
// BOOST_VERSION: MAJOR * 100000 + MINOR * 100 + PATCH, so 0.1.0 is 100 and
// 1.2.3 is 100203; compare it with `#if SESSIONKIT_VERSION >= 100`.
#pragma once

#define SESSIONKIT_VERSION_MAJOR 0
#define SESSIONKIT_VERSION_MINOR 1
#define SESSIONKIT_VERSION_PATCH 0
#define SESSIONKIT_VERSION_STRING "0.1.0"

#define SESSIONKIT_VERSION                                                                                             \
    (SESSIONKIT_VERSION_MAJOR * 100000 + SESSIONKIT_VERSION_MINOR * 100 + SESSIONKIT_VERSION_PATCH)
