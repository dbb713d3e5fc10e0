// docker_spawner against the real dockerd the test harness starts
// (DOCKER_HOST, SESSIONKIT_TEST_IMAGE): spawn, alive, stop, list, hardening,
// errors, one container per session across processes, and reconciliation
// after a daemon is killed. Without DOCKER_HOST (the harness's dockerd is
// not installed or cannot run containers here) it exits 77, skipped, or
// fails when CI is set. Ends with the spawner conformance suite
// (sessionkit/testing/spawner_conformance.hpp).
#define BOOST_TEST_MODULE docker_spawner
#define BOOST_TEST_NO_MAIN
#include <sessionkit/sessionkit.hpp>
#include <sessionkit/spawner/docker.hpp>
#include <sessionkit/store/redis.hpp>
#include <sessionkit/testing/spawner_conformance.hpp>

#include "integration/redis_support.hpp"
#include "support/recording_sink.hpp"
#include <sessionkit/testing/eventually.hpp>
#include <sessionkit/testing/run.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace sessionkit;
using namespace std::chrono_literals;
using testing::sync_wait;
namespace http = boost::beast::http;

namespace {

std::string test_image() {
    const char* image = std::getenv("SESSIONKIT_TEST_IMAGE");
    if (!image || !*image || !std::getenv("DOCKER_HOST"))
        throw std::runtime_error("DOCKER_HOST and SESSIONKIT_TEST_IMAGE are not set (the test harness starts dockerd)");
    return image;
}

/// A deployment name no other test run shares, so leftovers never mix.
std::string unique_deployment(std::string_view what) {
    return "t" + std::to_string(::getpid()) + "-" + std::string(what);
}

docker_options sleeper(std::string_view what) {
    docker_options o;
    o.image = test_image();
    o.command = {"sleep", "1000"};
    o.deployment = unique_deployment(what);
    o.memory_bytes = 64LL << 20;
    o.pids_limit = 64;
    return o;
}

docker_options unattached(std::string_view what) {
    auto o = sleeper(what);
    o.attach = false;
    return o;
}

session a_session(std::string id) {
    session s;
    s.id = std::move(id);
    s.created_at = std::chrono::system_clock::now();
    return s;
}

/// Removes every container of a deployment (test clean-up).
void remove_all(docker_spawner& p) {
    for (auto& w : sync_wait(p.list_owned())) sync_wait(p.stop(w.worker, 0s));
}

boost::json::object inspect(docker_spawner& p, const std::string& id) {
    std::string target = "/containers/" + id + "/json";
    auto r = sync_wait(p.engine().request(http::verb::get, std::move(target)));
    BOOST_REQUIRE_EQUAL(r.status, 200u);
    return r.json("inspect").as_object();
}

/// What most tests here share: io threads, a memory store, recorded events,
/// and a registry whose spawner is a docker_spawner with `options`.
struct docker_world {
    testing::io_threads io;
    memory_store store;
    test::recording_sink events;
    basic_session_registry<memory_store, system_clock_policy, test::recording_sink, docker_spawner> registry;

    docker_world(docker_options options, milliseconds stop_grace)
        : registry(store, registry_options{.stop_grace = stop_grace}, {}, events,
                   docker_spawner(io.executor(), std::move(options))) {}
};

}  // namespace

/// The cases that go through the attach stream and the input path: the
/// ASan pass of tools/test-all runs these (--run_test=@attach).
const auto attach_path = boost::unit_test::label("attach");

BOOST_AUTO_TEST_SUITE(docker_spawner_suite)

BOOST_AUTO_TEST_CASE(the_api_version_is_negotiated) {
    testing::io_threads io;
    docker::client engine(io.executor(), docker::client_options::from_env());
    BOOST_TEST(sync_wait(engine.api_version()) == "1.41");
}

