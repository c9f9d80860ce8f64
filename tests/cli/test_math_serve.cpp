// The math task end to end through real processes (protocol only: the models are tiny and
// random, so answers are noise): `qstar serve` with a tiny generator and PRM written by the
// test, then `qstar solve/bench --task math` over --generator/--verifier http:URL, and
// `--generator lm:DIR` rendering the prompt with the folder's tokenizer_config.json chat
// template. Needs a qstar built with LibTorch and the HTTP server.
#if defined(QSTAR_HAS_HTTP_SERVER) && defined(QSTAR_HAS_TORCH)

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <qstar/core/json.hpp>

#include "support/serve_process.hpp"
#include "support/tiny_model.hpp"

namespace {

/// A ChatML template (the layout of Qwen2.5's), as a tokenizer_config.json would hold it.
constexpr const char* kChatMl =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// The served models, the generator with a chat template.
struct MathModels : tiny::ServedModels {
  MathModels() : tiny::ServedModels(21, 22) {
    std::ofstream(gen + "/tokenizer_config.json")
        << "{\"chat_template\": \"" << tiny::json_escape(kChatMl) << "\", \"eos_token\": \"<unk>\"}";
  }
};
const MathModels& models() {
  static MathModels m;
  return m;
}

/// `qstar serve` with the tiny math models as a child process.
class Serve : public qstar_test::ServeProcess {
 public:
  Serve()
      : qstar_test::ServeProcess({QSTAR_CLI_EXE, "serve", "--model", models().gen, "--prm", models().prm,
                                  "--prm-kind", "token-logit", "--port", "0"}) {}
};

/// Runs the qstar executable through the shell: stdout, stderr and the exit code.
struct Out {
  std::string out, err;
  int code;
};
Out run_cli(const std::string& args) {
  const std::string err_path = models().dir.file("stderr.txt");
  const std::string cmd = std::string("'") + QSTAR_CLI_EXE + "' " + args + " 2>'" + err_path + "'";
  FILE* f = ::popen(cmd.c_str(), "r");
  REQUIRE(f != nullptr);
  std::string out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const int status = ::pclose(f);
  std::ifstream e(err_path);
  std::stringstream ss;
  ss << e.rdbuf();
  return {out, ss.str(), WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

}  // namespace

TEST_CASE("math over HTTP: qstar solve/bench --task math against qstar serve (tiny random models)") {
  Serve serve;
  const std::string plug = " --generator http:" + serve.url() + " --verifier http:" + serve.url() + " --step-tag ' ки'";
  auto r = run_cli("solve --task math 'What is 1/2 + 1/2?' --algo beam --n 2 --width 2 --max-depth 2 "
                   "--max-step-tokens 6 --chat-template " + models().gen + " --json" + plug);
  REQUIRE(r.code == 0);
  CHECK(r.err.find("prompts rendered with the chat template of " + models().gen) != std::string::npos);
  const auto v = qstar::json::parse(r.out);
  CHECK(v.get_string("problem") == "What is 1/2 + 1/2?");
  CHECK(v.at("stats").get_int("generator_calls") > 0);
  CHECK(v.at("stats").get_int("verifier_calls") > 0);
  CHECK(v.at("steps").is_array());

  const std::string data = std::string(QSTAR_MATH_DATA_DIR) + "/math500_test.jsonl";
  r = run_cli("bench --task math --data '" + data + "' --level 1 --subject Prealgebra --limit 2 --algo best-of-n "
              "--n 2 --max-depth 2 --max-step-tokens 6 --no-chat-template" + plug);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("qstar bench: 2 problems from " + data) != std::string::npos);
  CHECK(r.out.find("/2 |") != std::string::npos);  // the solved column: "k/2"
  CHECK(r.err.find("chat template") == std::string::npos);
}

TEST_CASE("math with lm:DIR: the folder's chat template by default, --no-chat-template plain") {
  const std::string base = "solve --task math 'What is 2+2?' --algo best-of-n --n 2 --max-depth 2 --max-step-tokens 4 "
                           "--verifier none --json --generator lm:" + models().gen;
  auto r = run_cli(base);
  REQUIRE(r.code == 0);
  CHECK(r.err.find("prompts rendered with the chat template of " + models().gen + "/tokenizer_config.json") !=
        std::string::npos);
  CHECK(qstar::json::parse(r.out).at("stats").get_int("generated_tokens") > 0);
  r = run_cli(base + " --no-chat-template");
  REQUIRE(r.code == 0);
  CHECK(r.err.find("chat template") == std::string::npos);
  // A template that fails to parse is a usage error naming the file and line.
  const std::string bad = models().dir.file("bad.jinja");
  std::ofstream(bad) << "line one\n{% for x in %}\n";
  r = run_cli(base + " --chat-template '" + bad + "'");
  CHECK(r.code == 2);
  CHECK(r.err.find(bad + ":2") != std::string::npos);
}

#endif
