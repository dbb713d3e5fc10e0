# cmake/SessionkitComponent.cmake — one function per library component, and
# the package config that finds each component's dependencies.
#
#   sessionkit_component(NAME <name>
#       [REQUIRED]                       # the build fails without it (core)
#       [DEPENDS "<find_package args>"...]  # one quoted string per package
#       [PKGCONFIG "<PREFIX> <module>"...]  # pkg_check_modules(<PREFIX> IMPORTED_TARGET <module>)
#       [LINK <targets>...]              # what sessionkit::<name> links, besides core
#       [FOUND_IF <targets>...]          # it exists only if these exist (default: LINK)
#       [WHAT "<text>"] [ALSO "<text>"] [HINT "<text>"])  # the message when it does not
#
# Each DEPENDS entry is found here (QUIET, or REQUIRED) and, in an installed
# package, again before the component's targets are defined (find_dependency
# for a REQUIRED component; for the others, whether or not the consumer asks
# for them: see cmake/sessionkit-config.cmake.in and doc/install.md).
# Each PKGCONFIG entry does the same through pkg-config, for a library whose
# CMake package is missing or broken (nats.c on Debian): it defines
# PkgConfig::<PREFIX>, here and in a consumer that asks for the component.
# When every FOUND_IF target exists, the function defines the INTERFACE
# target sessionkit_<name>, its alias sessionkit::<name>, its export name
# and install rule (export set sessionkit-<name>-targets: one targets file per
# component), and sets SESSIONKIT_HAVE_<NAME> ON in the caller; else it
# says what is missing:
#   sessionkit: <WHAT> not found: no sessionkit::<name><, ALSO> (<HINT>)
# and sets SESSIONKIT_HAVE_<NAME> OFF. sessionkit_write_package_config()
# then writes sessionkit-config.cmake from what the components recorded.
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

function(sessionkit_component)
    cmake_parse_arguments(PARSE_ARGV 0 arg "REQUIRED" "NAME;WHAT;ALSO;HINT" "DEPENDS;PKGCONFIG;LINK;FOUND_IF")
    if(NOT arg_NAME OR arg_UNPARSED_ARGUMENTS)
        message(FATAL_ERROR "sessionkit_component: NAME is required (unexpected: ${arg_UNPARSED_ARGUMENTS})")
    endif()
    set(name ${arg_NAME})
    string(TOUPPER ${name} upper)

    foreach(dep IN LISTS arg_DEPENDS)
        separate_arguments(dep_args UNIX_COMMAND "${dep}")
        if(arg_REQUIRED)
            find_package(${dep_args} REQUIRED)
        else()
            find_package(${dep_args} QUIET)
        endif()
    endforeach()

    foreach(pc IN LISTS arg_PKGCONFIG)
        separate_arguments(pc_args UNIX_COMMAND "${pc}")
        list(POP_FRONT pc_args pc_prefix)
        if(arg_REQUIRED)
            find_package(PkgConfig REQUIRED)
            pkg_check_modules(${pc_prefix} REQUIRED IMPORTED_TARGET ${pc_args})
        else()
            find_package(PkgConfig QUIET)
            if(PKG_CONFIG_FOUND)
                pkg_check_modules(${pc_prefix} QUIET IMPORTED_TARGET ${pc_args})
            endif()
        endif()
    endforeach()

    if(NOT DEFINED arg_FOUND_IF)
        set(arg_FOUND_IF ${arg_LINK})
    endif()
    foreach(target IN LISTS arg_FOUND_IF)
        if(NOT TARGET ${target})
            set(hint "")
            if(arg_HINT)
                set(hint " (${arg_HINT})")
            endif()
            set(also "")
            if(arg_ALSO)
                set(also ", ${arg_ALSO}")
            endif()
            message(STATUS "sessionkit: ${arg_WHAT} not found: no sessionkit::${name}${also}${hint}")
            set(SESSIONKIT_HAVE_${upper} OFF PARENT_SCOPE)
            return()
        endif()
    endforeach()

    add_library(sessionkit_${name} INTERFACE)
    add_library(sessionkit::${name} ALIAS sessionkit_${name})
    set_target_properties(sessionkit_${name} PROPERTIES EXPORT_NAME ${name})
    if(NOT name STREQUAL "core")
        target_link_libraries(sessionkit_${name} INTERFACE sessionkit_core)
    endif()
    target_link_libraries(sessionkit_${name} INTERFACE ${arg_LINK})
    # One export set per component: the package config includes a
    # component's targets only once its dependencies are found.
    install(TARGETS sessionkit_${name} EXPORT sessionkit-${name}-targets)

    set_property(GLOBAL APPEND PROPERTY SESSIONKIT_COMPONENTS ${name})
    set_property(GLOBAL PROPERTY SESSIONKIT_COMPONENT_${name}_DEPENDS "${arg_DEPENDS}")
    set_property(GLOBAL PROPERTY SESSIONKIT_COMPONENT_${name}_PKGCONFIG "${arg_PKGCONFIG}")
    set_property(GLOBAL PROPERTY SESSIONKIT_COMPONENT_${name}_REQUIRED ${arg_REQUIRED})
    set_property(GLOBAL PROPERTY SESSIONKIT_COMPONENT_${name}_FOUND_IF "${arg_FOUND_IF}")
    set_property(GLOBAL PROPERTY SESSIONKIT_COMPONENT_${name}_HINT "${arg_HINT}")
    set(SESSIONKIT_HAVE_${upper} ON PARENT_SCOPE)
