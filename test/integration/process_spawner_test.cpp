// process_spawner against real processes: input and output, exit codes,
// stop escalation, crash of the daemon, and no zombie left behind; and the
// spawner conformance suite (sessionkit/testing/spawner_conformance.hpp).
#define BOOST_TEST_MODULE process_spawner
#include <sessionkit/sessionkit.hpp>
#include <sessionkit/spawner/process.hpp>
#include <sessionkit/testing/spawner_conformance.hpp>

#include "support/recording_sink.hpp"
#include <sessionkit/testing/eventually.hpp>
#include <sessionkit/testing/io_threads.hpp>
#include <sessionkit/testing/run.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace sessionkit;
using namespace std::chrono_literals;
using testing::sync_wait;

namespace {

using registry_t = basic_session_registry<memory_store, system_clock_policy, test::recording_sink, process_spawner>;

process_options sh(std::string script) {
    process_options o;
    o.command = "sh";
    o.args = {"-c", std::move(script)};
    o.deployment = "process-test";
    return o;
}

/// A registry over real processes; its spawner watches on `io`.
struct world {
    explicit world(process_options o, milliseconds grace = 2s)
        : registry(store, registry_options{.idle_timeout = 60s, .stop_grace = grace}, {}, events,
                   process_spawner(io.executor(), std::move(o))) {}
    // The spawner's watches call into the registry: stop them first.
    ~world() { io.stop(); }
    testing::io_threads io{2};
    memory_store store;
    test::recording_sink events;
    registry_t registry;
};

using testing::eventually;

std::string output_of(registry_t& r, const std::string& id) { return sync_wait(r.read_output(id, 0)).data; }

/// Runs, as opposed to gone or a zombie waiting for whoever adopted it.
bool pid_runs(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    return line.substr(line.rfind(')') + 2, 1) != "Z";
}

pid_t pid_of(const session& s) {
    // worker ids are "<host>:<daemon pid>:<child pid>"
    const auto& id = s.worker.value().id;
    return static_cast<pid_t>(std::stol(id.substr(id.rfind(':') + 1)));
}

/// Our children, zombies included, from /proc (ppid is field 4 of stat).
std::vector<pid_t> children_of_this_process() {
    std::vector<pid_t> out;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream stat(entry.path() / "stat");
        std::string line;
        if (!std::getline(stat, line)) continue;
        // The sanitizer runtime starts its own symbolizer as our child.
        const auto open = line.find('('), close = line.rfind(')');
        const std::string comm = line.substr(open + 1, close - open - 1);
        if (comm == "llvm-symbolizer" || comm == "addr2line") continue;
        std::istringstream rest(line.substr(close + 2));
        char state;
        pid_t ppid;
        if (rest >> state >> ppid && ppid == ::getpid()) out.push_back(std::stoi(name));
    }
    return out;
}

std::string describe(const std::vector<pid_t>& pids) {
    std::string out;
    for (pid_t p : pids) {
        std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
        std::string line;
        std::getline(stat, line);
        out += " [" + line.substr(0, 60) + "]";
    }
    return out;
}

