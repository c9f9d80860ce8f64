// The verifier heads (src/torch/models/heads.cpp) and the PRM kinds that read them: raw head
// outputs of every head architecture against the float64 Python reference
// (reference_llama.py), `qstar lm logits --json` printing them, the kinds inferred from
// config.json, the outcome kinds (reward-model, seq-class) and the errors.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../cli_run.hpp"
#include "prm_heads_support.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "qstar/torch/model.hpp"
#include "qstar/torch/prm.hpp"
#include "torch/decoder.hpp"

// doctest AFTER the torch headers (Debian's glog redefines CHECK); re-assert it anyway.
#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

#include "support/torch_reference.hpp"

using namespace heads_test;
using qstar::lm::LanguageModel;
using qstar::lm::PrmParams;
using qstar::lm::PrmVerifier;

namespace {

constexpr double kTol = 1e-5;

struct ArchCase {
  const char* label;
  HeadArch arch;
  const char* kind;  // what auto resolves to
  std::int64_t outputs;
};
const ArchCase kArchs[] = {
    {"Qwen2ForProcessRewardModel (num_labels absent)", HeadArch::ProcessReward, "process-reward", 2},
    {"Qwen2ForRewardModel", HeadArch::Reward, "reward-model", 1},
    {"Qwen2ForPrmModel (v_head, lm_head kept)", HeadArch::Value, "value-head", 1},
    {"LlamaForSequenceClassification (1 label)", HeadArch::SeqClass1, "seq-class", 1},
    {"Qwen2ForSequenceClassification (2 labels)", HeadArch::SeqClass2, "seq-class", 2},
};

using reference::read_matrix;
using reference::rel_err;

at::Tensor to_tensor(const std::vector<std::vector<float>>& rows) {
  at::Tensor t = at::empty({static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(rows.at(0).size())},
                           at::kFloat);
  for (std::size_t r = 0; r < rows.size(); ++r)
    std::memcpy(t[static_cast<std::int64_t>(r)].data_ptr<float>(), rows[r].data(), rows[r].size() * sizeof(float));
  return t;
}

}  // namespace

TEST_CASE("heads: raw outputs of every head architecture equal the float64 Python reference") {
  c10::InferenceMode guard;
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::vector<std::int32_t>> toks;
  TempDir work;
  {
    std::ofstream jobs(work.file("jobs.tsv"));
    std::mt19937 rng(5);
    for (std::size_t i = 0; i < std::size(kArchs); ++i) {
      dirs.push_back(std::make_unique<TempDir>());
      write_head_model(dirs.back()->str(), kArchs[i].arch, static_cast<unsigned>(300 + i));
      std::vector<std::int32_t> t(17);
      for (auto& x : t) x = static_cast<std::int32_t>(rng() % 64);
      std::string list;
      for (auto x : t) list += (list.empty() ? "" : ",") + std::to_string(x);
      toks.push_back(t);
      jobs << dirs.back()->str() << "\t" << list << "\t" << work.file("out" + std::to_string(i) + ".bin") << "\n";
    }
  }
  std::string failure;
  const std::string py = run_python("reference_llama.py", "--jobs \"" + work.file("jobs.tsv") + "\"",
                                    work.file("stderr.txt"), "torch, numpy", failure);
  if (!failure.empty()) FAIL("reference_llama.py failed: " << failure);
  if (py.empty()) {
    MESSAGE("skipping the Python reference check: no python3 with torch and numpy");
    return;
  }
  for (std::size_t i = 0; i < std::size(kArchs); ++i) {
    CAPTURE(std::string(kArchs[i].label));
    const at::Tensor ref = read_matrix(work.file("out" + std::to_string(i) + ".bin"));
    const auto lm = LanguageModel::load(dirs[i]->str());
    CHECK(lm.has_score_head());
    CHECK(lm.has_lm_head() == false);  // the value head's lm_head is not loaded: it scores
    CHECK(lm.config().num_labels == kArchs[i].outputs);
    const auto rows = lm.token_scores(toks[i]);
    REQUIRE(static_cast<std::int64_t>(rows.at(0).size()) == kArchs[i].outputs);
    const double err = rel_err(to_tensor(rows), ref);
    MESSAGE(std::string(kArchs[i].label) << ": C++ head vs float64 Python reference, max relative error " << err);
    CHECK(err <= kTol);
    // The PRM path: hidden states from two cached forwards, the head at every position.
    auto m = lm.impl();
    qstar::lm::SequenceInput a, b;
    a.tokens.assign(toks[i].begin(), toks[i].begin() + 9);
    auto o1 = m->forward({&a, 1}, {qstar::lm::LogitsMode::None, true});
    b.past = {&o1[0].kv};
    b.tokens.assign(toks[i].begin() + 9, toks[i].end());
    auto o2 = m->forward({&b, 1}, {qstar::lm::LogitsMode::None, true});
    const double err2 = rel_err(m->score(at::cat({o1[0].hidden, o2[0].hidden}, 0)), ref);
    MESSAGE(std::string(kArchs[i].label) << ": cached hidden + score() vs reference " << err2);
    CHECK(err2 <= kTol);
    // The outputs are not constant (the check is not vacuous).
    CHECK(ref.max().item<double>() - ref.min().item<double>() > 1e-2);
  }
}

