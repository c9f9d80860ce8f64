// Model cards (MODEL_CARD.md in each model folder), written from the stages' JSON logs so
// that every number in a card is one the pipeline measured.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "qstar/core/json.hpp"
#include "qstar/hf/model_io.hpp"
#include "qstar/tasks/game24/train_recipe.hpp"

namespace qstar::game24 {

namespace {

std::optional<json::Value> try_read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return json::parse(ss.str(), path);
}

std::string pct(double x) { return fmt::format("{:.1f}%", 100.0 * x); }

std::string minutes(double s) { return fmt::format("{:.1f} min ({:.0f} s)", s / 60.0, s); }

// What the vocabulary is, read from the generator's tokenizer.json (the PRM and ORM share
// it): the word-level tokenizer of hf::word_tokenizer_json, or one token per character.
std::string vocabulary_kind(const std::string& out_dir) {
  const auto tj = try_read(out_dir + "/generator/tokenizer.json");
  if (tj && tj->contains("pre_tokenizer") && tj->at("pre_tokenizer").contains("pattern") &&
      tj->at("pre_tokenizer").at("pattern").contains("Regex") &&
      tj->at("pre_tokenizer").at("pattern").get_string("Regex") == hf::word_tokenizer_pattern())
    return "word-level: `<unk>`, printable ASCII characters, the numbers 0-999 and the prompt's "
           "words, each alone and after a space";
  return "characters: `<unk>`, `\\n`, printable ASCII";
}

std::string model_table(const json::Value& m, const std::string& vocab) {
  return fmt::format(
      "| field | value |\n| --- | --- |\n| architecture | {} |\n| parameters | {} |\n"
      "| hidden / intermediate | {} / {} |\n| layers | {} |\n| heads / kv heads | {} / {} |\n"
      "| vocabulary | {} ({}) |\n",
      m.get_string("architecture"), m.get_int("parameters"), m.get_int("hidden_size"),
      m.get_int("intermediate_size"), m.get_int("num_hidden_layers"),
      m.get_int("num_attention_heads"), m.get_int("num_key_value_heads"), m.get_int("vocab_size"), vocab);
}

std::string optim_line(const json::Value& o) {
  return fmt::format("{} steps x {} sequences, peak lr {}, warmup {}, cosine to {}x, weight decay {}, "
                     "grad clip {}; {}",
                     o.get_int("steps"), o.get_int("batch_size"), o.get_double("lr"),
                     o.get_int("warmup"), o.get_double("min_lr_ratio"), o.get_double("weight_decay"),
                     o.get_double("grad_clip"), o.get_string("optimizer"));
}

void write(const std::string& path, const std::string& text, std::ostream& log) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw IoError(fmt::format("{}: cannot open for writing", path));
  f << text;
  if (!f) throw IoError(fmt::format("{}: write failed", path));
  log << fmt::format("[train] wrote {}\n", path);
}

const char* kFormat =
    "Text format (exactly what the qstar backends read): the prompt is `Game24Task::format` "
    "(\"Use numbers and basic arithmetic operations (+ - * /) to obtain 24. ... Input: a b c d\\n"
    "Steps:\\n\"), then each step's text followed by `\\n`: three moves `a op b = c (left: x y z)` "
    "and `Answer: <expression> = 24`.";

}  // namespace

