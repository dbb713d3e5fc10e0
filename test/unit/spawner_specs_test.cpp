// The spawners' decisions without I/O: the Docker container spec (name,
// labels, create body, taken-name decision, stop timeout), the engine's
// answers read back, the Engine API version choice, the /proc/<pid>/stat
// parser and the process worker id judgement.
#include <sessionkit/docker/api_version.hpp>
#include <sessionkit/spawner/detail/process_worker_id.hpp>
#include <sessionkit/spawner/docker/replies.hpp>
#include <sessionkit/spawner/docker/spec.hpp>
#include <sessionkit/spawner/process/proc_stat.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <map>
#include <optional>
#include <string>

using namespace sessionkit;
using namespace std::chrono_literals;

namespace {

docker_options options_for_tests() {
    docker_options o;
    o.image = "img";
    o.engine.host = "unix:///x.sock";
    return o;
}

docker::container_labels labels_s1(std::string deployment = "default") {
    return {"s:1", std::move(deployment), "1700000000000"};
}

boost::json::object parsed(std::string_view text) { return boost::json::parse(text).as_object(); }

}  // namespace

BOOST_AUTO_TEST_SUITE(docker_spec)

BOOST_AUTO_TEST_CASE(container_names_keep_their_format_and_hash) {
    // Restarted daemons find their containers by these names: they must
    // never change (values from the names given before the spec moved).
    BOOST_TEST(docker::container_name("default", "alice") == "sk-default-alice-aa92c3cca816cda5");
    BOOST_TEST(docker::container_name("prod", "team:a:b") == "sk-prod-team_a_b-c2da2f6891baf51b");
    // The empty id hashes to the (non-standard) offset basis itself.
    BOOST_TEST(docker::container_name("d", "") == "sk-d--14650fb0739d0383");
    // Long parts are cut (40 and 60 characters); the hash tells them apart.
    BOOST_TEST(docker::container_name(std::string(45, 'd'), std::string(70, 's')) ==
               "sk-" + std::string(40, 'd') + "-" + std::string(60, 's') + "-814d68b391e70ded");
    BOOST_TEST(docker::container_name("d", std::string(70, 's')) != docker::container_name("d", std::string(71, 's')));
}

BOOST_AUTO_TEST_CASE(labels_name_the_session_deployment_and_creation_time) {
    auto o = options_for_tests();
    o.deployment = "prod";
    session rec;
    rec.id = "s:1";
    rec.created_at = from_unix_ms(1'700'000'000'123);
    const auto l = docker::labels_for(o, rec);
    BOOST_TEST(l.session == "s:1");
    BOOST_TEST(l.deployment == "prod");
    BOOST_TEST(l.created_at == "1700000000123");
    BOOST_TEST(
        boost::json::serialize(docker::labels_json(l)) ==
        R"({"sessionkit.session":"s:1","sessionkit.deployment":"prod","sessionkit.created_at":"1700000000123"})");
}

BOOST_AUTO_TEST_CASE(the_create_body_is_hardened_by_default) {
    const auto body = docker::create_body(options_for_tests(), labels_s1());
    BOOST_TEST(body.at("Image") == "img");
    BOOST_TEST(body.at("Env") == (boost::json::array{"SESSIONKIT_SESSION_ID=s:1", "SESSIONKIT_DEPLOYMENT=default"}));
    BOOST_TEST(body.at("Labels").at("sessionkit.session") == "s:1");
    BOOST_TEST(body.at("OpenStdin") == true);
    BOOST_TEST(body.at("AttachStdin") == true);
    BOOST_TEST(body.at("Tty") == false);
    BOOST_TEST(!body.contains("Cmd"));  // the image's own
    const auto& host = body.at("HostConfig").as_object();
    BOOST_TEST(host.at("NetworkMode") == "none");
    BOOST_TEST(host.at("Privileged") == false);
    BOOST_TEST(host.at("SecurityOpt") == (boost::json::array{"no-new-privileges"}));
    BOOST_TEST(host.at("Init") == true);
    BOOST_TEST(host.at("Memory") == 512LL << 20);
    BOOST_TEST(host.at("MemorySwap") == 512LL << 20);
    BOOST_TEST(host.at("NanoCpus") == 1'000'000'000);
    BOOST_TEST(host.at("PidsLimit") == 256);
    BOOST_TEST(host.at("CapDrop") == (boost::json::array{"ALL"}));
    BOOST_TEST(host.at("RestartPolicy").at("Name") == "no");
    // Exactly what the engine received before the spec moved, field order included.
    BOOST_TEST(
        boost::json::serialize(body) ==
        R"({"Image":"img","Env":["SESSIONKIT_SESSION_ID=s:1","SESSIONKIT_DEPLOYMENT=default"],)"
        R"("Labels":{"sessionkit.session":"s:1","sessionkit.deployment":"default","sessionkit.created_at":"1700000000000"},)"
        R"("Tty":false,"OpenStdin":true,"StdinOnce":false,"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,)"
        R"("HostConfig":{"NetworkMode":"none","Privileged":false,"ReadonlyRootfs":false,"SecurityOpt":["no-new-privileges"],)"
        R"("Init":true,"AutoRemove":false,"RestartPolicy":{"Name":"no"},"Memory":536870912,"MemorySwap":536870912,)"
        R"("NanoCpus":1000000000,"PidsLimit":256,"CapDrop":["ALL"]}})");
}

