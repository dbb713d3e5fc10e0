// sessionkit/testing/spawner_conformance.hpp — the spawner contract as one
// templated Boost.Test suite, which process_spawner and docker_spawner
// both pass and any other spawner can run unchanged.
//
// A factory says how to make the spawner, and what its workers run for
// each testing::worker_program (a command, an image's entry point, ...):
//
//   struct my_factory {
//       using spawner_type = my_spawner;
//       static constexpr std::string_view expected_kind = "mine";  // what kind() says
//       // A fresh spawner whose watches run on `executor`, and whose workers
//       // do what `program` says.
//       std::unique_ptr<my_spawner> make(boost::asio::any_io_executor executor,
//                                        sessionkit::testing::worker_program program);
//       // Optional: the session record spawn() gets (default: a fresh
//       // initializing session with that id, created now).
//       sessionkit::session make_session(std::string id);
//   };
//   using my_factories = std::tuple<my_factory>;  // a name: a macro argument holds no comma
//   SESSIONKIT_SPAWNER_CONFORMANCE_SUITE(my_spawner_conformance, my_factories)
//
// in one of the test program's sources (Boost.Test, with its main). The
// checks are function templates (sessionkit::testing::spawner_checks), so
// a test may also call one alone: spawner_checks::input_comes_back_as_output<my_factory>().
//
// Only what concepts.hpp promises is checked. Capabilities are checked when
// the spawner has them: exits and output for a watching_spawner, input for
// an input_spawner (its output is read back only when it also watches).
// Every check stops what it started, also when it fails (list_owned, then
// stop). Real workers take real time: limits are generous (seconds).
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/testing/detail/spawner_support.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/system_error.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sessionkit::testing::detail::spawner_support {

using namespace std::chrono_literals;

/// A worker no spawner ever made: stop, alive and send_input must cope.
inline worker_ref never_made(std::string_view kind) {
    return worker_ref{std::string(kind), "sessionkit-conformance-no-such-worker"};
}

/// Whether `op` fails with error::not_found (any other outcome: false,
/// with a message saying which).
template <class Op>
bool fails_not_found(Op op) {
    try {
        sync_wait(op());
    } catch (const boost::system::system_error& e) {
        BOOST_TEST_MESSAGE("failed with: " << e.what());
        return e.code() == make_error_code(error::not_found);
    }
    BOOST_TEST_MESSAGE("succeeded");
    return false;
}

}  // namespace sessionkit::testing::detail::spawner_support