void write_model_cards(const PipelineParams& P, std::ostream& log) {
  const std::string logs = P.out_dir + "/logs";
  const auto sft = try_read(logs + "/sft.json");
  const auto label = try_read(logs + "/label.json");
  const auto prm = try_read(logs + "/prm.json");
  const auto orm = try_read(logs + "/orm.json");
  const auto star = try_read(logs + "/star.json");
  const auto all = try_read(logs + "/all.json");
  if (!sft) throw IoError(fmt::format("{}/sft.json: missing (run `qstar train sft` first)", logs));
  const std::string vocab = vocabulary_kind(P.out_dir);
  const bool words = vocab.starts_with("word");
  // The command of every stage that made these models, in pipeline order, once each: one
  // line for `qstar train all`, one per stage for stages run on their own.
  std::string cmd;
  {
    std::vector<std::string> cmds;
    if (all) cmds.push_back(all->get_string("command"));
    for (const auto* j : {&sft, &label, &prm, &orm, &star})
      if (*j && (*j)->contains("command") &&
          std::find(cmds.begin(), cmds.end(), (*j)->get_string("command")) == cmds.end())
        cmds.push_back((*j)->get_string("command"));
    for (const auto& c : cmds) cmd += (cmd.empty() ? "" : "\n") + c;
  }
  double stage_seconds = 0;
  for (const auto* j : {&sft, &label, &prm, &orm, &star})
    if (*j && (*j)->contains("seconds")) stage_seconds += (*j)->get_double("seconds");
  const std::string total = all ? minutes(all->get_double("seconds"))
                                : minutes(stage_seconds) + " (the stages' times added up)";
  const std::string split = fmt::format(
      "Data: synthetic Game of 24 puzzles, the {} solvable multisets of four numbers 1-13 minus "
      "the {} multisets of ranks {} of `data/game24/24.csv` (the ToT test split; never used, "
      "checked by `check_separation` at every stage and by tests/tasks/test_game24_data.cpp), "
      "minus {} held-out dev puzzles.",
      sft->get_int("train_puzzles") + sft->get_int("dev_puzzles") + sft->get_int("excluded_test_multisets"),
      sft->get_int("excluded_test_multisets"), sft->get_string("test_ranks"),
      sft->get_int("dev_puzzles"));
  // A run whose SFT continued an earlier run's generator (--sft-init): that run's logs are
  // kept in logs/leg1/ and its command comes first.
  const auto leg1 = try_read(logs + "/leg1/all.json");
  const auto leg1_sft = try_read(logs + "/leg1/sft.json");
  const bool continued = sft->contains("init") && sft->get_string("init") != "random (seeded)";
  std::string before;
  if (continued && leg1 && leg1_sft)
    before = fmt::format("{}\n", leg1->get_string("command"));
  const std::string repro = fmt::format(
      "## Reproduce\n\n```sh\n{}{}\n```\n\n(Seed {}, {} CPU thread(s); from the repository root. "
      "Whole pipeline: {}{}.{})\n",
      before, cmd, sft->get_int("seed"), sft->get_int("threads"), total,
      before.empty() ? "" : fmt::format(", plus {} for the first command", minutes(leg1->get_double("seconds"))),
      cmd.find('\n') == std::string::npos
          ? ""
          : " The stages ran one at a time, each command reading the previous stages' outputs "
            "from its --out folder; docs/training.md says how the folders were combined.");

  if (std::filesystem::exists(P.out_dir + "/generator")) {
    std::string s = "# qstar Game of 24 generator\n\n";
    s += fmt::format(
        "A tiny {} Llama (LlamaForCausalLM) that proposes Game of 24 steps. It is deliberately "
        "fallible: it was trained on a mix of correct and imperfect traces, and is meant to be "
        "searched with the PRM (`models/prm`).\n\n",
        words ? "word-level" : "character-level");
    s += model_table(sft->at("model"), vocab) + "\n";
    s += std::string(kFormat) + "\n\n## Training\n\n" + split + "\n\n";
    if (continued && leg1_sft) {
      const auto& t1 = leg1_sft->at("traces");
      s += fmt::format(
          "0. **SFT, first run** (`logs/leg1/`): from a seeded random init, {} traces; {}. Loss "
          "{:.4f} -> {:.4f}, {}; greedy dev accuracy {}. The run below continued its generator.\n",
          t1.get_int("examples"), optim_line(leg1_sft->at("optim")),
          leg1_sft->at("train").get_double("first_loss"), leg1_sft->at("train").get_double("last_loss"),
          minutes(leg1_sft->get_double("seconds")), pct(leg1_sft->get_double("greedy_dev_accuracy")));
    }
    const auto& tr = sft->at("traces");
    s += fmt::format(
        "1. **SFT**: {} synthetic traces (dead-end rate {}, arithmetic-slip rate {}; kinds: {}); "
        "loss = next-token cross-entropy on the step {}. {}. Loss {:.4f} -> {:.4f}, "
        "{}.\n",
        tr.get_int("examples"), tr.get_double("dead_end_rate"), tr.get_double("arithmetic_error_rate"),
        json::dump(tr.at("kinds")), words ? "tokens" : "characters", optim_line(sft->at("optim")),
        sft->at("train").get_double("first_loss"), sft->at("train").get_double("last_loss"),
        minutes(sft->get_double("seconds")));
    if (star) {
      const std::string replay =
          star->contains("replay") && star->get_double("replay") > 0
              ? fmt::format(", mixed with {} fresh synthetic SFT traces per kept trajectory (replay)",
                            star->get_double("replay"))
              : std::string();
      s += fmt::format("2. **STaR** (expert iteration): {}{}. Fine-tuning: {}.\n",
                       fmt::format("beam search N={}, M={} with the PRM over training puzzles, "
                                   "keeping the trajectories the exact checker accepts",
                                   star->get_int("beams"), star->get_int("width")),
                       replay, optim_line(star->at("optim")));
    }
    s += "\n## Measured\n\n| metric | value |\n| --- | --- |\n";
    s += fmt::format("| greedy accuracy, dev ({} puzzles), after SFT | {} |\n", sft->get_int("dev_puzzles"),
                     pct(sft->get_double("greedy_dev_accuracy")));
    if (star) {
      for (const auto& it : star->get_array("iterations")) {
        s += fmt::format("| STaR iteration {}: puzzles solved by search / trajectories kept | {} of {} / {} |\n",
                         it.get_int("iteration"), it.get_int("puzzles_solved_by_search"),
                         it.get_int("puzzles"), it.get_int("trajectories_kept"));
        if (it.contains("greedy_dev_accuracy_after"))
          s += fmt::format("| STaR iteration {}: greedy dev accuracy before -> after | {} -> {} ({}) |\n",
                           it.get_int("iteration"), pct(it.get_double("greedy_dev_accuracy_before")),
                           pct(it.get_double("greedy_dev_accuracy_after")),
                           it.get_bool("accepted") ? "kept" : "discarded: it got worse");
      }
      s += fmt::format("| greedy accuracy, dev, shipped model | {} |\n", pct(star->get_double("greedy_dev_accuracy_end")));
      s += fmt::format("| greedy accuracy, ranks 901-1000 (information only, never used for training or selection) | {} |\n",
                       pct(star->get_double("greedy_test_accuracy_info_only")));
    }
    s += "\nUse: `qstar solve \"4 5 6 10\" --generator lm:models/generator --verifier prm:models/prm`.\n\n" + repro;
    write(P.out_dir + "/generator/MODEL_CARD.md", s, log);
  }

  for (const bool is_orm : {false, true}) {
    const auto& j = is_orm ? orm : prm;
    if (!j || !label) continue;
    std::string s = is_orm ? "# qstar Game of 24 ORM (outcome reward model)\n\n"
                           : "# qstar Game of 24 PRM (process reward model)\n\n";
    s += is_orm ? "A LlamaForTokenClassification head (1 label, sigmoid) that predicts whether a "
                  "solution's final answer is correct; read it at the last step's `\\n` "
                  "(PrmVerifier's score_outcomes with the default last-step aggregation).\n\n"
                : "A LlamaForTokenClassification head (1 label, sigmoid) read at the `\\n` after "
                  "each step: the probability that the solution can still reach 24 from there "
                  "(trained on Math-Shepherd rollout labels).\n\n";
    s += model_table(j->at("model"), vocab) + "\n" + std::string(kFormat) + "\n\n## Training\n\n" + split + "\n\n";
    s += fmt::format(
        "Labelled data (stage `label`): the generator (the `generator/` folder when the stage ran) "
        "sampled {} solutions (temperature {}) of {} training puzzles ({} correct); every step got "
        "K = {} rollouts from its prefix (max depth {}) through qstar's batched Generator "
        "interface, {} generator calls, {} generated steps, {}. Mean soft label {:.3f}; the hard "
        "labels agree with the exact oracle on {} of the steps.\n\n",
        label->get_int("solutions"), label->get_double("temperature"), label->get_int("label_puzzles"),
        label->get_int("solutions_correct"), label->get_int("rollouts"), label->get_int("max_depth"),
        label->get_int("labeller_generator_calls"), label->get_int("labeller_generated_steps"),
        minutes(label->get_double("labeller_seconds")), label->get_double("mean_soft_label"),
        pct(label->get_double("hard_label_agreement_with_oracle")));
    s += fmt::format("Targets: {}. Initialised from {}. {}. Loss {:.4f} -> {:.4f}, {}.\n\n",
                     j->get_string("targets"), j->get_string("init"), optim_line(j->at("optim")),
                     j->at("train").get_double("first_loss"), j->at("train").get_double("last_loss"),
                     minutes(j->get_double("seconds")));
    const auto& v = j->at("val");
    s += fmt::format(
        "## Measured (on the solutions of {} held-out labelled solutions, through PrmVerifier)\n\n"
        "| metric | value |\n| --- | --- |\n| steps where score > 0.5 agrees with the exact oracle "
        "(legal and 24 still reachable) | {} ({} steps) |\n| solutions where the last step's "
        "score > 0.5 agrees with final correctness | {} |\n| BCE against the soft labels | {:.4f} |\n\n",
        v.get_int("val_solutions"), pct(v.get_double("step_agreement_with_oracle")), v.get_int("val_steps"),
        pct(v.get_double("outcome_accuracy_last_step")), v.get_double("val_bce_vs_soft_labels"));
    s += fmt::format("Use: `--verifier prm:models/{}`{}.\n\n", is_orm ? "orm" : "prm",
                     is_orm ? " with `--algo best-of-n --scoring orm`" : "");
    s += repro;
    write(P.out_dir + (is_orm ? "/orm/MODEL_CARD.md" : "/prm/MODEL_CARD.md"), s, log);
  }
}

}  // namespace qstar::game24