struct no_children_left {
    ~no_children_left() {
        BOOST_TEST(eventually([] { return children_of_this_process().empty(); }, 5s),
                   "processes (or zombies) left behind:" << describe(children_of_this_process()));
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(process_spawner_suite)

BOOST_FIXTURE_TEST_CASE(input_comes_back_as_output_through_cat, no_children_left) {
    process_options o;
    o.command = "cat";
    world w(o);
    auto s = sync_wait(w.registry.acquire("cat-1")).record;
    BOOST_TEST(to_string(s.status) == "active");
    BOOST_REQUIRE(s.worker);
    BOOST_TEST(s.worker->kind == "process");
    BOOST_TEST(sync_wait(w.registry.spawner().alive(*s.worker)));
    sync_wait(w.registry.send_input("cat-1", "hello\n"));
    sync_wait(w.registry.send_input("cat-1", std::string("bin\0ary\n", 8)));
    BOOST_TEST(eventually([&] { return output_of(w.registry, "cat-1").size() == 14; }));
    BOOST_TEST(output_of(w.registry, "cat-1") == std::string("hello\nbin\0ary\n", 14));
    // Reading on from an offset gives only what came after it.
    auto from6 = sync_wait(w.registry.read_output("cat-1", 6));
    BOOST_TEST(from6.data == std::string("bin\0ary\n", 8));
    auto owned = sync_wait(w.registry.spawner().list_owned());
    BOOST_REQUIRE(owned.size() == 1u);
    BOOST_TEST(owned[0].session_id == "cat-1");
    BOOST_TEST(owned[0].worker.id == s.worker->id);
    // terminate stops it (cat ends on SIGTERM), and no exit is reported as a failure.
    auto done = sync_wait(w.registry.terminate("cat-1"));
    BOOST_TEST(to_string(done->status) == "terminated");
    BOOST_TEST(done->end_reason == "deleted");
    BOOST_TEST(!pid_runs(pid_of(s)));
    BOOST_TEST(!sync_wait(w.registry.spawner().alive(*s.worker)));
    // Its watch finishes after stop returned: give a wrong report time to come.
    BOOST_TEST(eventually([&] { return sync_wait(w.registry.spawner().list_owned()).empty(); }));
    std::this_thread::sleep_for(100ms);
    BOOST_TEST(w.events.count(event_type::worker_exited) == 0u);
}

BOOST_FIXTURE_TEST_CASE(many_writers_to_one_stdin_are_not_interleaved, no_children_left) {
    process_options o;
    o.command = "cat";
    world w(o);
    sync_wait(w.registry.acquire("cat-2"));
    // 8 concurrent writes of 128 KiB each from two threads: larger than a
    // pipe, so the kernel splits each; only our serialisation keeps them whole.
    constexpr std::size_t each = 128 * 1024;
    boost::asio::io_context ctx;
    for (int i = 0; i < 8; ++i)
        boost::asio::co_spawn(
            ctx,
            [&, i]() -> awaitable<void> {
                co_await w.registry.send_input("cat-2", std::string(each, static_cast<char>('A' + i)));
            },
            boost::asio::detached);
    testing::run_threads(ctx, 2);
    // The memory store keeps the last 1 MiB: exactly the 8 writes.
    BOOST_TEST(eventually([&] { return sync_wait(w.registry.read_output("cat-2", 0)).next_offset == 8 * each; }));
    const std::string all = output_of(w.registry, "cat-2");
    BOOST_REQUIRE(all.size() == 8 * each);
    for (std::size_t at = 0; at < all.size(); at += each)
        BOOST_TEST(all.find_first_not_of(all[at], at) >= at + each, "write at " << at << " was split");
    sync_wait(w.registry.terminate("cat-2"));
}

BOOST_FIXTURE_TEST_CASE(input_to_a_worker_that_does_not_read_times_out, no_children_left) {
    auto o = sh("exec sleep 1000");  // never reads its stdin
    o.input_timeout = 300ms;
    world w(o);
    sync_wait(w.registry.acquire("deaf"));
    try {
        sync_wait(w.registry.send_input("deaf", std::string(1 << 20, 'x')));
        BOOST_FAIL("expected timeout");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(error::timeout));
        BOOST_TEST(std::string(e.what()).find("session 'deaf'") != std::string::npos, e.what());
    }
    // The next write is not stuck behind the first.
    try {
        sync_wait(w.registry.send_input("deaf", std::string(1 << 20, 'y')));
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(error::timeout));
    }
    sync_wait(w.registry.terminate("deaf"));
}

BOOST_FIXTURE_TEST_CASE(the_worker_gets_its_session_id_and_deployment, no_children_left) {
    auto o = sh("echo \"$SESSIONKIT_SESSION_ID $SESSIONKIT_DEPLOYMENT $EXTRA\"; pwd");
    o.environment["EXTRA"] = "x=1";
    o.working_directory = "/tmp";
    world w(o);
    sync_wait(w.registry.acquire("env-1"));
    BOOST_TEST(eventually([&] { return is_final(sync_wait(w.registry.get("env-1"))->status); }));
    BOOST_TEST(output_of(w.registry, "env-1") == "env-1 process-test x=1\n/tmp\n");
}

