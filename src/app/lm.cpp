// `qstar lm logits|tokenize|generate`: the language-model backend's tools (LibTorch).
#ifdef QSTAR_HAS_TORCH

#include <chrono>
#include <fstream>

#include "app/app.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "qstar/torch/model.hpp"

namespace qstar::cli {

namespace {

std::vector<std::int32_t> lm_input(const Args& a, const std::string& model) {
  const bool text = a.has("text"), toks = a.has("tokens");
  if (text == toks) throw UsageError("lm: give exactly one of --text \"...\" or --tokens 1,2,3");
  if (toks) {
    std::vector<std::int32_t> ids;
    for (const auto& s : split_list(*a.get("tokens"))) ids.push_back(parse_int<std::int32_t>("tokens", s, 0, INT32_MAX));
    return ids;
  }
  const auto tok = hf::Tokenizer::from_dir(model);
  return tok.encode(*a.get("text"));
}

/// `lm tokenize --file texts.jsonl`: one {"text": ...} object per line in, one
/// {"tokens": [...]} line out, in order (blank lines are skipped).
int tokenize_file(const hf::Tokenizer& tok, const std::string& path, bool add_special, std::ostream& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("--file: cannot open '{}'", path));
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string text;
    try {
      const json::Value v = json::parse(line);
      if (!v.is_object() || !v.contains("text") || !v.at("text").is_string())
        throw ParseError("expected an object with a string \"text\"");
      text = v.get_string("text");
    } catch (const Error& e) {
      throw ParseError(fmt::format("{}:{}: {}", path, line_no, e.what()));
    }
    json::Value o = json::Value::object();
    json::Value t = json::Value::array();
    for (auto id : tok.encode(text, add_special)) t.push_back(id);
    o.set("tokens", std::move(t));
    out << json::dump(o) << "\n";
  }
  if (in.bad()) throw IoError(fmt::format("--file: error reading '{}'", path));
  return 0;
}

}  // namespace

