// bench/spawners_bench.cpp — how long a session takes to get its worker.
//
//   spawners_bench [--rounds N]    (DOCKER_HOST and SESSIONKIT_TEST_IMAGE: see bench/run)
//
// Cases (doc/benchmarks.md):
//   acquire_vs_engine_floor  registry.acquire (memory store, docker_spawner)
//                          until the container runs, against the engine's own
//                          create + start of the same image and command (raw
//                          API, no hardening, attach or check: what no acquire
//                          can go below), rounds alternating; medians.
//   acquire_vs_docker_run, engine_floor_vs_docker_run  both against
//                          `docker run -d` through the CLI in the same rounds
//                          (for the record, no target).
//   process_spawn          process_spawner.spawn of `cat` until it has exec'd (ms).
//   process_acquire        registry.acquire with process_spawner (ms).
#include <sessionkit/sessionkit.hpp>
#include <sessionkit/spawner/docker.hpp>
#include <sessionkit/spawner/process.hpp>

#include "bench_format.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

using namespace sessionkit;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view bench_name = "spawners";

/// An io_context on its own thread: spawners watch and call the engine there.
struct io_thread {
    boost::asio::io_context ctx;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{ctx.get_executor()};
    std::thread thread{[this] { ctx.run(); }};
    ~io_thread() {
        guard.reset();
        ctx.stop();
        thread.join();
    }
};

