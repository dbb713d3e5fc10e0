// sessionkit::process from an installed prefix: the spawner's options, and
// Boost.Filesystem (a compiled library the process target links).
#include <sessionkit/spawner/process/options.hpp>

#include <boost/filesystem/operations.hpp>

#include <iostream>

int main() {
    sessionkit::process_options o;
    o.command = "cat";
    o.working_directory = boost::filesystem::current_path().string();
    std::cout << "process " << o.command << " in " << o.working_directory << '\n';
    return o.working_directory.empty() ? 1 : 0;
}