int cmd_lm(const std::vector<std::string>& args, std::ostream& out) {
  if (args.size() < 2) throw UsageError("lm: give a subcommand: logits, tokenize (e.g. qstar lm logits --model DIR --text \"hi\")");
  const std::string sub = args[1];
  if (sub != "logits" && sub != "tokenize" && sub != "generate")
    throw UsageError(fmt::format("lm: unknown subcommand '{}' (logits, tokenize, generate)", sub));
  const Args a(args, 2, "lm " + sub);
  apply_threads(a);
  auto model = a.get("model");
  if (sub == "logits") {
    if (!model) throw UsageError("lm logits: --model DIR is required");
    const auto ids = lm_input(a, *model);
    if (ids.empty()) throw UsageError("lm logits: the input has no tokens");
    const auto lmodel = lm::LanguageModel::load(*model, a.get("device").value_or("cpu"), a.get("dtype").value_or("float32"));
    for (auto id : ids)
      if (id >= lmodel.config().vocab_size)
        throw UsageError(fmt::format("--tokens: id {} is outside the vocabulary (size {})", id, lmodel.config().vocab_size));
    // Every architecture's raw head outputs: a causal LM's vocabulary logits, or the score
    // head's outputs (token/sequence classification, process reward, reward, value head)
    // before any softmax or sigmoid.
    const auto rows = lmodel.has_score_head() ? lmodel.token_scores(ids) : lmodel.logits(ids);
    if (a.has("json")) {
      json::Value o = json::Value::object();
      json::Value t = json::Value::array();
      for (auto id : ids) t.push_back(id);
      o.set("tokens", std::move(t));
      json::Value l = json::Value::array();
      for (const auto& row : rows) {
        json::Value r = json::Value::array();
        for (float x : row) r.push_back(static_cast<double>(x));
        l.push_back(std::move(r));
      }
      o.set("logits", std::move(l));
      out << json::dump(o) << "\n";
    } else {
      for (std::size_t i = 0; i < rows.size(); ++i) {
        out << fmt::format("position {} token {}:", i, ids[i]);
        for (float x : rows[i]) out << ' ' << fmt::format("{:.6g}", x);
        out << "\n";
      }
    }
    return 0;
  }
  if (sub == "tokenize") {
    if (!model) throw UsageError("lm tokenize: --model DIR is required");
    auto text = a.get("text");
    const auto file = a.get("file");
    if (text.has_value() == file.has_value())
      throw UsageError("lm tokenize: give exactly one of --text \"...\" or --file texts.jsonl");
    if (a.has("add-special-tokens") && !file)
      throw UsageError("lm tokenize: --add-special-tokens applies only to --file");
    const auto tok = hf::Tokenizer::from_dir(*model);
    if (file) return tokenize_file(tok, *file, a.has("add-special-tokens"), out);
    const auto ids = tok.encode(*text);
    if (a.has("json")) {
      json::Value o = json::Value::object();
      json::Value t = json::Value::array(), p = json::Value::array();
      for (auto id : ids) {
        t.push_back(id);
        p.push_back(tok.id_to_token(id));
      }
      o.set("tokens", std::move(t));
      o.set("pieces", std::move(p));
      o.set("decoded", tok.decode(ids));
      out << json::dump(o) << "\n";
    } else {
      for (auto id : ids) out << fmt::format("{}\t{}\n", id, json::dump(json::Value(tok.id_to_token(id))));
    }
    return 0;
  }
  if (sub == "generate") {
    if (!model) throw UsageError("lm generate: --model DIR is required");
    auto prompt = a.get("prompt");
    if (!prompt) throw UsageError("lm generate: --prompt \"...\" is required");
    int steps = 1;
    if (auto v = a.get("steps")) steps = parse_int<int>("steps", *v, 1, 1000);
    int candidates = 1;  // continuations sampled per step (one batched expand); the first is kept
    if (auto v = a.get("candidates")) candidates = parse_int<int>("candidates", *v, 1, 4096);
    auto params = lm_generator_params(a, task_of(a));
    if (auto v = a.get("max-step-tokens")) params.max_step_tokens = parse_int<int>("max-step-tokens", *v, 1, 1 << 20);
    auto gen = lm::LMGenerator::load(*model, params);
    const std::uint64_t seed = get_seed(a);
    Problem problem{"lm", *prompt, std::nullopt};
    Tree tree;
    NodeId cur = Tree::root();
    json::Value out_steps = json::Value::array();
    double expand_seconds = 0.0;
    std::int64_t generated = 0;
    for (int i = 0; i < steps && !tree[cur].terminal; ++i) {
      ExpandRequest r;
      r.problem = &problem;
      r.prompt = *prompt;
      r.prefix = tree.trajectory(cur);
      r.num_candidates = candidates;
      r.seed = derive_seed(seed, static_cast<std::uint64_t>(i));
      r.greedy = a.has("greedy");
      const auto t0 = std::chrono::steady_clock::now();
      auto got = gen.expand(std::span<const ExpandRequest>(&r, 1));
      expand_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (got.empty() || got[0].empty()) break;
      for (const Step& c : got[0]) generated += c.num_tokens;
      const Step& st = got[0][0];
      cur = tree.add_child(cur, st);
      if (a.has("json")) {
        json::Value o = json::Value::object();
        o.set("text", st.text);
        json::Value t = json::Value::array();
        for (auto id : st.tokens) t.push_back(id);
        o.set("tokens", std::move(t));
        o.set("logprob", st.logprob);
        if (!st.token_logprobs.empty())
          o.set("token_logprobs", json::float_array(st.token_logprobs.data(), st.token_logprobs.size()));
        if (!st.token_entropies.empty())
          o.set("token_entropies", json::float_array(st.token_entropies.data(), st.token_entropies.size()));
        o.set("finish", to_string(st.finish));
        out_steps.push_back(std::move(o));
      } else {
        out << fmt::format("step {} [{} tokens, logprob {:.3f}, {}]: {}\n", i + 1, st.num_tokens, st.logprob,
                           to_string(st.finish), st.text);
      }
    }
    if (a.has("json")) {
      json::Value o = json::Value::object();
      o.set("prompt", *prompt);
      o.set("steps", std::move(out_steps));
      o.set("generated_tokens", generated);    // every candidate's tokens
      o.set("expand_seconds", expand_seconds);  // the generator's time, loading excluded
      out << json::dump(o) << "\n";
    }
    return 0;
  }
  throw UsageError(fmt::format("lm: unknown subcommand '{}' (logits, tokenize, generate)", sub));
}

}  // namespace qstar::cli

#endif  // QSTAR_HAS_TORCH