template <class T>
T wait(boost::asio::io_context& ctx, awaitable<T> op) {
    return boost::asio::co_spawn(ctx, std::move(op), boost::asio::use_future).get();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

double ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

/// Runs the docker CLI with `args`; returns its stdout. Throws if it fails.
std::string docker_cli(const std::vector<std::string>& args) {
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    std::vector<char*> argv;
    std::vector<std::string> all{"docker"};
    all.insert(all.end(), args.begin(), args.end());
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, "docker", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (rc != 0) {
        ::close(out[0]);
        throw std::runtime_error("cannot run the docker CLI");
    }
    std::string text;
    char buf[512];
    for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("docker " + args.front() + " failed");
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
}

/// The engine's create + start of what the CLI runs, through the raw API
/// and nothing else; the container's id (removed by the caller, untimed).
awaitable<std::string> engine_create_start(docker::client& engine, std::string image) {
    namespace http = boost::beast::http;
    std::string create = "/containers/create";
    std::optional<boost::json::value> body =
        boost::json::object{{"Image", image},
                            {"Cmd", boost::json::array{"sleep", "1000"}},
                            {"HostConfig", boost::json::object{{"NetworkMode", "none"}}}};
    auto made = co_await engine.request(http::verb::post, std::move(create), std::move(body));
    if (made.status != 201) throw std::runtime_error("create: " + made.message());
    const std::string id(made.json("create").as_object().at("Id").as_string());
    std::string start = "/containers/" + id + "/start";
    auto started = co_await engine.request(http::verb::post, std::move(start));
    if (!started.ok()) throw std::runtime_error("start: " + started.message());
    co_return id;
}

awaitable<void> engine_remove(docker::client& engine, std::string id) {
    std::string target = "/containers/" + id + "?force=true";
    co_await engine.request(boost::beast::http::verb::delete_, std::move(target));
}

/// Median ms of `rounds` acquires (each terminated, untimed) through a
/// registry whose docker_spawner has options `o`.
double docker_acquire_median(io_thread& io, const docker_options& o, int rounds, std::vector<double>* each = nullptr) {
    memory_store store;
    basic_session_registry<memory_store, system_clock_policy, null_sink, docker_spawner> registry(
        store, registry_options{.stop_grace = 1s}, {}, {}, docker_spawner(io.ctx.get_executor(), o));
    std::vector<double> ms;
    for (int i = 0; i < rounds; ++i) {
        const std::string id = "bench-" + std::to_string(i);
        auto t = std::chrono::steady_clock::now();
        auto got = wait(io.ctx, registry.acquire(id));
        ms.push_back(ms_since(t));
        if (!got.record.worker) throw std::runtime_error("acquire returned no worker");
        wait(io.ctx, registry.terminate(id));
    }
    if (each) *each = ms;
    return median(ms);
}

void docker_case(int rounds) {
    const char* image = std::getenv("SESSIONKIT_TEST_IMAGE");
    if (!image || !std::getenv("DOCKER_HOST"))
        throw std::runtime_error("set DOCKER_HOST and SESSIONKIT_TEST_IMAGE (bench/run starts a dockerd)");
    io_thread io;
    docker_options o;
    o.image = image;
    o.command = {"sleep", "1000"};
    o.deployment = "bench" + std::to_string(::getpid());
    memory_store store;
    basic_session_registry<memory_store, system_clock_policy, null_sink, docker_spawner> registry(
        store, registry_options{.stop_grace = 1s}, {}, {}, docker_spawner(io.ctx.get_executor(), o));

    // One of each first, untimed: image layers and the engine warm up.
    wait(io.ctx, registry.acquire("warm"));
    wait(io.ctx, registry.terminate("warm"));
    docker_cli({"rm", "-f", docker_cli({"run", "-d", "--network", "none", image, "sleep", "1000"})});

    std::vector<double> ours, cli, floor;
    auto& engine = registry.spawner().engine();
    for (int i = 0; i < rounds; ++i) {
        const std::string id = "bench-" + std::to_string(i);
        auto t = std::chrono::steady_clock::now();
        auto got = wait(io.ctx, registry.acquire(id));
        ours.push_back(ms_since(t));
        if (!got.record.worker) throw std::runtime_error("acquire returned no worker");
        wait(io.ctx, registry.terminate(id));

        t = std::chrono::steady_clock::now();
        const std::string container = docker_cli({"run", "-d", "--network", "none", image, "sleep", "1000"});
        cli.push_back(ms_since(t));
        docker_cli({"rm", "-f", container});

        t = std::chrono::steady_clock::now();
        const std::string raw = wait(io.ctx, engine_create_start(engine, image));
        floor.push_back(ms_since(t));
        wait(io.ctx, engine_remove(engine, raw));
    }
    bench::value(bench_name, "acquire_docker_ms", median(ours), "ms");
    bench::value(bench_name, "docker_run_cli_ms", median(cli), "ms");
    // The target: our acquire (hardened, attached, checked) against the
    // engine's own create + start of the same image and command, timed in
    // the same alternating rounds. The engine is the floor: no acquire
    // that creates and starts a container goes below it.
    bench::value(bench_name, "engine_create_start_ms", median(floor), "ms");
    bench::ratio(bench_name, "acquire_vs_engine_floor", median(ours) / median(floor),
                 "raw POST create + start of the same image and command (the engine's floor), median of " +
                     std::to_string(rounds) + " alternating rounds",
                 "<= 1.05");
    // For the record: both against the CLI's docker run -d.
    bench::ratio(bench_name, "acquire_vs_docker_run", median(ours) / median(cli),
                 "docker run -d --network none <image> sleep 1000 (CLI, same engine), same rounds", "");
    bench::ratio(bench_name, "engine_floor_vs_docker_run", median(floor) / median(cli),
                 "the same docker run -d rounds; raw POST create + start of the same image and command", "");
    // For the analysis: the same without the attach stream (no I/O wiring).
    auto plain = o;
    plain.attach = false;
    plain.deployment += "-noattach";
    bench::value(bench_name, "acquire_docker_unattached_ms", docker_acquire_median(io, plain, rounds), "ms");
}

void process_case(int rounds) {
    io_thread io;
    process_options o;
    o.command = "cat";
    process_spawner spawner(io.ctx.get_executor(), o);
    std::vector<double> spawn_ms;
    std::vector<worker_ref> workers;
    for (int i = 0; i < rounds; ++i) {
        session s;
        s.id = "p" + std::to_string(i);
        auto t = std::chrono::steady_clock::now();
        auto w = wait(io.ctx, spawner.spawn(s));
        spawn_ms.push_back(ms_since(t));
        workers.push_back(*w);
    }
    for (auto& w : workers) wait(io.ctx, spawner.stop(w, 1s));
    bench::value(bench_name, "process_spawn", median(spawn_ms), "ms");
    bench::value(bench_name, "process_spawn_p99", percentile(spawn_ms, 0.99), "ms");

    memory_store store;
    basic_session_registry<memory_store, system_clock_policy, null_sink, process_spawner> registry(
        store, registry_options{.stop_grace = 1s}, {}, {}, process_spawner(io.ctx.get_executor(), o));
    std::vector<double> acquire_ms;
    for (int i = 0; i < rounds; ++i) {
        const std::string id = "a" + std::to_string(i);
        auto t = std::chrono::steady_clock::now();
        wait(io.ctx, registry.acquire(id));
        acquire_ms.push_back(ms_since(t));
    }
    for (int i = 0; i < rounds; ++i) wait(io.ctx, registry.terminate("a" + std::to_string(i)));
    bench::value(bench_name, "process_acquire", median(acquire_ms), "ms");
}

}  // namespace

int main(int argc, char** argv) {
    int rounds = 20;
    bool docker = true;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--rounds" && i + 1 < argc)
            rounds = std::atoi(argv[++i]);
        else if (a == "--no-docker")
            docker = false;
        else {
            std::cerr << "usage: spawners_bench [--rounds N] [--no-docker]\n";
            return 2;
        }
    }
    if (rounds < 1) {
        std::cerr << "spawners_bench: --rounds must be at least 1\n";
        return 2;
    }
    try {
        process_case(rounds * 10);
        if (docker) docker_case(rounds);
    } catch (const std::exception& e) {
        std::cerr << "spawners_bench: " << e.what() << '\n';
        return 1;
    }
}
