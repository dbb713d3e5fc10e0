# SessionkitServices.cmake -- external services (redis, postgres, nats, docker)
# for tests, as ctest fixtures.
#
# Included by the top-level CMakeLists.txt (after enable_testing()).
#
# How it works:
#   * For each service NAME there are two tests, service.NAME.start
#     (FIXTURES_SETUP NAME) and service.NAME.stop (FIXTURES_CLEANUP NAME).
#     They run tools/services/NAME start|stop, which start a private server
#     on a free 127.0.0.1 port with all state under
#     ${SESSIONKIT_SERVICE_DIR}/NAME/ and write ${SESSIONKIT_SERVICE_DIR}/NAME.env.
#   * sessionkit_add_test(... SERVICES NAME...) makes a test require those
#     fixtures, so ctest runs the start test before it and the stop test after
#     the last test needing it -- also when tests fail, and only for services
#     that a selected test needs (`ctest -R redis` starts only redis).
#   * The test command is wrapped in tools/services/env-launcher, which sources
#     the *.env files at run time (ports are only known then) and execs the
#     real command. A service that is not installed, or cannot work here
#     (dockerd that cannot run a container), writes no .env file; the tests
#     that list it in SERVICES are then not run: env-launcher exits 77
#     (SKIP_RETURN_CODE), or 1 if $CI is set.
#
# Variables:
#   SESSIONKIT_SERVICE_DIR  (cache) where services keep state, sockets, logs
#                           and .env files. Default ${CMAKE_BINARY_DIR}/services.
#                           tools/test-all points it to a fresh mktemp -d dir
#                           (-DSESSIONKIT_SERVICE_DIR=...) and deletes it after.
#   SESSIONKIT_TOOLS_DIR    directory containing services/ (default: the
#                           repository's tools/ next to this cmake/ dir).
include_guard(GLOBAL)

set(SESSIONKIT_SERVICE_DIR "${CMAKE_BINARY_DIR}/services"
    CACHE PATH "Scratch directory for test services (state, sockets, logs, *.env); tools/test-all sets a temp dir")
get_filename_component(_sessionkit_default_tools_dir "${CMAKE_CURRENT_LIST_DIR}/../tools" ABSOLUTE)
set(SESSIONKIT_TOOLS_DIR "${_sessionkit_default_tools_dir}"
    CACHE PATH "Directory containing services/<name> scripts and services/env-launcher")
mark_as_advanced(SESSIONKIT_TOOLS_DIR)

set(SESSIONKIT_SERVICES redis postgres nats docker)

foreach(_svc IN LISTS SESSIONKIT_SERVICES)
  if(_svc STREQUAL "docker")
    set(_timeout 300) # dockerd + image import + a first container run
  else()
    set(_timeout 120)
  endif()
  add_test(NAME service.${_svc}.start
           COMMAND "${SESSIONKIT_TOOLS_DIR}/services/${_svc}" start)
  set_tests_properties(service.${_svc}.start PROPERTIES
    FIXTURES_SETUP ${_svc}
    ENVIRONMENT "SESSIONKIT_SERVICE_DIR=${SESSIONKIT_SERVICE_DIR}"
    TIMEOUT ${_timeout}
    LABELS "service")
  add_test(NAME service.${_svc}.stop
           COMMAND "${SESSIONKIT_TOOLS_DIR}/services/${_svc}" stop)
  set_tests_properties(service.${_svc}.stop PROPERTIES
    FIXTURES_CLEANUP ${_svc}
    ENVIRONMENT "SESSIONKIT_SERVICE_DIR=${SESSIONKIT_SERVICE_DIR}"
    TIMEOUT 120
    LABELS "service")
endforeach()
unset(_svc)
unset(_timeout)

# sessionkit_add_test(NAME <name> COMMAND <cmd> [args...]
#                     [SERVICES <redis|postgres|nats|docker>...]
#                     [TIMEOUT <seconds>] [LABELS <label>...]
#                     [WORKING_DIRECTORY <dir>])
#
# Adds a ctest test that runs <cmd> through env-launcher (so it sees
# REDIS_URL, DATABASE_URL, NATS_URL, DOCKER_HOST, ... of the SERVICES it
# lists). If <cmd> is a CMake executable target, its file is used. The test
# is skipped when it exits 77 (services not installed on a dev machine).
function(sessionkit_add_test)
  cmake_parse_arguments(PARSE_ARGV 0 ARG "" "NAME;TIMEOUT;WORKING_DIRECTORY" "COMMAND;SERVICES;LABELS")
  if(NOT ARG_NAME)
    message(FATAL_ERROR "sessionkit_add_test: NAME is required")
  endif()
  if(NOT ARG_COMMAND)
    message(FATAL_ERROR "sessionkit_add_test(${ARG_NAME}): COMMAND is required")
  endif()
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "sessionkit_add_test(${ARG_NAME}): unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  foreach(_svc IN LISTS ARG_SERVICES)
    if(NOT _svc IN_LIST SESSIONKIT_SERVICES)
      message(FATAL_ERROR "sessionkit_add_test(${ARG_NAME}): unknown service '${_svc}' (known: ${SESSIONKIT_SERVICES})")
    endif()
  endforeach()

  # add_test only maps a target name to its file when it is the first word of
  # COMMAND; here env-launcher is first, so do it ourselves. The list is
  # split with string() on purpose: list(POP_FRONT/SUBLIST) would drop the
  # escaping of arguments that contain ';' (e.g. sh -c "a; b").
  string(FIND "${ARG_COMMAND}" ";" _sep)
  if(_sep EQUAL -1)
    set(_exe "${ARG_COMMAND}")
    set(_args "")
  else()
    string(SUBSTRING "${ARG_COMMAND}" 0 ${_sep} _exe)
    math(EXPR _sep "${_sep} + 1")
    string(SUBSTRING "${ARG_COMMAND}" ${_sep} -1 _args)
  endif()
  if(TARGET "${_exe}")
    set(_exe "$<TARGET_FILE:${_exe}>")
  endif()

  set(_wd_args)
  if(ARG_WORKING_DIRECTORY)
    set(_wd_args WORKING_DIRECTORY "${ARG_WORKING_DIRECTORY}")
  endif()
  add_test(NAME ${ARG_NAME}
           COMMAND "${SESSIONKIT_TOOLS_DIR}/services/env-launcher" "${_exe}" ${_args}
           ${_wd_args})
  set_tests_properties(${ARG_NAME} PROPERTIES
    ENVIRONMENT "SESSIONKIT_SERVICE_DIR=${SESSIONKIT_SERVICE_DIR}"
    SKIP_RETURN_CODE 77)
  if(ARG_SERVICES)
    # env-launcher skips (or, with CI set, fails) the test when one of
    # them did not start: a comma list, since ';' would split ENVIRONMENT.
    string(REPLACE ";" "," _needed "${ARG_SERVICES}")
    set_tests_properties(${ARG_NAME} PROPERTIES
      FIXTURES_REQUIRED "${ARG_SERVICES}"
      ENVIRONMENT "SESSIONKIT_SERVICE_DIR=${SESSIONKIT_SERVICE_DIR};SESSIONKIT_TEST_SERVICES=${_needed}")
  endif()
  if(ARG_TIMEOUT)
    set_tests_properties(${ARG_NAME} PROPERTIES TIMEOUT ${ARG_TIMEOUT})
  endif()
  if(ARG_LABELS)
    set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}")
  endif()
endfunction()