BOOST_FIXTURE_TEST_CASE(exit_codes_end_the_session_terminated_or_failed_with_an_event, no_children_left) {
    world ok(sh("echo bye"));
    world bad(sh("echo oops >&2; exit 3"));
    world killed(sh("kill -9 $$"));
    sync_wait(ok.registry.acquire("x0"));
    sync_wait(bad.registry.acquire("x3"));
    sync_wait(killed.registry.acquire("x9"));
    auto final_status = [](world& w, const char* id) {
        std::string status;
        eventually([&] {
            status = to_string(sync_wait(w.registry.get(id))->status);
            return status == "terminated" || status == "failed";
        });
        return status;
    };
    BOOST_TEST(final_status(ok, "x0") == "terminated");
    BOOST_TEST(final_status(bad, "x3") == "failed");
    BOOST_TEST(final_status(killed, "x9") == "failed");
    BOOST_TEST(sync_wait(bad.registry.get("x3"))->end_reason == "worker_exited");
    // The last words stay readable after the end.
    BOOST_TEST(output_of(ok.registry, "x0") == "bye\n");
    BOOST_TEST(output_of(bad.registry, "x3") == "oops\n");
    auto exit_event = [](world& w) {
        for (auto& e : w.events.events())
            if (e.type == event_type::worker_exited) return e.data;
        return boost::json::object{};
    };
    BOOST_TEST(exit_event(ok).at("exit_code") == 0);
    BOOST_TEST(exit_event(bad).at("exit_code") == 3);
    BOOST_TEST(exit_event(bad).at("status") == "failed");
    BOOST_TEST(exit_event(killed).at("signal") == SIGKILL);
}

BOOST_FIXTURE_TEST_CASE(stdout_and_stderr_keep_their_order, no_children_left) {
    world w(sh("echo a; echo b >&2; echo c; echo d >&2"));
    sync_wait(w.registry.acquire("order"));
    BOOST_TEST(eventually([&] { return is_final(sync_wait(w.registry.get("order"))->status); }));
    BOOST_TEST(output_of(w.registry, "order") == "a\nb\nc\nd\n");
}

BOOST_FIXTURE_TEST_CASE(a_worker_that_ignores_sigterm_is_killed_after_the_grace_period, no_children_left) {
    // The trap is inherited by the loop's sleep; the whole group must go.
    world w(sh("trap '' TERM; echo ready; while :; do sleep 0.05; done"), 400ms);
    auto s = sync_wait(w.registry.acquire("stubborn")).record;
    BOOST_TEST(eventually([&] { return output_of(w.registry, "stubborn") == "ready\n"; }));
    const auto started = std::chrono::steady_clock::now();
    auto done = sync_wait(w.registry.terminate("stubborn"));
    const auto took = std::chrono::steady_clock::now() - started;
    BOOST_TEST(to_string(done->status) == "terminated");
    BOOST_TEST((took >= 400ms));
    BOOST_TEST((took < 5s));
    BOOST_TEST(!pid_runs(pid_of(s)));
    BOOST_TEST(w.events.count(event_type::worker_exited) == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_polite_worker_stops_on_sigterm_without_waiting_for_the_grace, no_children_left) {
    world w(sh("echo up; exec sleep 1000"), 10s);
    sync_wait(w.registry.acquire("polite"));
    BOOST_TEST(eventually([&] { return output_of(w.registry, "polite") == "up\n"; }));
    const auto started = std::chrono::steady_clock::now();
    sync_wait(w.registry.terminate("polite"));
    BOOST_TEST((std::chrono::steady_clock::now() - started < 2s));
}

BOOST_FIXTURE_TEST_CASE(a_program_that_cannot_run_is_a_clear_error_and_a_failed_session, no_children_left) {
    const auto script =
        std::filesystem::temp_directory_path() / ("sessionkit-bad-interp-" + std::to_string(::getpid()));
    {
        std::ofstream f(script);
        f << "#!/nonexistent/interpreter\n";
    }
    std::filesystem::permissions(script, std::filesystem::perms::owner_all);
    process_options o;
    o.command = script.string();
    world w(o);
    try {
        sync_wait(w.registry.acquire("cannot"));
        BOOST_FAIL("expected spawn_failed");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(error::spawn_failed));
        const std::string what = e.what();
        BOOST_TEST(what.find(script.string()) != std::string::npos, what);
        BOOST_TEST(what.find("No such file") != std::string::npos, what);
    }
    auto s = sync_wait(w.registry.get("cannot"));
    BOOST_TEST(to_string(s->status) == "failed");
    BOOST_TEST(s->end_reason == "spawn_failed");
    std::filesystem::remove(script);
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused_by_name) {
    auto refused = [](process_options o, std::string_view words) {
        try {
            process_spawner p(boost::asio::system_executor{}, std::move(o));
        } catch (const boost::system::system_error& e) {
            BOOST_TEST(std::string(e.what()).find(words) != std::string::npos, e.what());
            return e.code() == make_error_code(error::invalid_argument);
        }
        return false;
    };
    process_options none;
    BOOST_TEST(refused(none, "command is empty"));
    process_options missing;
    missing.command = "no-such-program-sessionkit";
    BOOST_TEST(refused(missing, "'no-such-program-sessionkit' is not in PATH"));
    process_options dir;
    dir.command = "cat";
    dir.working_directory = "/no/such/dir";
    BOOST_TEST(refused(dir, "'/no/such/dir' is not a directory"));
    process_options env;
    env.command = "cat";
    env.environment["A=B"] = "c";
    BOOST_TEST(refused(env, "'A=B' is not a valid variable"));
}