BOOST_AUTO_TEST_CASE(loosened_options_show_in_the_create_body) {
    auto o = options_for_tests();
    o.command = {"sh", "-c", "x"};
    o.environment = {{"B", "2"}, {"A", "1"}};
    o.memory_bytes = 0;
    o.cpus = 0.5;
    o.pids_limit = 0;
    o.network = "net";
    o.read_only_root = true;
    o.drop_all_capabilities = false;
    o.attach = false;
    o.deployment = "prod";
    const auto body = docker::create_body(o, labels_s1("prod"));
    BOOST_TEST(
        boost::json::serialize(body) ==
        R"({"Image":"img","Env":["A=1","B=2","SESSIONKIT_SESSION_ID=s:1","SESSIONKIT_DEPLOYMENT=prod"],)"
        R"("Labels":{"sessionkit.session":"s:1","sessionkit.deployment":"prod","sessionkit.created_at":"1700000000000"},)"
        R"("Tty":false,"OpenStdin":false,"StdinOnce":false,"AttachStdin":false,"AttachStdout":false,"AttachStderr":false,)"
        R"("HostConfig":{"NetworkMode":"net","Privileged":false,"ReadonlyRootfs":true,"SecurityOpt":["no-new-privileges"],)"
        R"("Init":true,"AutoRemove":false,"RestartPolicy":{"Name":"no"},"NanoCpus":500000000},"Cmd":["sh","-c","x"]})");
}

BOOST_AUTO_TEST_CASE(a_taken_name_is_adopted_replaced_or_refused_by_its_labels) {
    using docker::taken_name_action;
    const docker::container_labels wanted{"s:1", "prod", "100"};
    BOOST_TEST((docker::on_taken_name({"s:1", "prod", "100"}, wanted) == taken_name_action::adopt));
    BOOST_TEST((docker::on_taken_name({"s:1", "prod", "99"}, wanted) == taken_name_action::replace));
    BOOST_TEST((docker::on_taken_name({"s:2", "prod", "100"}, wanted) == taken_name_action::refuse));
    BOOST_TEST((docker::on_taken_name({"s:1", "dev", "100"}, wanted) == taken_name_action::refuse));
    BOOST_TEST((docker::on_taken_name({}, wanted) == taken_name_action::refuse));  // no labels: not ours
}

BOOST_AUTO_TEST_CASE(the_stop_timeout_rounds_the_grace_up_to_whole_seconds) {
    BOOST_TEST(docker::stop_seconds(0ms) == 0);
    BOOST_TEST(docker::stop_seconds(-5s) == 0);
    BOOST_TEST(docker::stop_seconds(1ms) == 1);
    BOOST_TEST(docker::stop_seconds(1000ms) == 1);
    BOOST_TEST(docker::stop_seconds(1001ms) == 2);
    BOOST_TEST(docker::stop_seconds(30s) == 30);
}