endfunction()

# Installs each component's export set (sessionkit-<name>-targets.cmake) and
# writes <binary dir>/sessionkit-config.cmake from cmake/sessionkit-config.cmake.in:
# @SESSIONKIT_REQUIRED_DEPENDENCIES@ finds what core needs (find_dependency)
# and includes core's targets; @SESSIONKIT_COMPONENT_DEPENDENCIES@ has one
# _sessionkit_component() call per other component, which finds that
# component's dependencies and only then includes its targets.
function(sessionkit_write_package_config template install_dir)
    get_property(components GLOBAL PROPERTY SESSIONKIT_COMPONENTS)
    set(SESSIONKIT_REQUIRED_DEPENDENCIES "")
    set(SESSIONKIT_COMPONENT_DEPENDENCIES "")
    foreach(name IN LISTS components)
        install(EXPORT sessionkit-${name}-targets NAMESPACE sessionkit:: DESTINATION ${install_dir})
        get_property(depends GLOBAL PROPERTY SESSIONKIT_COMPONENT_${name}_DEPENDS)
        get_property(pkgconfig GLOBAL PROPERTY SESSIONKIT_COMPONENT_${name}_PKGCONFIG)
        get_property(required GLOBAL PROPERTY SESSIONKIT_COMPONENT_${name}_REQUIRED)
        get_property(found_if GLOBAL PROPERTY SESSIONKIT_COMPONENT_${name}_FOUND_IF)
        get_property(hint GLOBAL PROPERTY SESSIONKIT_COMPONENT_${name}_HINT)
        if(required)
            if(pkgconfig)
                message(FATAL_ERROR "sessionkit_component(${name}): a REQUIRED component with PKGCONFIG is not supported")
            endif()
            foreach(dep IN LISTS depends)
                string(APPEND SESSIONKIT_REQUIRED_DEPENDENCIES "find_dependency(${dep})\n")
            endforeach()
            string(APPEND SESSIONKIT_REQUIRED_DEPENDENCIES
                "list(APPEND _sessionkit_known_components ${name})\n"
                "include(\"\${CMAKE_CURRENT_LIST_DIR}/sessionkit-${name}-targets.cmake\")\n")
            continue()
        endif()
        string(APPEND SESSIONKIT_COMPONENT_DEPENDENCIES "_sessionkit_component(${name}")
        if(hint)
            string(APPEND SESSIONKIT_COMPONENT_DEPENDENCIES "\n    HINT \"${hint}\"")
        endif()
        foreach(keyword_list IN ITEMS "FIND;depends" "PKGCONFIG;pkgconfig")
            list(GET keyword_list 0 keyword)
            list(GET keyword_list 1 var)
            if(${var})
                string(APPEND SESSIONKIT_COMPONENT_DEPENDENCIES "\n    ${keyword}")
                foreach(item IN LISTS ${var})
                    string(APPEND SESSIONKIT_COMPONENT_DEPENDENCIES " \"${item}\"")
                endforeach()
            endif()
        endforeach()
        if(found_if)
            list(JOIN found_if " " found_if)
            string(APPEND SESSIONKIT_COMPONENT_DEPENDENCIES "\n    TARGETS ${found_if}")
        endif()
        string(APPEND SESSIONKIT_COMPONENT_DEPENDENCIES ")\n")
    endforeach()
    configure_package_config_file(${template} ${PROJECT_BINARY_DIR}/sessionkit-config.cmake
        INSTALL_DESTINATION ${install_dir})
endfunction()