BOOST_FIXTURE_TEST_CASE(input_to_a_session_without_a_running_worker_is_an_error_naming_it, no_children_left) {
    world w(sh("exit 0"));
    sync_wait(w.registry.acquire("gone"));
    BOOST_TEST(eventually([&] { return is_final(sync_wait(w.registry.get("gone"))->status); }));
    try {
        sync_wait(w.registry.send_input("gone", "x"));
        BOOST_FAIL("expected an error");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(error::invalid_transition));
        BOOST_TEST(std::string(e.what()).find("'gone'") != std::string::npos);
    }
}

BOOST_FIXTURE_TEST_CASE(many_sessions_at_once_each_get_their_own_process, no_children_left) {
    process_options o;
    o.command = "cat";
    world w(o);
    boost::asio::io_context ctx;
    std::atomic<int> acquired{0};
    for (int i = 0; i < 120; ++i)
        boost::asio::co_spawn(
            ctx,
            [&, i]() -> awaitable<void> {
                auto got = co_await w.registry.acquire("many-" + std::to_string(i % 30));
                if (got.record.worker) ++acquired;
            },
            boost::asio::detached);
    testing::run_threads(ctx, 3);
    BOOST_TEST(acquired.load() == 120);
    BOOST_TEST(sync_wait(w.registry.spawner().list_owned()).size() == 30u);
    BOOST_TEST(w.events.count(event_type::worker_started) == 30u);
    for (int i = 0; i < 30; ++i) sync_wait(w.registry.terminate("many-" + std::to_string(i)));
    BOOST_TEST(eventually([&] { return sync_wait(w.registry.spawner().list_owned()).empty(); }));
}

/// A "daemon" in a child process: it spawns one worker with `o` for
/// session `id`, reports the worker's pid and waits to be killed.
struct forked_daemon {
    pid_t pid = -1;     ///< the daemon (our child)
    pid_t worker = -1;  ///< its worker (not our child)
};
forked_daemon fork_daemon_with_worker(const process_options& o, const std::string& id) {
    int report[2];
    BOOST_REQUIRE(::pipe(report) == 0);
    forked_daemon d;
    d.pid = ::fork();
    BOOST_REQUIRE(d.pid >= 0);
    if (d.pid == 0) {
        ::close(report[0]);
        {
            testing::io_threads io;
            process_spawner p(io.executor(), o);
            session s;
            s.id = id;
            auto w = sync_wait(p.spawn(s));
            const std::string pid = w->id.substr(w->id.rfind(':') + 1) + "\n";
            (void)!::write(report[1], pid.data(), pid.size());
            ::pause();
        }
        ::_exit(0);
    }
    ::close(report[1]);
    char buf[32] = {};
    const auto n = ::read(report[0], buf, sizeof buf - 1);
    ::close(report[0]);
    BOOST_REQUIRE(n > 0);
    d.worker = std::stoi(buf);
    return d;
}

BOOST_FIXTURE_TEST_CASE(workers_die_with_a_daemon_killed_by_sigkill, no_children_left) {
    // A daemon in a child process spawns a worker, reports its pid, and is
    // then killed with SIGKILL: the kernel must take the worker too.
    const auto d = fork_daemon_with_worker(sh("exec sleep 1000"), "orphan-to-be");
    const pid_t daemon = d.pid, worker = d.worker;  // named: clang 14 captures no structured bindings
    BOOST_TEST(pid_runs(worker));
    ::kill(daemon, SIGKILL);
    ::waitpid(daemon, nullptr, 0);
    // The worker was reparented (not our child); it must be gone soon.
    BOOST_TEST(eventually([&] { return !pid_runs(worker); }, 5s));
}

