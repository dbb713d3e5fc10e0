// test/integration/redis_support.hpp — what the Redis tests share: a
// connection on a background io_context, fresh key prefixes, a private
// redis-server that a test may stop, stall and restart, and child
// processes of this same binary.
#pragma once

#include <sessionkit/store/redis.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace sessionkit::test {

/// An io_context running on its own threads for as long as it lives:
/// connections live here; tests drive operations from sync_wait's context.
class background_io {
public:
    explicit background_io(int threads = 1) : guard_(ctx_.get_executor()) {
        for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ctx_.run(); });
    }
    ~background_io() {
        guard_.reset();
        ctx_.stop();
        for (auto& t : threads_) t.join();
    }
    boost::asio::any_io_executor executor() { return ctx_.get_executor(); }

private:
    boost::asio::io_context ctx_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
    std::vector<std::thread> threads_;
};

inline std::string redis_url() {
    const char* url = std::getenv("REDIS_URL");
    if (!url || !*url) throw std::runtime_error("REDIS_URL is not set (the test harness starts redis-server)");
    return url;
}

/// Short timeouts so that fault tests finish quickly.
inline redis::config test_config(std::string url = redis_url()) {
    auto cfg = redis::config::from_url(url);
    cfg.request_timeout = std::chrono::milliseconds{1000};
    cfg.connect_timeout = std::chrono::milliseconds{1000};
    return cfg;
}

/// A prefix no other test (or earlier run) uses.
inline std::string fresh_prefix(std::string_view what = "t") {
    return "sktest:" + std::string(what) + ":" + generate_id().substr(0, 10) + ":";
}

inline std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

/// Starts `argv` and returns its pid.
inline pid_t spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (int rc = ::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ); rc != 0)
        throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
    return pid;
}

inline int wait_exit(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// This test binary, to run child modes in other processes.
inline std::string self_exe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

/// A redis-server of the test's own (DEBUG enabled, no persistence), on a
/// fixed port so that it can be restarted at the same address.
class private_redis {
public:
    private_redis() : port_(free_port()), dir_(std::filesystem::temp_directory_path() / ("sktest-redis-" + generate_id().substr(0, 8))) {
        std::filesystem::create_directories(dir_);
        start();
    }
    ~private_redis() {
        stop();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
    std::uint16_t port() const { return port_; }

    void start() {
        pid_ = spawn({"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--enable-debug-command", "yes", "--dir", dir_.string(),
                      "--logfile", (dir_ / "redis.log").string()});
        for (int i = 0; i < 200; ++i) {
            if (answers()) return;
            std::this_thread::sleep_for(std::chrono::milliseconds{25});
        }
        throw std::runtime_error("private redis-server on port " + std::to_string(port_) + " did not start");
    }
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        wait_exit(pid_);
        pid_ = -1;
    }

private:
    bool answers() const {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port_);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        if (ok) {
            const char ping[] = "PING\r\n";
            char buf[16] = {};
            ok = ::write(fd, ping, sizeof ping - 1) == sizeof ping - 1 && ::read(fd, buf, sizeof buf) > 0 &&
                 std::string_view(buf).starts_with("+PONG");
        }
        ::close(fd);
        return ok;
    }

    std::uint16_t port_;
    std::filesystem::path dir_;
    pid_t pid_ = -1;
};

} // namespace sessionkit::test