namespace sessionkit::testing::spawner_checks {

using namespace std::chrono_literals;
using namespace sessionkit::testing::detail::spawner_support;

template <class F>
void kind_names_the_spawner_and_its_workers() {
    static_assert(spawner<typename F::spawner_type>);
    world<F> w(worker_program::echo);
    BOOST_TEST(std::string_view(w.spawner->kind()) == F::expected_kind);
    std::string id;
    const auto worker = w.spawn("kind", id);
    BOOST_TEST(worker.kind == std::string_view(w.spawner->kind()));
    BOOST_TEST(!worker.id.empty());
}

template <class F>
void a_spawned_worker_is_alive_and_listed_with_its_session() {
    world<F> w(worker_program::echo);
    std::string id;
    const auto worker = w.spawn("alive", id);
    BOOST_TEST(sync_wait(w.spawner->alive(worker)));
    const auto owned = sync_wait(w.spawner->list_owned());
    bool listed = false;
    for (const auto& o : owned)
        if (o.worker.id == worker.id) {
            listed = true;
            BOOST_TEST(o.session_id == id);
            BOOST_TEST(o.running);
            BOOST_TEST(o.worker.kind == worker.kind);
        }
    BOOST_TEST(listed, "list_owned does not list worker " << worker.id);
}

template <class F>
void two_sessions_get_two_workers_that_stop_apart() {
    world<F> w(worker_program::echo);
    std::string id_a, id_b;
    const auto a = w.spawn("pair-a", id_a);
    const auto b = w.spawn("pair-b", id_b);
    BOOST_TEST(a.id != b.id);
    sync_wait(w.spawner->stop(a, 10s));
    BOOST_TEST(!sync_wait(w.spawner->alive(a)));
    BOOST_TEST(sync_wait(w.spawner->alive(b)));
}

template <class F>
void stop_ends_a_worker_that_heeds_sigterm_without_waiting_for_the_grace() {
    world<F> w(worker_program::echo);
    std::string id;
    const auto worker = w.spawn("polite", id);
    const auto grace = 10s;
    const auto started = std::chrono::steady_clock::now();
    sync_wait(w.spawner->stop(worker, grace));
    const auto took = std::chrono::steady_clock::now() - started;
    BOOST_TEST((took < grace), "stop took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                            << " ms: it waited for the grace");
    BOOST_TEST(!sync_wait(w.spawner->alive(worker)));
    BOOST_TEST(eventually([&] { return !w.lists(worker); }, 10s), "a stopped worker is still listed");
}

template <class F>
void stop_forces_a_worker_that_ignores_sigterm_once_the_grace_is_over() {
    using S = typename F::spawner_type;
    world<F> w(worker_program::ignore_sigterm);
    std::string id;
    const auto worker = w.spawn("stubborn", id);
    // SIGTERM must be ignored before stop sends it.
    if constexpr (watching_spawner<S>)
        BOOST_REQUIRE(eventually([&] { return w.reported->output_of(id) == "ready\n"; }, 15s));
    else
        std::this_thread::sleep_for(1s);
    const auto grace = 1s;
    const auto started = std::chrono::steady_clock::now();
    sync_wait(w.spawner->stop(worker, grace));
    const auto took = std::chrono::steady_clock::now() - started;
    BOOST_TEST((took >= grace), "stop forced the worker before its grace was over");
    BOOST_TEST((took < grace + 15s),
               "stop took " << std::chrono::duration_cast<std::chrono::seconds>(took).count() << " s");
    BOOST_TEST(!sync_wait(w.spawner->alive(worker)));
}

template <class F>
void stopping_a_worker_that_is_gone_succeeds() {
    world<F> w(worker_program::echo);
    std::string id;
    const auto worker = w.spawn("twice", id);
    sync_wait(w.spawner->stop(worker, 5s));
    sync_wait(w.spawner->stop(worker, 5s));  // again: gone already
    const auto never = never_made(w.spawner->kind());
    sync_wait(w.spawner->stop(never, 1s));
    BOOST_TEST(!sync_wait(w.spawner->alive(never)));
}

template <class F>
void an_exit_is_reported_once_with_its_code_after_its_output() {
    using S = typename F::spawner_type;
    world<F> w(worker_program::exit_3);
    std::string id;
    const auto worker = w.spawn("exit3", id);
    BOOST_TEST(eventually([&] { return !sync_wait(w.spawner->alive(worker)); }, 15s),
               "a worker that exited is still alive");
    if constexpr (watching_spawner<S>) {
        BOOST_REQUIRE(eventually([&] { return !w.reported->exits_of(id).empty(); }, 15s));
        std::this_thread::sleep_for(300ms);  // time for a second, wrong report
        const auto exits = w.reported->exits_of(id);
        BOOST_REQUIRE(exits.size() == 1u);
        BOOST_TEST(exits[0].worker.id == worker.id);
        BOOST_TEST(exits[0].worker.kind == worker.kind);
        BOOST_TEST(exits[0].how.exit_code == 3);
        BOOST_TEST(exits[0].how.signal == 0);
        BOOST_TEST(!exits[0].how.success());
        BOOST_TEST(exits[0].output_before == "bye\n", "output before the exit: '" << exits[0].output_before << "'");
    } else {
        BOOST_TEST_MESSAGE("not a watching_spawner: no exit report to check");
    }
}

template <class F>
void a_clean_exit_is_reported_as_success() {
    using S = typename F::spawner_type;
    if constexpr (watching_spawner<S>) {
        world<F> w(worker_program::exit_0);
        std::string id;
        const auto worker = w.spawn("exit0", id);
        BOOST_REQUIRE(eventually([&] { return !w.reported->exits_of(id).empty(); }, 15s));
        const auto exits = w.reported->exits_of(id);
        BOOST_TEST(exits[0].worker.id == worker.id);
        BOOST_TEST(exits[0].how.exit_code == 0);
        BOOST_TEST(exits[0].how.success());
    } else {
        BOOST_TEST_MESSAGE("not a watching_spawner: no exit report to check");
    }
}

template <class F>
void a_stopped_worker_is_not_reported_as_exited() {
    using S = typename F::spawner_type;
    if constexpr (watching_spawner<S>) {
        world<F> w(worker_program::echo);
        std::string id;
        const auto worker = w.spawn("stopped", id);
        sync_wait(w.spawner->stop(worker, 10s));
        std::this_thread::sleep_for(500ms);  // time for a wrong report
        BOOST_TEST(w.reported->exits_of(id).empty(), "the end of a stopped worker was reported as its own exit");
    } else {
        BOOST_TEST_MESSAGE("not a watching_spawner: no exit report to check");
    }
}

template <class F>
void input_comes_back_as_output() {
    using S = typename F::spawner_type;
    if constexpr (input_spawner<S> && watching_spawner<S>) {
        world<F> w(worker_program::echo);
        std::string id;
        const auto worker = w.spawn("echo", id);
        sync_wait(w.spawner->send_input(worker, "hello\n"));
        sync_wait(w.spawner->send_input(worker, std::string("bin\0ary\n", 8)));
        const std::string expected("hello\nbin\0ary\n", 14);
        BOOST_TEST(eventually([&] { return w.reported->output_of(id) == expected; }, 15s),
                   "output: '" << w.reported->output_of(id) << "'");
    } else {
        BOOST_TEST_MESSAGE("not an input_spawner that watches: no input to read back");
    }
}

template <class F>
void concurrent_inputs_reach_the_worker_whole() {
    using S = typename F::spawner_type;
    if constexpr (input_spawner<S> && watching_spawner<S>) {
        world<F> w(worker_program::echo);
        std::string id;
        const auto worker = w.spawn("chorus", id);
        // 8 writes of 32 KiB at once from two threads: each must arrive in one piece.
        constexpr std::size_t each = 32 * 1024;
        // send_input takes a view and may read it after it suspends: the
        // bytes live here until every write is done.
        std::vector<std::string> writes;
        for (int i = 0; i < 8; ++i) writes.emplace_back(each, static_cast<char>('A' + i));
        boost::asio::io_context ctx;
        for (const auto& bytes : writes)
            boost::asio::co_spawn(ctx, w.spawner->send_input(worker, bytes), boost::asio::detached);
        std::thread helper([&ctx] { ctx.run(); });
        ctx.run();
        helper.join();
        BOOST_REQUIRE(eventually([&] { return w.reported->output_of(id).size() == 8 * each; }, 20s));
        const std::string all = w.reported->output_of(id);
        for (std::size_t at = 0; at < all.size(); at += each)
            BOOST_TEST(all.find_first_not_of(all[at], at) >= at + each, "the write at " << at << " was split");
    } else {
        BOOST_TEST_MESSAGE("not an input_spawner that watches: no input to read back");
    }
}

template <class F>
void input_to_a_worker_that_is_gone_is_not_found() {
    using S = typename F::spawner_type;
    if constexpr (input_spawner<S>) {
        world<F> w(worker_program::echo);
        const auto never = never_made(w.spawner->kind());
        BOOST_TEST(fails_not_found([&] { return w.spawner->send_input(never, "x"); }));
        std::string id;
        const auto worker = w.spawn("gone", id);
        sync_wait(w.spawner->stop(worker, 10s));
        // A write may still be taken while the spawner learns that its end
        // closed; once it fails, it fails with not_found.
        bool refused = false;
        for (int attempt = 0; attempt < 100 && !refused; ++attempt) {
            try {
                sync_wait(w.spawner->send_input(worker, "x"));
                std::this_thread::sleep_for(50ms);
            } catch (const boost::system::system_error& e) {
                BOOST_TEST(e.code() == make_error_code(error::not_found), e.what());
                refused = true;
            }
        }
        BOOST_TEST(refused, "input to a stopped worker is still taken after 5 s");
    } else {
        BOOST_TEST_MESSAGE("not an input_spawner: no input to check");
    }
}

}  // namespace sessionkit::testing::spawner_checks

/// Registers the suite `suite_name`: every check, once per factory in
/// `factories` (a std::tuple type, named by an alias).
#define SESSIONKIT_SPAWNER_CONFORMANCE_SUITE(suite_name, factories)                                                    \
    BOOST_AUTO_TEST_SUITE(suite_name)                                                                                  \
    BOOST_AUTO_TEST_CASE_TEMPLATE(kind_names_the_spawner_and_its_workers, F, factories) {                              \
        ::sessionkit::testing::spawner_checks::kind_names_the_spawner_and_its_workers<F>();                            \
    }                                                                                                                  \
    BOOST_AUTO_TEST_CASE_TEMPLATE(a_spawned_worker_is_alive_and_listed_with_its_session, F, factories) {               \
        ::sessionkit::testing::spawner_checks::a_spawned_worker_is_alive_and_listed_with_its_session<F>();             \
    }                                                                                                                  \
    BOOST_AUTO_TEST_CASE_TEMPLATE(two_sessions_get_two_workers_that_stop_apart, F, factories) {                        \
        ::sessionkit::testing::spawner_checks::two_sessions_get_two_workers_that_stop_apart<F>();                      \
    }                                                                                                                  \
    BOOST_AUTO_TEST_CASE_TEMPLATE(stop_ends_a_worker_that_heeds_sigterm_without_waiting_for_the_grace, F, factories) { \
        ::sessionkit::testing::spawner_checks::stop_ends_a_worker_that_heeds_sigterm_without_waiting_for_the_grace<    \
            F>();                                                                                                      \
    }                                                                                                                  \
    BOOST_AUTO_TEST_CASE_TEMPLATE(stop_forces_a_worker_that_ignores_sigterm_once_the_grace_is_over, F, factories) {    \
        ::sessionkit::testing::spawner_checks::stop_forces_a_worker_that_ignores_sigterm_once_the_grace_is_over<F>();  \
    }                                                                                                                  \
    BOOST_AUTO_TEST_CASE_TEMPLATE(stopping_a_worker_that_is_gone_succeeds, F, factories) {                             \
        ::sessionkit::testing::spawner_checks::stopping_a_worker_that_is_gone_succeeds<F>();                           \
    }                                                                                                                  \
    BOOST_AUTO_TEST_CASE_TEMPLATE(an_exit_is_reported_once_with_its_code_after_its_output, F, factories) {             \
        ::sessionkit::testing::spawner_checks::an_exit_is_reported_once_with_its_code_after_its_output<F>();           \
    }                                                                                                                  \
    BOOST_AUTO_TEST_CASE_TEMPLATE(a_clean_exit_is_reported_as_success, F, factories) {                                 \
        ::sessionkit::testing::spawner_checks::a_clean_exit_is_reported_as_success<F>();                               \
    }                                                                                                                  \
    BOOST_AUTO_TEST_CASE_TEMPLATE(a_stopped_worker_is_not_reported_as_exited, F, factories) {                          \
        ::sessionkit::testing::spawner_checks::a_stopped_worker_is_not_reported_as_exited<F>();                        \
    }                                                                                                                  \
    BOOST_AUTO_TEST_CASE_TEMPLATE(input_comes_back_as_output, F, factories) {                                          \
        ::sessionkit::testing::spawner_checks::input_comes_back_as_output<F>();                                        \
    }                                                                                                                  \
    BOOST_AUTO_TEST_CASE_TEMPLATE(concurrent_inputs_reach_the_worker_whole, F, factories) {                            \
        ::sessionkit::testing::spawner_checks::concurrent_inputs_reach_the_worker_whole<F>();                          \
    }                                                                                                                  \
    BOOST_AUTO_TEST_CASE_TEMPLATE(input_to_a_worker_that_is_gone_is_not_found, F, factories) {                         \
        ::sessionkit::testing::spawner_checks::input_to_a_worker_that_is_gone_is_not_found<F>();                       \
    }                                                                                                                  \
    BOOST_AUTO_TEST_SUITE_END()