/// A scratch directory for pid files that workers write; removed at the end.
struct pid_dir {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("sessionkit-tree-" + std::to_string(::getpid()) + "-" + std::to_string(++count));
    pid_dir() { std::filesystem::create_directories(path); }
    ~pid_dir() { std::filesystem::remove_all(path); }
    /// The pid written to `name` (atomically: the script writes and renames), or 0.
    pid_t read(const std::string& name) const {
        std::ifstream f(path / name);
        long pid = 0;
        return f >> pid ? static_cast<pid_t>(pid) : 0;
    }
    inline static int count = 0;
};

/// A worker script that starts three sleeps and writes their pids: one in
/// its process group, one orphaned at once (its subshell exits), one that
/// left the group and the session (setsid). Then it runs `then`.
std::string three_descendants(std::string_view then) {
    return "cd \"$PIDS\" || exit 1; "
           "sleep 1000 & echo $! > g.tmp; mv g.tmp in-group; "
           "(sleep 1000 & echo $! > o.tmp; mv o.tmp orphaned); "
           "setsid sh -c 'echo $$ > s.tmp; mv s.tmp escaped; exec sleep 1000' & "
           "while [ ! -e escaped ]; do sleep 0.01; done; " +
           std::string(then);
}

/// Kills what a failing check left running (only our sleeps), so that a
/// red run does not leave processes behind for ever.
void kill_leftovers(const std::vector<pid_t>& pids) {
    for (pid_t p : pids) {
        std::ifstream comm("/proc/" + std::to_string(p) + "/comm");
        std::string name;
        if (p > 0 && std::getline(comm, name) && name == "sleep") ::kill(p, SIGKILL);
    }
}

BOOST_FIXTURE_TEST_CASE(everything_a_worker_started_dies_with_a_daemon_killed_by_sigkill, no_children_left) {
    // PR_SET_PDEATHSIG reaches only a worker itself: its children, in its
    // group or not, were reparented and ran for ever (issue 12, defect 8).
    pid_dir pids;
    auto o = sh(three_descendants("wait"));
    o.environment["PIDS"] = pids.path.string();
    const auto d = fork_daemon_with_worker(o, "tree");
    const pid_t daemon = d.pid, worker = d.worker;
    BOOST_REQUIRE(eventually([&] { return pids.read("in-group") && pids.read("orphaned") && pids.read("escaped"); }));
    const std::vector<pid_t> sleeps{pids.read("in-group"), pids.read("orphaned"), pids.read("escaped")};
    for (pid_t p : sleeps) BOOST_TEST(pid_runs(p));
    ::kill(daemon, SIGKILL);
    ::waitpid(daemon, nullptr, 0);
    BOOST_TEST(eventually([&] { return !pid_runs(worker); }, 3s));
    BOOST_TEST(eventually([&] { return !pid_runs(sleeps[0]); }, 3s), "the sleep in the worker's group survived");
    BOOST_TEST(eventually([&] { return !pid_runs(sleeps[1]); }, 3s), "the orphaned sleep survived");
    BOOST_TEST(eventually([&] { return !pid_runs(sleeps[2]); }, 3s), "the sleep that left with setsid survived");
    kill_leftovers(sleeps);
}

BOOST_FIXTURE_TEST_CASE(when_a_worker_exits_everything_it_started_goes_too, no_children_left) {
    // The session ends with its worker; nothing the worker started outlives
    // it, not even a process that left its group.
    pid_dir pids;
    auto o = sh(three_descendants("exit 4"));
    o.environment["PIDS"] = pids.path.string();
    world w(o);
    sync_wait(w.registry.acquire("short"));
    BOOST_TEST(eventually([&] { return is_final(sync_wait(w.registry.get("short"))->status); }));
    const std::vector<pid_t> sleeps{pids.read("in-group"), pids.read("orphaned"), pids.read("escaped")};
    for (pid_t p : sleeps) BOOST_TEST(p > 0);
    for (pid_t p : sleeps) BOOST_TEST(eventually([&] { return !pid_runs(p); }, 3s), "sleep " << p << " survived");
    BOOST_TEST(sync_wait(w.registry.get("short"))->end_reason == "worker_exited");
    kill_leftovers(sleeps);
}

