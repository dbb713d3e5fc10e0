// test/integration/postgres_support.hpp — what the PostgreSQL tests share:
// the harness's server (DATABASE_URL), short timeouts, and a private
// cluster of the test's own (initdb'd under /tmp, started with pg_ctl on a
// fixed port) that a test may restart with `pg_ctl restart -m immediate`
// or whose backends it may stop with SIGSTOP, without disturbing the
// other tests.
#pragma once

#include "support/free_port.hpp"

#include <sessionkit/id.hpp>
#include <sessionkit/postgres/config.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace sessionkit::test {

inline std::string database_url() {
    const char* url = std::getenv("DATABASE_URL");
    if (!url || !*url) throw std::runtime_error("DATABASE_URL is not set (the test harness starts PostgreSQL)");
    return url;
}

/// Short timeouts so that fault tests finish quickly.
inline postgres::connection_options postgres_test_config(std::string url = database_url()) {
    auto cfg = postgres::connection_options::from_url(url);
    cfg.request_timeout = std::chrono::milliseconds{2000};
    cfg.connect_timeout = std::chrono::milliseconds{2000};
    cfg.reconnect_min = std::chrono::milliseconds{20};
    cfg.reconnect_max = std::chrono::milliseconds{200};
    return cfg;
}

/// Runs `args` to its end, its output to /dev/null (errors stay on
/// stderr); returns its exit status.
inline int run_command(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// A PostgreSQL cluster of the test's own: initdb, pg_ctl start on a fixed
/// 127.0.0.1 port with a unix socket in its directory, trust auth, user and
/// database "sessionkit". As root it runs as the "postgres" account.
class private_postgres {
public:
    private_postgres()
        : port_(free_port()),
          dir_(std::filesystem::temp_directory_path() / ("sktest-pg-" + generate_id().substr(0, 8))) {
        bindir_ = find_bindir();
        std::filesystem::create_directories(dir_ / "sock");
        if (::geteuid() == 0) {
            const passwd* pw = ::getpwnam("postgres");
            if (!pw) throw std::runtime_error("running as root, but there is no 'postgres' user to run PostgreSQL as");
            as_user_ = {"runuser", "-u", "postgres", "--"};
            for (const auto& p : {dir_, dir_ / "sock"})
                if (::chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0)
                    throw std::runtime_error("cannot give " + p.string() + " to postgres");
        }
        try {
            run({bindir_ + "/initdb", "-D", data(), "-U", "sessionkit", "--auth=trust", "-E", "UTF8", "--locale=C",
                 "--no-sync"},
                "initdb");
            std::ofstream conf(dir_ / "data" / "postgresql.conf", std::ios::app);
            conf << "listen_addresses = '127.0.0.1'\nport = " << port_ << "\nunix_socket_directories = '"
                 << (dir_ / "sock").string()
                 << "'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 50\n";
            conf.close();
            start();
            run({bindir_ + "/createdb", "-h", "127.0.0.1", "-p", std::to_string(port_), "-U", "sessionkit",
                 "sessionkit"},
                "createdb");
        } catch (...) {
            stop();
            std::error_code ignored;
            std::filesystem::remove_all(dir_, ignored);
            throw;
        }
    }
    ~private_postgres() {
        stop();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    private_postgres(const private_postgres&) = delete;
    private_postgres& operator=(const private_postgres&) = delete;

    std::string url() const { return "postgresql://sessionkit@127.0.0.1:" + std::to_string(port_) + "/sessionkit"; }
    std::uint16_t port() const { return port_; }
    std::filesystem::path socket_dir() const { return dir_ / "sock"; }

    void start() {
        run({bindir_ + "/pg_ctl", "-D", data(), "-l", (dir_ / "postgres.log").string(), "-w", "-t", "30", "start"},
            "pg_ctl start");
    }
    /// pg_ctl restart -m immediate: every backend is killed at once, then
    /// the server starts again (crash recovery) on the same port.
    void restart_immediate() {
        run({bindir_ + "/pg_ctl", "-D", data(), "-l", (dir_ / "postgres.log").string(), "-m", "immediate", "-w", "-t",
             "30", "restart"},
            "pg_ctl restart");
    }
    void stop() noexcept {
        if (!std::filesystem::exists(dir_ / "data" / "postmaster.pid")) return;
        try {
            std::vector<std::string> args = as_user_;
            for (std::string a :
                 {bindir_ + "/pg_ctl", std::string("-D"), data(), std::string("-m"), std::string("immediate"),
                  std::string("-w"), std::string("-t"), std::string("30"), std::string("stop")})
                args.push_back(std::move(a));
            run_command(args);
        } catch (...) {}
    }

private:
    std::string data() const { return (dir_ / "data").string(); }

    void run(const std::vector<std::string>& cmd, const char* what) const {
        std::vector<std::string> args = as_user_;
        args.insert(args.end(), cmd.begin(), cmd.end());
        if (run_command(args) != 0)
            throw std::runtime_error(std::string(what) + " failed for the private cluster in " + dir_.string() +
                                     " (see postgres.log there)");
    }

    /// The newest /usr/lib/postgresql/<version>/bin, or PG_BINDIR.
    static std::string find_bindir() {
        if (const char* d = std::getenv("PG_BINDIR"); d && *d) return d;
        std::string best;
        int best_version = -1;
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
            const auto bin = entry.path() / "bin";
            if (!std::filesystem::exists(bin / "initdb")) continue;
            const int v = std::atoi(entry.path().filename().c_str());
            if (v > best_version) {
                best_version = v;
                best = bin.string();
            }
        }
        if (best.empty()) throw std::runtime_error("no PostgreSQL server found (/usr/lib/postgresql/*/bin/initdb)");
        return best;
    }

    std::uint16_t port_;
    std::filesystem::path dir_;
    std::string bindir_;
    std::vector<std::string> as_user_;
};

}  // namespace sessionkit::test