BOOST_AUTO_TEST_CASE(the_list_filter_names_the_deployment_label) {
    BOOST_TEST(docker::deployment_filter("prod") == R"({"label":["sessionkit.deployment=prod"]})");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(docker_replies)

BOOST_AUTO_TEST_CASE(labels_and_running_are_read_from_an_inspect) {
    const auto c = parsed(R"({"Id":"abc","State":{"Running":true,"Status":"running"},
        "Config":{"Labels":{"sessionkit.session":"s:1","sessionkit.deployment":"prod","sessionkit.created_at":"7","x":"y"}}})");
    BOOST_TEST((docker::labels_of(c) == docker::container_labels{"s:1", "prod", "7"}));
    BOOST_TEST(docker::is_running(c));
    BOOST_TEST(!docker::is_running(parsed(R"({"State":{"Running":false}})")));
    BOOST_TEST(!docker::is_running(parsed(R"({"State":{"Running":"yes"}})")));
    BOOST_TEST(!docker::is_running(parsed(R"({})")));
    BOOST_TEST((docker::labels_of(parsed(R"({"Config":{"Labels":null}})")) == docker::container_labels{}));
    BOOST_TEST(
        (docker::labels_of(parsed(R"({"Config":{"Labels":{"sessionkit.session":5}}})")) == docker::container_labels{}));
}

BOOST_AUTO_TEST_CASE(a_starting_container_is_running_starting_or_ended_with_why) {
    using docker::start_progress;
    BOOST_TEST(docker::start_progress_of(parsed(R"({"State":{"Status":"running"}})")).phase == start_progress::running);
    const auto created = docker::start_progress_of(parsed(R"({"State":{"Status":"created"}})"));
    BOOST_TEST(created.phase == start_progress::starting);
    BOOST_TEST(created.status == "created");
    BOOST_TEST(docker::start_progress_of(parsed(R"({})")).phase == start_progress::starting);
    const auto oom = docker::start_progress_of(
        parsed(R"({"State":{"Status":"exited","ExitCode":137,"OOMKilled":true,"Error":"boom"}})"));
    BOOST_TEST(oom.phase == start_progress::ended);
    BOOST_TEST(oom.why == "exited at once with code 137 (killed: out of memory): boom");
    const auto dead = docker::start_progress_of(parsed(R"({"State":{"Status":"dead"}})"));
    BOOST_TEST(dead.phase == start_progress::ended);
    BOOST_TEST(dead.why == "exited at once");
}

BOOST_AUTO_TEST_CASE(a_wait_answer_gives_the_exit_code) {
    const auto how = docker::exit_of_wait(boost::json::parse(R"({"StatusCode":3,"Error":null})"));
    BOOST_REQUIRE(how);
    BOOST_TEST(how->exit_code == 3);
    BOOST_TEST(how->signal == 0);
    BOOST_TEST(!docker::exit_of_wait(boost::json::parse(R"({"StatusCode":"3"})")));
    BOOST_TEST(!docker::exit_of_wait(boost::json::parse(R"([])")));
}

