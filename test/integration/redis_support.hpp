// test/integration/redis_support.hpp — what the Redis tests share: a
// connection on a background io_context, fresh key prefixes, a private
// redis-server that a test may stop, stall and restart, and child
// processes of this same binary.
#pragma once

#include "support/free_port.hpp"

#include <sessionkit/store/redis.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#if OPENSSL_VERSION_MAJOR < 3
#error "the Redis tests' throwaway certificate authority (test_ca) needs OpenSSL 3 (EVP_EC_gen)"
#endif

#include <sessionkit/testing/io_threads.hpp>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace sessionkit::test {

namespace detail {
// OpenSSL first: its exit-time cleanup (atexit) must run after the io
// threads are joined, or the error state it keeps per thread leaks
// (LeakSanitizer sees it). Handlers run in reverse order of registration,
// so it registers before the threads exist.
struct openssl_initialised_first {
    openssl_initialised_first() { OPENSSL_init_ssl(0, nullptr); }
};
}  // namespace detail

/// io_threads for connections that may use TLS.
class background_io : private detail::openssl_initialised_first, public testing::io_threads {
public:
    using testing::io_threads::io_threads;
};

inline std::string redis_url() {
    const char* url = std::getenv("REDIS_URL");
    if (!url || !*url) throw std::runtime_error("REDIS_URL is not set (the test harness starts redis-server)");
    return url;
}

/// Short timeouts so that fault tests finish quickly.
inline redis::connection_options test_config(std::string url = redis_url()) {
    auto cfg = redis::connection_options::from_url(url);
    cfg.request_timeout = std::chrono::milliseconds{1000};
    cfg.connect_timeout = std::chrono::milliseconds{1000};
    return cfg;
}