BOOST_FIXTURE_TEST_CASE(stopping_a_worker_stops_everything_it_started, no_children_left) {
    pid_dir pids;
    auto o = sh(three_descendants("wait"));
    o.environment["PIDS"] = pids.path.string();
    world w(o, 300ms);
    sync_wait(w.registry.acquire("stopped"));
    BOOST_REQUIRE(eventually([&] { return pids.read("in-group") && pids.read("orphaned") && pids.read("escaped"); }));
    const std::vector<pid_t> sleeps{pids.read("in-group"), pids.read("orphaned"), pids.read("escaped")};
    auto done = sync_wait(w.registry.terminate("stopped"));
    BOOST_TEST(to_string(done->status) == "terminated");
    for (pid_t p : sleeps) BOOST_TEST(eventually([&] { return !pid_runs(p); }, 3s), "sleep " << p << " survived");
    BOOST_TEST(w.events.count(event_type::worker_exited) == 0u);
    kill_leftovers(sleeps);
}

BOOST_FIXTURE_TEST_CASE(after_a_restart_sessions_whose_process_died_with_the_old_daemon_fail, no_children_left) {
    // What a restarted daemon finds in a shared store: sessions whose
    // workers belonged to the previous daemon on this host (dead, and its
    // workers with it), and one whose worker runs on another host.
    process_options o;
    o.command = "cat";
    world w(o);
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    auto recorded = [&](const std::string& id, const std::string& worker) {
        session s;
        s.id = id;
        s.status = session_status::active;
        s.created_at = s.last_active = std::chrono::system_clock::now();
        s.idle_timeout = 60s;
        s.idle_deadline = s.created_at + 60s;
        s.worker = worker_ref{"process", worker};
        BOOST_REQUIRE(sync_wait(w.store.create(s)).created);
    };
    recorded("old-daemon", std::string(host) + ":999999:999998");  // no such daemon, no such child
    recorded("elsewhere", "some-other-host:42:43");
    auto ours = sync_wait(w.registry.acquire("live")).record;
    janitor jan(w.registry, {.log = [](std::string_view) {}});
    auto report = sync_wait(jan.sweep_once());
    BOOST_TEST(report.workers_lost == 1u);
    BOOST_TEST(report.orphans_removed == 0u);
    BOOST_TEST(sync_wait(w.registry.get("old-daemon"))->end_reason == "worker_lost");
    BOOST_TEST(to_string(sync_wait(w.registry.get("elsewhere"))->status) == "active");
    BOOST_TEST(to_string(sync_wait(w.registry.get("live"))->status) == "active");
    BOOST_TEST(pid_runs(pid_of(ours)));
    sync_wait(w.registry.terminate("live"));
}

BOOST_AUTO_TEST_SUITE_END()

// The spawner conformance suite: the programs it asks for, as shell commands.
namespace {
struct process_conformance_factory {
    using spawner_type = process_spawner;
    static constexpr std::string_view expected_kind = "process";
    std::unique_ptr<process_spawner> make(boost::asio::any_io_executor executor, testing::worker_program program) {
        process_options o;
        switch (program) {
        case testing::worker_program::echo: o.command = "cat"; break;
        case testing::worker_program::exit_0: o = sh("echo bye; sleep 1; exit 0"); break;
        case testing::worker_program::exit_3: o = sh("echo bye; sleep 1; exit 3"); break;
        case testing::worker_program::ignore_sigterm:
            o = sh("trap '' TERM; echo ready; while :; do sleep 0.05; done");
            break;
        }
        o.deployment = "process-conformance";
        return std::make_unique<process_spawner>(std::move(executor), std::move(o));
    }
};
using process_conformance_factories = std::tuple<process_conformance_factory>;
}  // namespace

SESSIONKIT_SPAWNER_CONFORMANCE_SUITE(process_spawner_conformance, process_conformance_factories)

// Declared after the suite, so it runs after it.
BOOST_FIXTURE_TEST_CASE(the_conformance_suite_leaves_no_process_or_zombie_behind, no_children_left) {
    BOOST_TEST(true);
}