BOOST_AUTO_TEST_CASE(spawn_alive_list_and_stop_a_hardened_container, *attach_path) {
    testing::io_threads io;
    docker_spawner p(io.executor(), sleeper("basic"));
    auto w = sync_wait(p.spawn(a_session("basic:1")));
    BOOST_REQUIRE(w);
    BOOST_TEST(w->kind == "docker");
    BOOST_TEST(w->id.size() == 64u);
    BOOST_TEST(sync_wait(p.alive(*w)));

    auto c = inspect(p, w->id);
    const auto& labels = c.at("Config").at("Labels").as_object();
    BOOST_TEST(labels.at("sessionkit.session") == "basic:1");
    BOOST_TEST(labels.at("sessionkit.deployment").as_string() == p.options().deployment.c_str());
    const auto& host = c.at("HostConfig").as_object();
    BOOST_TEST(host.at("NetworkMode") == "none");
    BOOST_TEST(host.at("Privileged") == false);
    BOOST_TEST(host.at("Memory") == 64LL << 20);
    BOOST_TEST(host.at("PidsLimit") == 64);
    BOOST_TEST(host.at("CapDrop").as_array().front() == "ALL");
    BOOST_TEST(host.at("Init") == true);
    bool has_session_env = false;
    for (auto& e : c.at("Config").at("Env").as_array()) has_session_env |= e == "SESSIONKIT_SESSION_ID=basic:1";
    BOOST_TEST(has_session_env);

    auto owned = sync_wait(p.list_owned());
    BOOST_REQUIRE(owned.size() == 1u);
    BOOST_TEST(owned[0].session_id == "basic:1");
    BOOST_TEST(owned[0].worker.id == w->id);

    // tini forwards SIGTERM to sleep: no need to wait for the grace.
    const auto started = std::chrono::steady_clock::now();
    sync_wait(p.stop(*w, 10s));
    BOOST_TEST((std::chrono::steady_clock::now() - started < 5s));
    BOOST_TEST(!sync_wait(p.alive(*w)));
    BOOST_TEST(sync_wait(p.list_owned()).empty());
    sync_wait(p.stop(*w, 1s));  // stopping what is gone succeeds
}

BOOST_AUTO_TEST_CASE(a_registry_starts_reuses_and_stops_the_container, *attach_path) {
    docker_world world(sleeper("registry"), 2s);
    auto& registry = world.registry;
    auto first = sync_wait(registry.acquire("alice"));
    BOOST_TEST(first.created);
    BOOST_TEST(to_string(first.record.status) == "active");
    BOOST_REQUIRE(first.record.worker);
    auto again = sync_wait(registry.acquire("alice"));
    BOOST_TEST(!again.created);
    BOOST_TEST(again.record.worker->id == first.record.worker->id);
    BOOST_TEST(sync_wait(registry.spawner().list_owned()).size() == 1u);
    auto done = sync_wait(registry.terminate("alice"));
    BOOST_TEST(to_string(done->status) == "terminated");
    BOOST_TEST(sync_wait(registry.spawner().list_owned()).empty());
    BOOST_TEST(world.events.count(event_type::worker_started) == 1u);
}

BOOST_AUTO_TEST_CASE(an_unknown_image_is_a_clear_error_and_leaves_nothing_half_made) {
    testing::io_threads io;
    auto o = sleeper("noimage");
    o.image = "sessionkit-no-such-image:never";
    memory_store store;
    basic_session_registry<memory_store, system_clock_policy, null_sink, docker_spawner> registry(
        store, {}, {}, {}, docker_spawner(io.executor(), o));
    try {
        sync_wait(registry.acquire("nobody"));
        BOOST_FAIL("expected spawn_failed");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(error::spawn_failed));
        BOOST_TEST(std::string(e.what()).find("image 'sessionkit-no-such-image:never' not found") != std::string::npos,
                   e.what());
    }
    auto s = sync_wait(registry.get("nobody"));
    BOOST_TEST(to_string(s->status) == "failed");
    BOOST_TEST(s->end_reason == "spawn_failed");
    BOOST_TEST(!s->worker);
    BOOST_TEST(sync_wait(registry.spawner().list_owned()).empty());
}

BOOST_AUTO_TEST_CASE(a_container_that_exits_at_once_fails_its_session_and_is_removed, *attach_path) {
    // Seen exiting by spawn's own check (spawn_failed), or a moment later
    // through the attach stream (worker_exited): either way the session
    // fails with the code, and no container is left.
    auto o = sleeper("false");
    o.command = {"sh", "-c", "exit 7"};
    docker_world world(o, 1s);
    auto& registry = world.registry;
    try {
        sync_wait(registry.acquire("quitter"));
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(error::spawn_failed));
        BOOST_TEST(std::string(e.what()).find("exited at once with code 7") != std::string::npos, e.what());
    }
    BOOST_TEST(testing::eventually([&] { return to_string(sync_wait(registry.get("quitter"))->status) == "failed"; }));
    const auto reason = sync_wait(registry.get("quitter"))->end_reason;
    BOOST_TEST((reason == "spawn_failed" || reason == "worker_exited"), reason);
    BOOST_TEST(testing::eventually([&] { return sync_wait(registry.spawner().list_owned()).empty(); }));
}