/// A prefix no other test (or earlier run) uses.
inline std::string fresh_prefix(std::string_view what = "t") {
    return "sktest:" + std::string(what) + ":" + generate_id().substr(0, 10) + ":";
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

/// A throwaway certificate authority and the certificates it signs, made
/// in-process with OpenSSL (no `openssl` child process: a child's SIGCHLD
/// would reach Boost.Test's signal monitor, which jumps out of whatever was
/// running, a static's constructor included).
class test_ca {
public:
    test_ca() : key_(new_key()), cert_(make_cert(key_.get(), "sktest-ca", nullptr, nullptr, true, {})) {}

    /// Writes the CA's certificate to `ca_pem`, and a key and certificate
    /// for `alt_names` (e.g. "DNS:localhost,IP:127.0.0.1") to the other two.
    void issue(const std::filesystem::path& ca_pem, const std::filesystem::path& key_pem,
               const std::filesystem::path& cert_pem, const std::string& alt_names) const {
        auto key = new_key();
        auto cert = make_cert(key.get(), "localhost", key_.get(), cert_.get(), false, alt_names);
        write(ca_pem, [&](FILE* f) { return PEM_write_X509(f, cert_.get()); });
        write(key_pem,
              [&](FILE* f) { return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr); });
        write(cert_pem, [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
    }

private:
    struct free_key {
        void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
    };
    struct free_cert {
        void operator()(X509* c) const { X509_free(c); }
    };
    using key_ptr = std::unique_ptr<EVP_PKEY, free_key>;
    using cert_ptr = std::unique_ptr<X509, free_cert>;

    static void check(bool ok, const char* what) {
        if (!ok) throw std::runtime_error(std::string("test CA: ") + what + " failed");
    }
    static key_ptr new_key() {
        key_ptr k(EVP_EC_gen("P-256"));
        check(k != nullptr, "EC key generation");
        return k;
    }
    static void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
        check(ext != nullptr, "certificate extension");
        const bool added = X509_add_ext(cert, ext, -1) == 1;
        X509_EXTENSION_free(ext);
        check(added, "adding a certificate extension");
    }
    /// Self-signed when `issuer_key` is null.
    static cert_ptr make_cert(EVP_PKEY* key, const char* common_name, EVP_PKEY* issuer_key, X509* issuer, bool is_ca,
                              const std::string& alt_names) {
        static long serial = 1;
        cert_ptr c(X509_new());
        check(c != nullptr, "X509_new");
        X509_set_version(c.get(), 2);
        ASN1_INTEGER_set(X509_get_serialNumber(c.get()), serial++);
        X509_gmtime_adj(X509_getm_notBefore(c.get()), -60);
        X509_gmtime_adj(X509_getm_notAfter(c.get()), 2 * 24 * 3600);
        X509_set_pubkey(c.get(), key);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(c.get()), "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
        X509* signer = issuer ? issuer : c.get();
        X509_set_issuer_name(c.get(), X509_get_subject_name(signer));
        add_extension(c.get(), signer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
        if (is_ca) add_extension(c.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
        if (!alt_names.empty()) add_extension(c.get(), signer, NID_subject_alt_name, alt_names);
        check(X509_sign(c.get(), issuer_key ? issuer_key : key, EVP_sha256()) > 0, "signing");
        return c;
    }
    template <class Writer>
    static void write(const std::filesystem::path& path, Writer w) {
        // 0600: one of these is a private key.
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        FILE* f = fd >= 0 ? ::fdopen(fd, "w") : nullptr;
        if (!f) {
            if (fd >= 0) ::close(fd);
            throw std::runtime_error("test CA: cannot write " + path.string());
        }
        const bool ok = w(f) == 1;
        std::fclose(f);
        check(ok, "PEM write");
    }

    key_ptr key_;
    cert_ptr cert_;
};

/// What a private redis-server also offers besides plain TCP.
struct private_redis_options {
    bool tls = false;          ///< a TLS port too, with a CA and a certificate for localhost/127.0.0.1
    bool unix_socket = false;  ///< a unix socket in the server's directory
    std::string password;      ///< requirepass
};

/// A redis-server of the test's own (DEBUG enabled, no persistence), on a
/// fixed port so that it can be restarted at the same address.
class private_redis {
public:
    explicit private_redis(private_redis_options o = {})
        : options_(std::move(o)), port_(free_port()),
          dir_(std::filesystem::temp_directory_path() / ("sktest-redis-" + generate_id().substr(0, 8))) {
        std::filesystem::create_directories(dir_);
        try {
            if (options_.tls) {
                tls_port_ = free_port();
                make_certificates();
            }
            start();
        } catch (...) {
            // No destructor runs for a constructor that throws: leave nothing.
            stop();
            std::error_code ignored;
            std::filesystem::remove_all(dir_, ignored);
            throw;
        }
    }
    ~private_redis() {
        stop();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
    std::uint16_t port() const { return port_; }
    std::uint16_t tls_port() const { return tls_port_; }
    std::filesystem::path ca_file() const { return dir_ / "ca.pem"; }
    std::filesystem::path socket_path() const { return dir_ / "redis.sock"; }

    void start() {
        std::vector<std::string> args{
            "redis-server", "--port", std::to_string(port_), "--bind",    "127.0.0.1",
            "--save",       "",       "--appendonly",        "no",        "--enable-debug-command",
            "yes",          "--dir",  dir_.string(),         "--logfile", (dir_ / "redis.log").string()};
        if (options_.tls)
            args.insert(args.end(), {"--tls-port", std::to_string(tls_port_), "--tls-cert-file",
                                     (dir_ / "server.pem").string(), "--tls-key-file", (dir_ / "server.key").string(),
                                     "--tls-ca-cert-file", ca_file().string(), "--tls-auth-clients", "no"});
        if (options_.unix_socket) args.insert(args.end(), {"--unixsocket", socket_path().string()});
        // answers() probes the plain port without AUTH: NOAUTH means "up".
        if (!options_.password.empty()) args.insert(args.end(), {"--requirepass", options_.password});
        pid_ = spawn(args);
        for (int i = 0; i < 200; ++i) {
            if (answers()) return;
            std::this_thread::sleep_for(std::chrono::milliseconds{25});
        }
        stop();
        throw std::runtime_error("private redis-server on port " + std::to_string(port_) + " did not start (see " +
                                 (dir_ / "redis.log").string() + ")");
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
        // A listener that accepts but never answers must not block the test.
        timeval limit{.tv_sec = 1, .tv_usec = 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        if (ok) {
            const char ping[] = "PING\r\n";
            char buf[16];
            const ssize_t n = ::write(fd, ping, sizeof ping - 1) == sizeof ping - 1 ? ::read(fd, buf, sizeof buf) : -1;
            // Only the bytes read: a 16-byte "-NOAUTH Authenti..." has no NUL.
            const std::string_view reply(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
            ok = reply.starts_with("+PONG") || reply.starts_with("-NOAUTH");
        }
        ::close(fd);
        return ok;
    }

    /// A throwaway CA and a server certificate it signs, valid for
    /// localhost and 127.0.0.1.
    void make_certificates() const {
        test_ca().issue(ca_file(), dir_ / "server.key", dir_ / "server.pem", "DNS:localhost,IP:127.0.0.1");
    }

    private_redis_options options_;
    std::uint16_t port_;
    std::uint16_t tls_port_ = 0;
    std::filesystem::path dir_;
    pid_t pid_ = -1;
};

}  // namespace sessionkit::test