TEST_CASE("heads: qstar lm logits --json prints every architecture's raw head outputs") {
  for (const auto& c : kArchs) {
    CAPTURE(std::string(c.label));
    TempDir dir;
    write_head_model(dir.str(), c.arch, 11);
    auto r = cli_test::run({"lm", "logits", "--model", dir.str(), "--text", "3+4=7", "--json"});
    REQUIRE(r.code == 0);
    const auto v = qstar::json::parse(r.out);
    const auto& rows = v.get_array("logits");
    const auto ids = qstar::hf::Tokenizer::from_file(dir.file("tokenizer.json")).encode("3+4=7");
    const auto ref = LanguageModel::load(dir.str()).token_scores(ids);
    REQUIRE(rows.size() == ref.size());
    double worst = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      REQUIRE(rows[i].size() == ref[i].size());
      for (std::size_t j = 0; j < ref[i].size(); ++j)
        worst = std::max(worst, std::abs(rows[i].at(j).as_double() - static_cast<double>(ref[i][j])));
    }
    CHECK(worst == 0.0);  // the same float32 values, printed exactly
  }
}

TEST_CASE("prm kinds: inferred from config.json's architecture; an explicit kind must match it") {
  for (const auto& c : kArchs) {
    CAPTURE(std::string(c.label));
    TempDir dir;
    write_head_model(dir.str(), c.arch, 3);
    write_tokenizer_config(dir.str(), kChatML, "<|endoftext|>");
    auto v = PrmVerifier::load(dir.str());
    CHECK(v.kind() == c.kind);
    CHECK(v.outcome_only() == (std::string(c.kind) == "reward-model" || std::string(c.kind) == "seq-class"));
    PrmParams p;
    p.kind = c.kind;
    CHECK(PrmVerifier::load(dir.str(), p).kind() == c.kind);
    p.kind = "token-logit";
    const std::string e = error_of([&] { (void)PrmVerifier::load(dir.str(), p); });
    CHECK(contains(e, "PrmParams.kind"));
    CHECK(contains(e, "architecture"));
  }
  TempDir causal;
  write_model(causal.str(), causal_qwen2(), 3);
  for (const char* k : {"process-reward", "value-head", "reward-model", "seq-class"}) {
    PrmParams p;
    p.kind = k;
    const std::string e = error_of([&] { (void)PrmVerifier::load(causal.str(), p); });
    CAPTURE(e);
    CHECK(contains(e, "PrmParams.kind"));
    CHECK(contains(e, "Qwen2ForCausalLM"));
  }
  PrmParams bad;
  bad.kind = "value";
  CHECK(contains(error_of([&] { bad.validate(); }), "chat-logit"));
}