BOOST_AUTO_TEST_CASE(a_second_spawn_for_the_same_session_adopts_the_first_container) {
    testing::io_threads io;
    docker_spawner p(io.executor(), sleeper("adopt"));
    const session s = a_session("twice");
    auto a = sync_wait(p.spawn(s));
    auto b = sync_wait(p.spawn(s));
    BOOST_TEST(a->id == b->id);
    // A new session under the same id (another created_at) replaces it.
    auto c = sync_wait(p.spawn(a_session("twice")));
    BOOST_TEST(c->id != a->id);
    auto owned = sync_wait(p.list_owned());
    BOOST_REQUIRE(owned.size() == 1u);
    BOOST_TEST(owned[0].worker.id == c->id);
    remove_all(p);
}

BOOST_AUTO_TEST_CASE(bad_options_and_hosts_are_refused_by_name) {
    auto refused = [](docker_options o, std::string_view words) {
        try {
            docker_spawner p(boost::asio::system_executor{}, std::move(o));
        } catch (const boost::system::system_error& e) {
            BOOST_TEST(std::string(e.what()).find(words) != std::string::npos, e.what());
            return e.code() == make_error_code(error::invalid_argument);
        }
        return false;
    };
    docker_options none;
    BOOST_TEST(refused(none, "image is empty"));
    docker_options tcp;
    tcp.image = "x";
    tcp.engine.host = "tcp://127.0.0.1:2375";
    BOOST_TEST(refused(tcp, "only unix://"));
    docker_options tiny;
    tiny.image = "x";
    tiny.memory_bytes = 1024;
    BOOST_TEST(refused(tiny, "memory_bytes"));
}

BOOST_AUTO_TEST_CASE(an_engine_that_is_not_there_is_backend_unavailable) {
    testing::io_threads io;
    docker_options o;
    o.image = "x";
    o.engine.host = "unix:///nonexistent/docker.sock";
    docker_spawner p(io.executor(), o);
    try {
        sync_wait(p.spawn(a_session("x")));
        BOOST_FAIL("expected backend_unavailable");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(error::backend_unavailable));
        BOOST_TEST(std::string(e.what()).find("unix:///nonexistent/docker.sock") != std::string::npos, e.what());
    }
}

/// The one case that also needs Redis: skipped without it when run by
/// hand (ctest declares redis for integration.docker, so it is there).
boost::test_tools::assertion_result redis_is_there(boost::unit_test::test_unit_id) {
    boost::test_tools::assertion_result there(std::getenv("REDIS_URL") != nullptr);
    there.message() << "REDIS_URL is not set";
    return there;
}