BOOST_AUTO_TEST_CASE(a_container_list_names_each_worker_its_session_and_state) {
    const auto owned = docker::owned_of(boost::json::parse(R"([
        {"Id":"a1","State":"running","Labels":{"sessionkit.session":"s:1"}},
        {"Id":"b2","State":"exited","Labels":{}},
        7])"),
                                        "ENGINE");
    BOOST_REQUIRE(owned.size() == 2u);
    BOOST_TEST(owned[0].worker.kind == "docker");
    BOOST_TEST(owned[0].worker.id == "a1");
    BOOST_TEST(owned[0].worker.node == "ENGINE");
    BOOST_TEST(owned[0].session_id == "s:1");
    BOOST_TEST(owned[0].running);
    BOOST_TEST(owned[1].session_id.empty());
    BOOST_TEST(!owned[1].running);
    BOOST_CHECK_THROW(docker::owned_of(boost::json::parse(R"({"message":"no"})"), "E"), boost::system::system_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(docker_api_version)

BOOST_AUTO_TEST_CASE(versions_compare_part_by_part_as_numbers) {
    BOOST_TEST(docker::version_less("1.40", "1.41"));
    BOOST_TEST(!docker::version_less("1.41", "1.41"));
    BOOST_TEST(!docker::version_less("1.41", "1.40"));
    BOOST_TEST(docker::version_less("1.9", "1.41"));    // not as text
    BOOST_TEST(docker::version_less("1.41", "1.100"));  // not as text
    BOOST_TEST(docker::version_less("1.41", "2.0"));
    BOOST_TEST(!docker::version_less("1", "1.0"));  // a missing part is 0
    BOOST_TEST(!docker::version_less("1.0", "1"));
    BOOST_TEST(docker::version_less("1", "1.1"));
    BOOST_TEST(docker::version_less("", "1.41"));
    BOOST_TEST(!docker::version_less("", ""));
}

BOOST_AUTO_TEST_CASE(the_version_chosen_is_ours_unless_the_engine_no_longer_takes_it) {
    BOOST_TEST(docker::choose_api_version("1.41", "", "h") == "1.41");
    BOOST_TEST(docker::choose_api_version("1.45", "1.24", "h") == "1.41");
    BOOST_TEST(docker::choose_api_version("1.52", "1.44", "h") == "1.44");  // Engine 29
    BOOST_TEST(docker::choose_api_version("1.100", "1.41", "h") == "1.41");
    try {
        docker::choose_api_version("1.40", "1.12", "unix:///d.sock");
        BOOST_FAIL("expected backend_unavailable");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(error::backend_unavailable));
        const std::string what = e.what();
        BOOST_TEST(what.find("1.40") != std::string::npos, what);
        BOOST_TEST(what.find("1.41") != std::string::npos, what);
        BOOST_TEST(what.find("unix:///d.sock") != std::string::npos, what);
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(proc_stat)

// A real line (a shell's), fields 1 to 52.
constexpr std::string_view sh_line =
    "4242 (sh) S 4241 4242 4100 34816 4242 4194304 120 0 0 0 1 2 0 0 20 0 1 0 987654 2555904 200 "
    "18446744073709551615 1 1 0 0 0 0 0 0 65538 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

BOOST_AUTO_TEST_CASE(a_normal_line_gives_its_fields) {
    const auto p = procfs::parse_pid_stat(sh_line);
    BOOST_REQUIRE_MESSAGE(p, p.error);
    BOOST_TEST(p.stat->pid == 4242);
    BOOST_TEST(p.stat->comm == "sh");
    BOOST_TEST(p.stat->state == 'S');
    BOOST_TEST(p.stat->ppid == 4241);
    BOOST_TEST(p.stat->pgrp == 4242);
    BOOST_TEST(p.stat->session == 4100);
    BOOST_TEST(p.stat->start_time == 987654u);
    BOOST_TEST(!p.stat->zombie());
    BOOST_TEST(p.error.empty());
}

BOOST_AUTO_TEST_CASE(a_command_name_with_parentheses_and_spaces_is_read_whole) {
    // A process may name itself anything: ") (" and spaces included.
    const auto p = procfs::parse_pid_stat("77 (a) (b c)) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0");
    BOOST_REQUIRE_MESSAGE(p, p.error);
    BOOST_TEST(p.stat->comm == "a) (b c)");
    BOOST_TEST(p.stat->state == 'R');
    BOOST_TEST(p.stat->ppid == 1);
    BOOST_TEST(p.stat->start_time == 55u);
    const auto empty = procfs::parse_pid_stat("8 () S 1 8 8 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0");
    BOOST_REQUIRE_MESSAGE(empty, empty.error);
    BOOST_TEST(empty.stat->comm.empty());
}

BOOST_AUTO_TEST_CASE(a_zombie_is_seen_as_one) {
    const auto p = procfs::parse_pid_stat("99 (sleep) Z 1 99 99 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 123 0 0");
    BOOST_REQUIRE_MESSAGE(p, p.error);
    BOOST_TEST(p.stat->zombie());
    BOOST_TEST(p.stat->state == 'Z');
}

BOOST_AUTO_TEST_CASE(cut_short_text_is_an_error_naming_what_is_missing) {
    auto error_of = [](std::string_view text) {
        const auto p = procfs::parse_pid_stat(text);
        BOOST_TEST(!p, "parsed: " << text);
        return p.error;
    };
    // Every prefix of a real line cut before field 23 fails (none is
    // mistaken for a whole one, not even one cut inside the start time)...
    const std::size_t field23 = sh_line.find(" 2555904") + 1;
    for (std::size_t cut = 0; cut <= field23; ++cut) {
        const auto p = procfs::parse_pid_stat(sh_line.substr(0, cut));
        BOOST_TEST(!p, "cut at " << cut);
        BOOST_TEST(!p.error.empty());
    }
    // ... a line cut after that has every field we read, whole.
    const auto cut_in_23 = procfs::parse_pid_stat(sh_line.substr(0, field23 + 1));
    BOOST_REQUIRE_MESSAGE(cut_in_23, cut_in_23.error);
    BOOST_TEST(cut_in_23.stat->start_time == 987654u);
    // ... and says where it stopped.
    BOOST_TEST(error_of("4242 (sh") == "/proc stat: no ')' closing the command name (cut short?): '4242 (sh'");
    BOOST_TEST(error_of("4242 (sh)") == "/proc stat: nothing after the command name (cut short?)");
    BOOST_TEST(error_of("4242 (sh) S") == "/proc stat: field 4 missing (cut short?)");
    BOOST_TEST(error_of("4242 (sh) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18") ==
               "/proc stat: field 22 missing (cut short?)");
    BOOST_TEST(error_of("") == "/proc stat: empty");
}

BOOST_AUTO_TEST_CASE(garbage_is_an_error_naming_the_bad_field) {
    auto error_of = [](std::string_view text) { return procfs::parse_pid_stat(text).error; };
    BOOST_TEST(error_of("hello") == "/proc stat: no ' (' opening the command name in 'hello'");
    BOOST_TEST(error_of("x1 (sh) S 1") == "/proc stat: field 1 (pid) is not a pid: 'x1'");
    BOOST_TEST(error_of("0 (sh) S 1") == "/proc stat: field 1 (pid) is not a pid: '0'");
    BOOST_TEST(error_of("5 (sh) SS 1") == "/proc stat: field 3 (state) is not one character: 'SS'");
    BOOST_TEST(error_of("5 (sh) S one 2") == "/proc stat: field 4 (ppid) is not a number: 'one'");
    BOOST_TEST(error_of("5 (sh) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -19") ==
               "/proc stat: field 22 (starttime) is not a number: '-19'");
    BOOST_TEST(error_of("5 (sh)S 1") == "/proc stat: no space after the command name");
    BOOST_TEST(error_of("5 (sh)  S 1") == "/proc stat: field 3 is empty");  // two spaces
    BOOST_TEST(error_of("5 (\x01\xff) S") == "/proc stat: field 4 missing (cut short?)");
    BOOST_TEST(error_of("5 (sh) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19") ==
               "/proc stat: field 23 missing (cut short?)");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(process_worker_ids)

BOOST_AUTO_TEST_CASE(a_worker_id_is_host_daemon_and_child) {
    const auto p = detail::process::parse_worker_id("my:host:100:200");
    BOOST_REQUIRE(p);
    BOOST_TEST(p->host == "my:host");
    BOOST_TEST(p->daemon_pid == "100");
    BOOST_TEST(p->child_pid == "200");
    BOOST_TEST(!detail::process::parse_worker_id("nocolon"));
    BOOST_TEST(!detail::process::parse_worker_id("one:colon"));
    BOOST_TEST(!detail::process::parse_worker_id(":x"));
}

BOOST_AUTO_TEST_CASE(another_daemons_worker_runs_while_it_is_that_daemons_live_child) {
    const std::map<std::string, std::string> proc{
        {"200", "200 (sh) S 100 200 200 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0"},
        {"201", "201 (sh) Z 100 201 201 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0"},
        {"202", "202 (sh) S 1 202 202 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0"},
        {"203", "203 (sh) S 100"},
    };
    auto read = [&](const std::string& pid) -> std::optional<std::string> {
        auto it = proc.find(pid);
        return it == proc.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    auto runs = [&](std::string_view id) { return detail::process::foreign_worker_runs(id, "here:999", read); };
    BOOST_TEST(runs("here:100:200"));       // that daemon's child, running
    BOOST_TEST(!runs("here:100:201"));      // a zombie
    BOOST_TEST(!runs("here:100:202"));      // reparented: its daemon is gone
    BOOST_TEST(!runs("here:100:203"));      // unreadable stat
    BOOST_TEST(!runs("here:100:204"));      // no such process
    BOOST_TEST(!runs("here:100:2x"));       // not a pid
    BOOST_TEST(runs("elsewhere:100:204"));  // another host judges its own
    BOOST_TEST(!runs("garbage"));
}

BOOST_AUTO_TEST_SUITE_END()