TEST_CASE("prm kinds: reward-model and seq-class read the whole chat-formatted response at its last token") {
  Tree t;
  struct Case {
    HeadArch arch;
    bool system;  // Qwen2.5-Math-RM's system message
  };
  for (const Case c : {Case{HeadArch::Reward, true}, Case{HeadArch::SeqClass1, false}, Case{HeadArch::SeqClass2, false}}) {
    CAPTURE(static_cast<int>(c.arch));
    TempDir dir;
    write_head_model(dir.str(), c.arch, 23);
    write_tokenizer_config(dir.str(), kChatML, "<|endoftext|>");
    auto v = PrmVerifier::load(dir.str());  // auto: chat_template auto, response joined by "\n\n"
    REQUIRE(v.outcome_only());
    std::vector<qstar::OutcomeRequest> outs;
    for (auto leaf : t.leaves()) outs.push_back(t.outcome(leaf));
    const auto got = v.score_outcomes(outs);
    // The reference texts: jinja2 renders the same conversation.
    qstar::json::Value jobs = qstar::json::Value::array();
    for (auto leaf : t.leaves()) {
      qstar::json::Value j = qstar::json::Value::object();
      j.set("format", "chat-outcome");
      j.set("template", kChatML);
      if (c.system) j.set("system", "Please reason step by step, and put your final answer within \\boxed{}.");
      j.set("problem", t.problem.text);
      qstar::json::Value steps = qstar::json::Value::array();
      for (const auto& s : t.texts(leaf)) steps.push_back(s);
      j.set("steps", std::move(steps));
      jobs.push_back(std::move(j));
    }
    std::ofstream(dir.file("jobs.json")) << qstar::json::dump(jobs);
    std::string failure;
    const std::string py = run_python("reference_prm_format.py",
                                      "\"" + dir.file("jobs.json") + "\" \"" + dir.file("out.json") + "\"",
                                      dir.file("err.txt"), "jinja2", failure);
    if (!failure.empty()) FAIL("reference_prm_format.py failed: " << failure);
    if (py.empty()) {
      MESSAGE("skipping: no python3 with jinja2");
      return;
    }
    std::ifstream in(dir.file("out.json"));
    std::stringstream ss;
    ss << in.rdbuf();
    const auto ref = qstar::json::parse(ss.str());
    const auto tok = qstar::hf::Tokenizer::from_file(dir.file("tokenizer.json"));
    const auto lm = LanguageModel::load(dir.str());
    double worst = 0;
    for (std::size_t r = 0; r < outs.size(); ++r) {
      const std::string text = ref.as_array()[r].get_string("text");
      CHECK(text.size() > 12);
      CHECK(text.substr(text.size() - 11) == "<|im_end|>\n");
      const auto ids = tok.encode(text);
      const auto seq = v.sequence(t.req(t.leaves()[r], 0));
      CHECK(seq.tokens == ids);
      REQUIRE(seq.step_ends.size() == 1);
      CHECK(seq.step_ends[0] == static_cast<std::int64_t>(ids.size()) - 1);
      const auto raw = lm.token_scores(ids).back();
      const double want = raw.size() == 1 ? sigmoid(raw[0]) : sigmoid(double(raw[1]) - double(raw[0]));
      worst = std::max(worst, std::abs(got[r] - want));
    }
    MESSAGE("outcome score vs the head at the reference text's last token: max error " << worst);
    CHECK(worst <= kTol);
    CHECK(got[0] != got[1]);
    // Not a step verifier.
    auto req = t.req(t.a1, 0);
    CHECK(contains(error_of([&] { (void)v.score_steps({&req, 1}); }), "outcome verifier"));
    CHECK_THROWS_AS((void)v.score_steps({&req, 1}), qstar::InvalidArgument);
  }
}

TEST_CASE("heads: the CLI loads the outcome kinds with --orm (and --orm-kind), a step kind with --verifier") {
  TempDir rm, prm;
  write_head_model(rm.str(), HeadArch::SeqClass2, 5);
  write_tokenizer_config(rm.str(), kChatML, "<|endoftext|>");
  write_head_model(prm.str(), HeadArch::ProcessReward, 6);
  write_tokenizer_config(prm.str(), kChatML, "<|endoftext|>");
  // best-of-n ranked by a sequence classifier (auto: seq-class), and by it named explicitly.
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{}, std::vector<std::string>{"--orm-kind", "seq-class"}}) {
    std::vector<std::string> args = {"solve",    "4 5 6 10", "--algo", "best-of-n", "--n",  "3", "--generator",
                                     "programmatic", "--verifier", "none", "--orm", "prm:" + rm.str(), "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = cli_test::run(args);
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(qstar::json::parse(r.out).at("stats").get_int("verifier_calls") >= 1);
  }
  // A step verifier of the process-reward kind drives a beam search.
  auto r = cli_test::run({"solve", "4 5 6 10", "--algo", "beam", "--n", "2", "--width", "2", "--max-depth", "2",
                          "--generator", "programmatic", "--verifier", "prm:" + prm.str(), "--prm-kind",
                          "process-reward", "--json"});
  INFO(r.err);
  CHECK(r.code == 0);
  // A reward model has no step scores: a beam search over it is refused, naming it.
  r = cli_test::run({"solve", "4 5 6 10", "--algo", "beam", "--n", "2", "--width", "2", "--max-depth", "2",
                     "--generator", "programmatic", "--verifier", "prm:" + rm.str()});
  CHECK(r.code != 0);
  CHECK(contains(r.err, "prm:" + rm.str()));
  r = cli_test::run({"solve", "4 5 6 10", "--algo", "best-of-n", "--generator", "programmatic", "--orm-kind",
                     "seq-class"});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "--orm-kind applies only"));
}