BOOST_AUTO_TEST_CASE(two_processes_of_100_acquirers_make_exactly_one_container,
                     *boost::unit_test::precondition(redis_is_there)) {
    // One Redis store shared by two daemons (processes); each runs 100
    // concurrent acquires of the same session.
    const std::string prefix = "dockertest:" + std::to_string(::getpid()) + ":";
    const auto options = sleeper("race");
    int report[2];
    BOOST_REQUIRE(::pipe(report) == 0);
    std::vector<pid_t> daemons;
    for (int d = 0; d < 2; ++d) {
        const pid_t pid = ::fork();
        BOOST_REQUIRE(pid >= 0);
        if (pid == 0) {
            ::close(report[0]);
            int rc = 1;
            try {
                test::background_io io(2);
                redis_store_options ro;
                ro.prefix = prefix;
                redis_store store(io.executor(), test::test_config(), ro);
                basic_session_registry<redis_store, system_clock_policy, null_sink, docker_spawner> registry(
                    store, {}, {}, {}, docker_spawner(io.executor(), options));
                boost::asio::io_context ctx;
                std::mutex m;
                std::set<std::string> workers;
                std::atomic<int> failures{0};
                for (int i = 0; i < 100; ++i)
                    boost::asio::co_spawn(
                        ctx,
                        [&]() -> awaitable<void> {
                            try {
                                auto got = co_await registry.acquire("contended");
                                std::lock_guard lock(m);
                                workers.insert(got.record.worker ? got.record.worker->id : "none");
                            } catch (...) {
                                ++failures;
                            }
                        },
                        boost::asio::detached);
                testing::run_threads(ctx, 2);
                std::string line = std::to_string(failures.load());
                for (auto& w : workers) line += " " + w;
                line += "\n";
                (void)!::write(report[1], line.data(), line.size());
                rc = 0;
            } catch (...) {}
            ::_exit(rc);
        }
        daemons.push_back(pid);
    }
    ::close(report[1]);
    std::string all;
    char buf[4096];
    for (ssize_t n; (n = ::read(report[0], buf, sizeof buf)) > 0;) all.append(buf, static_cast<std::size_t>(n));
    ::close(report[0]);
    for (pid_t pid : daemons) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    }
    // Each line: failures, then the worker ids that process saw.
    std::set<std::string> seen;
    std::istringstream lines(all);
    int reports = 0;
    for (std::string line; std::getline(lines, line); ++reports) {
        std::istringstream words(line);
        int failures = -1;
        words >> failures;
        BOOST_TEST(failures == 0);
        for (std::string w; words >> w;) seen.insert(w);
    }
    BOOST_TEST(reports == 2);
    BOOST_TEST(seen.size() == 1u);
    BOOST_TEST(seen.count("none") == 0u);
    testing::io_threads io;
    docker_spawner p(io.executor(), options);
    auto owned = sync_wait(p.list_owned());
    BOOST_TEST(owned.size() == 1u);
    if (!owned.empty()) BOOST_TEST(seen.count(owned[0].worker.id) == 1u);
    remove_all(p);
}

BOOST_AUTO_TEST_CASE(input_and_output_go_through_the_attach_stream, *attach_path) {
    auto o = sleeper("io");
    o.command = {"cat"};
    docker_world world(o, 1s);
    auto& registry = world.registry;
    sync_wait(registry.acquire("talker"));
    sync_wait(registry.send_input("talker", "hello\n"));
    sync_wait(registry.send_input("talker", "again\n"));
    BOOST_TEST(
        testing::eventually([&] { return sync_wait(registry.read_output("talker", 0)).data == "hello\nagain\n"; }));
    sync_wait(registry.terminate("talker"));
    BOOST_TEST(world.events.count(event_type::worker_exited) == 0u);  // we stopped it: no news
}

BOOST_AUTO_TEST_CASE(many_writers_to_one_attach_stream_are_not_interleaved, *attach_path) {
    // 8 concurrent writes of 32 KiB from two threads through one attach
    // connection: each must reach `cat` whole (also the case the ASan pass
    // runs for the input path).
    auto o = sleeper("writers");
    o.command = {"cat"};
    docker_world world(o, 1s);
    auto& registry = world.registry;
    sync_wait(registry.acquire("chorus"));
    constexpr std::size_t each = 32 * 1024;
    boost::asio::io_context ctx;
    for (int i = 0; i < 8; ++i)
        boost::asio::co_spawn(
            ctx,
            [&, i]() -> awaitable<void> {
                co_await registry.send_input("chorus", std::string(each, static_cast<char>('A' + i)));
            },
            boost::asio::detached);
    testing::run_threads(ctx, 2);
    BOOST_TEST(
        testing::eventually([&] { return sync_wait(registry.read_output("chorus", 0)).next_offset == 8 * each; }, 10s));
    const std::string all = sync_wait(registry.read_output("chorus", 0)).data;
    BOOST_REQUIRE(all.size() == 8 * each);
    for (std::size_t at = 0; at < all.size(); at += each)
        BOOST_TEST(all.find_first_not_of(all[at], at) >= at + each, "write at " << at << " was split");
    sync_wait(registry.terminate("chorus"));
}

BOOST_AUTO_TEST_CASE(a_container_that_exits_ends_its_session_at_once_with_its_code, *attach_path) {
    auto o = sleeper("exit");
    o.command = {"sh", "-c", "echo bye; sleep 0.5; exit 3"};
    docker_world world(o, 1s);
    auto& registry = world.registry;
    sync_wait(registry.acquire("brief"));
    BOOST_TEST(testing::eventually([&] { return to_string(sync_wait(registry.get("brief"))->status) == "failed"; }));
    BOOST_TEST(sync_wait(registry.get("brief"))->end_reason == "worker_exited");
    BOOST_TEST(sync_wait(registry.read_output("brief", 0)).data == "bye\n");
    bool code3 = false;
    for (auto& e : world.events.events())
        if (e.type == event_type::worker_exited) code3 = e.data.at("exit_code") == 3;
    BOOST_TEST(code3);
    // Its stopped container is removed too.
    BOOST_TEST(testing::eventually([&] { return sync_wait(registry.spawner().list_owned()).empty(); }));
}

BOOST_AUTO_TEST_CASE(after_a_daemon_killed_with_sigkill_one_janitor_sweep_leaves_no_orphan) {
    // A daemon on the memory store owns 10 containers and is killed: its
    // sessions die with it, its containers do not.
    const auto options = sleeper("killed");
    int ready[2];
    BOOST_REQUIRE(::pipe(ready) == 0);
    const pid_t daemon = ::fork();
    BOOST_REQUIRE(daemon >= 0);
    if (daemon == 0) {
        ::close(ready[0]);
        try {
            testing::io_threads io;
            memory_store store;
            basic_session_registry<memory_store, system_clock_policy, null_sink, docker_spawner> registry(
                store, {}, {}, {}, docker_spawner(io.executor(), options));
            for (int i = 0; i < 10; ++i) sync_wait(registry.acquire("doomed-" + std::to_string(i)));
            (void)!::write(ready[1], "ready\n", 6);
            ::pause();
        } catch (...) {}
        ::_exit(1);
    }
    ::close(ready[1]);
    char buf[8] = {};
    BOOST_REQUIRE(::read(ready[0], buf, sizeof buf) > 0);
    ::close(ready[0]);
    ::kill(daemon, SIGKILL);
    ::waitpid(daemon, nullptr, 0);

    testing::io_threads io;
    memory_store store;  // the restarted daemon: no sessions
    basic_session_registry<memory_store, system_clock_policy, null_sink, docker_spawner> registry(
        store, registry_options{.stop_grace = 1s}, {}, {}, docker_spawner(io.executor(), options));
    BOOST_TEST(sync_wait(registry.spawner().list_owned()).size() == 10u);
    janitor jan(registry, {.log = [](std::string_view) {}});
    auto report = sync_wait(jan.sweep_once());
    BOOST_TEST(report.reconciled);
    BOOST_TEST(report.orphans_removed == 10u);
    BOOST_TEST(sync_wait(registry.spawner().list_owned()).empty());
}

// A container this daemon does not watch (not attached: started by another
// daemon, or with attach off) is found dead by the janitor's reconciliation.
BOOST_AUTO_TEST_CASE(a_container_that_died_fails_its_session_and_is_removed) {
    docker_world world(unattached("died"), 1s);
    auto& registry = world.registry;
    auto s = sync_wait(registry.acquire("fragile")).record;
    sync_wait(registry.acquire("sturdy"));
    std::string target = "/containers/" + s.worker->id + "/kill";
    BOOST_TEST(sync_wait(registry.spawner().engine().request(http::verb::post, std::move(target))).status == 204u);
    janitor jan(registry, {.log = [](std::string_view) {}});
    auto report = sync_wait(jan.sweep_once());
    BOOST_TEST(report.workers_lost == 1u);
    BOOST_TEST(report.orphans_removed == 1u);  // its stopped container
    auto after = sync_wait(registry.get("fragile"));
    BOOST_TEST(to_string(after->status) == "failed");
    BOOST_TEST(after->end_reason == "worker_lost");
    BOOST_TEST(to_string(sync_wait(registry.get("sturdy"))->status) == "active");
    BOOST_TEST(sync_wait(registry.spawner().list_owned()).size() == 1u);
    BOOST_TEST(world.events.count(event_type::worker_exited) == 1u);
    sync_wait(registry.terminate("sturdy"));
}

// Several engines sharing one store: a worker names its engine (node), and
// a janitor judges only its own engine's containers. Another engine's are
// alive as far as this one knows; a missing one of its own is lost.
BOOST_AUTO_TEST_CASE(a_session_on_another_engine_is_left_to_that_engines_janitor) {
    docker_world world(unattached("engines"), 1s);
    auto& registry = world.registry;
    const std::string ours = sync_wait(registry.spawner().engine().engine_id());
    BOOST_REQUIRE(!ours.empty());
    auto here = sync_wait(registry.acquire("here")).record;
    BOOST_TEST(here.worker->node == ours);
    auto owned = sync_wait(registry.spawner().list_owned());
    BOOST_REQUIRE(owned.size() == 1u);
    BOOST_TEST(owned[0].worker.node == ours);

    // Records another daemon wrote: a container on its engine, and one it
    // says is on ours but that is not here.
    const auto now = std::chrono::system_clock::now();
    auto recorded = [&](std::string id, std::string node) {
        session s;
        s.id = std::move(id);
        s.status = session_status::active;
        s.created_at = s.last_active = now;
        s.idle_timeout = 1h;
        s.idle_deadline = now + 1h;
        s.worker = worker_ref{"docker", std::string(64, 'e'), std::move(node)};
        BOOST_REQUIRE(sync_wait(world.store.create(s)).created);
    };
    recorded("there", "OTHER:ENGINE:ID");
    recorded("lost", ours);
    BOOST_TEST(sync_wait(registry.spawner().alive(worker_ref{"docker", std::string(64, 'e'), "OTHER:ENGINE:ID"})));
    BOOST_TEST(!sync_wait(registry.spawner().alive(worker_ref{"docker", std::string(64, 'e'), ours})));

    janitor jan(registry, {.log = [](std::string_view) {}});
    auto report = sync_wait(jan.sweep_once());
    BOOST_TEST(report.workers_lost == 1u);
    BOOST_TEST(report.orphans_removed == 0u);
    BOOST_TEST(to_string(sync_wait(registry.get("there"))->status) == "active");
    BOOST_TEST(to_string(sync_wait(registry.get("lost"))->status) == "failed");
    BOOST_TEST(to_string(sync_wait(registry.get("here"))->status) == "active");

    // Ending the other engine's session here does not reach for its
    // container (that engine's janitor removes it as an orphan).
    auto ended = sync_wait(registry.terminate("there"));
    BOOST_REQUIRE(ended);
    BOOST_TEST(to_string(ended->status) == "terminated");
    sync_wait(registry.terminate("here"));
    BOOST_TEST(sync_wait(registry.spawner().list_owned()).empty());
}

BOOST_AUTO_TEST_SUITE_END()

// The spawner conformance suite: the programs it asks for, as commands in
// the harness's busybox image; each spawner gets a deployment of its own.
namespace {
struct docker_conformance_factory {
    using spawner_type = docker_spawner;
    static constexpr std::string_view expected_kind = "docker";
    std::unique_ptr<docker_spawner> make(boost::asio::any_io_executor executor, testing::worker_program program) {
        static std::atomic<int> made{0};
        auto o = sleeper("conf" + std::to_string(++made));
        switch (program) {
        case testing::worker_program::echo: o.command = {"cat"}; break;
        case testing::worker_program::exit_0: o.command = {"sh", "-c", "echo bye; sleep 1; exit 0"}; break;
        case testing::worker_program::exit_3: o.command = {"sh", "-c", "echo bye; sleep 1; exit 3"}; break;
        case testing::worker_program::ignore_sigterm:
            o.command = {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"};
            break;
        }
        return std::make_unique<docker_spawner>(std::move(executor), std::move(o));
    }
};
using docker_conformance_factories = std::tuple<docker_conformance_factory>;
}  // namespace

SESSIONKIT_SPAWNER_CONFORMANCE_SUITE(docker_spawner_conformance, docker_conformance_factories)

int main(int argc, char** argv) {
    if (!std::getenv("DOCKER_HOST") || !std::getenv("SESSIONKIT_TEST_IMAGE")) {
        if (std::getenv("CI")) {
            std::cerr << "FAIL: DOCKER_HOST or SESSIONKIT_TEST_IMAGE not set (the harness's dockerd was not started)\n";
            return 1;
        }
        std::cerr << "SKIP: DOCKER_HOST or SESSIONKIT_TEST_IMAGE not set (dockerd not installed, or unusable here)\n";
        return 77;
    }
    return boost::unit_test::unit_test_main([] { return true; }, argc, argv);
}
